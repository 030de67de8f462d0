/**
 * Duplicate and Import against swtpm. Duplicate needs the DUP role, which only a policy session
 * gives: the duplicable keys here carry authPolicy = PolicyCommandCode(TPM_CC_Duplicate).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { utf8, Writer } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_ALG, TPM_CC, TPM_RH, TPMA_OBJECT } from '../../../src/tpm/constants.ts';
import { sign } from '../../../src/tpm/commands/attestation.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { duplicate, importObject } from '../../../src/tpm/commands/duplication.ts';
import { create, createPrimary, load, type CreatePrimaryResult } from '../../../src/tpm/commands/object.ts';
import { marshal, unmarshal } from '../../../src/tpm/marshal/codec.ts';
import { publicAreaToJwk } from '../../../src/tpm/jwk.ts';
import { keyObjectToTpmPublic, keyObjectToTpmSensitive, tpmPublicToKeyObject, verifyTpmSignature } from '../../../src/tpm/public-key.ts';
import { PolicySession } from '../../../src/tpm/session/policy.ts';
import { AES_128_CFB, type TpmPublic } from '../../../src/tpm/structures/public.ts';
import { TPM2B_SENSITIVE } from '../../../src/tpm/structures/sensitive.ts';
import { eccSigningTemplate, srkEccP256Template, srkRsa2048Template } from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;

before(async () => {
  fixture = await TpmFixture.start();
});

after(async () => {
  await fixture?.stop();
});

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** PolicyCommandCode(Duplicate) from an empty policy: H(0^32 ‖ TPM_CC_PolicyCommandCode ‖ TPM_CC_Duplicate) (Part 3, 23.11). */
const DUPLICATE_POLICY = sha256(new Uint8Array(32), new Writer(8).u32(TPM_CC.PolicyCommandCode).u32(TPM_CC.Duplicate).finish());

/** Movable: no fixedTPM / fixedParent; sensitiveDataOrigin so the TPM makes the key. */
const MOVABLE = TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign;

function movableEccKey(): TpmPublic {
  return eccSigningTemplate(undefined, { attributes: MOVABLE, authPolicy: DUPLICATE_POLICY });
}

/** Run `body` with a policy session that has asserted PolicyCommandCode(Duplicate). */
async function withDuplicatePolicy<R>(body: (session: PolicySession) => Promise<R>): Promise<R> {
  const session = await PolicySession.start(fixture.tpm);
  try {
    await session.policyCommandCode(TPM_CC.Duplicate);
    return await body(session);
  } finally {
    await session.flush(fixture.tpm);
  }
}

function primary(template: TpmPublic): Promise<CreatePrimaryResult> {
  return fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: template }));
}

async function createAndLoad(parent: number, template: TpmPublic) {
  const created = await fixture.tpm.run(create(auth(parent), { inPublic: template }));
  const loaded = await fixture.tpm.run(load(auth(parent), created.outPrivate, created.outPublic));
  return { ...loaded, publicArea: created.outPublic };
}

test('the hand-computed PolicyCommandCode(Duplicate) digest equals a trial session digest', async () => {
  const trial = await PolicySession.start(fixture.tpm, { trial: true });
  try {
    await trial.policyCommandCode(TPM_CC.Duplicate);
    assert.equal(toHex(await trial.getDigest()), toHex(DUPLICATE_POLICY));
  } finally {
    await trial.flush(fixture.tpm);
  }
});

test('Duplicate refuses a fixedParent object even with the policy satisfied, and a password never gives DUP', async () => {
  await withLoaded(fixture.tpm, primary(srkEccP256Template()), async (srk) => {
    // fixedParent under a fixedTPM parent implies fixedTPM (Part 1, 27.2).
    const fixedTemplate = eccSigningTemplate(undefined, { attributes: MOVABLE | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent, authPolicy: DUPLICATE_POLICY });
    const key = await createAndLoad(srk.handle, fixedTemplate);
    try {
      await withDuplicatePolicy((session) =>
        assert.rejects(fixture.tpm.run(duplicate({ handle: key.handle, session }, TPM_RH.NULL)), (e: unknown) => isSigilError(e, 'tpm.rc.attributes')),
      );
      // The DUP role is policy-only (Part 1, 19.2): a password session is the wrong kind of session.
      await assert.rejects(fixture.tpm.run(duplicate(auth(key.handle), TPM_RH.NULL)), (e: unknown) => isSigilError(e, 'tpm.rc.auth_type'));
    } finally {
      await fixture.tpm.run(flushContext(key.handle));
    }
  });
});

test('Duplicate to an RSA parent with an AES inner wrapper, Import it there, and sign with the imported key', async () => {
  const newParent = await primary(srkRsa2048Template());
  try {
    // Duplicate under the ECC SRK, then free its slots for the import.
    const oldParent = await primary(srkEccP256Template());
    let key;
    let wrapped;
    try {
      key = await createAndLoad(oldParent.handle, movableEccKey());
      const handle = key.handle;
      wrapped = await withDuplicatePolicy((session) => fixture.tpm.run(duplicate({ handle, session }, newParent.handle, AES_128_CFB)));
      await fixture.tpm.run(flushContext(handle));
    } finally {
      await fixture.tpm.run(flushContext(oldParent.handle));
    }
    assert.equal(wrapped.encryptionKeyOut.length, 16, 'the TPM chose the AES-128 inner key');
    assert.equal(wrapped.outSymSeed.length, 256, 'the seed is OAEP-encrypted to the RSA-2048 parent');

    const input = { encryptionKey: wrapped.encryptionKeyOut, objectPublic: key.publicArea, duplicate: wrapped.duplicate, inSymSeed: wrapped.outSymSeed, symmetricAlg: AES_128_CFB };
    const wrongKey = wrapped.encryptionKeyOut.slice();
    wrongKey[0] ^= 1;
    // A wrong inner key decrypts to garbage: a bad integrity size (TPM_RC_SIZE) or a bad HMAC.
    await assert.rejects(fixture.tpm.run(importObject(auth(newParent.handle), { ...input, encryptionKey: wrongKey })), (e: unknown) =>
      isSigilError(e) && ['tpm.rc.size', 'tpm.rc.integrity'].includes(e.code),
    );
    const outPrivate = await fixture.tpm.run(importObject(auth(newParent.handle), input));
    await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(newParent.handle), outPrivate, key.publicArea)), async (imported) => {
      assert.deepEqual(imported.name, key.name, 'same public area, same name');
      const message = utf8.encode('signed by the moved key');
      const signature = await fixture.tpm.run(sign(auth(imported.handle), sha256(message)));
      assert.equal(verifyTpmSignature(key.publicArea, message, signature), true);
    });
  } finally {
    await fixture.tpm.run(flushContext(newParent.handle));
  }
});

test('Duplicate to TPM_RH_NULL without wrappers yields the plain TPM2B_SENSITIVE of the key', async () => {
  await withLoaded(fixture.tpm, primary(srkEccP256Template()), async (srk) => {
    const key = await createAndLoad(srk.handle, movableEccKey());
    try {
      const handle = key.handle;
      const result = await withDuplicatePolicy((session) => fixture.tpm.run(duplicate({ handle, session }, TPM_RH.NULL)));
      assert.deepEqual([result.encryptionKeyOut.length, result.outSymSeed.length], [0, 0]);
      const sensitive = unmarshal(TPM2B_SENSITIVE, result.duplicate);
      assert.equal(sensitive.sensitiveType, TPM_ALG.ECC);
      assert.equal(sensitive.sensitive.length, 32);
      // The scalar is the private half of the key's public point: node accepts the pair and the
      // signature it makes verifies against the TPM public area.
      const jwk = { ...publicAreaToJwk(key.publicArea), d: Buffer.from(sensitive.sensitive).toString('base64url') };
      const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
      const message = utf8.encode('signed with the extracted key');
      assert.equal(nodeVerify('sha256', message, tpmPublicToKeyObject(key.publicArea), nodeSign('sha256', message, privateKey)), true);
    } finally {
      await fixture.tpm.run(flushContext(key.handle));
    }
  });
});

for (const [label, keyType] of [
  ['ECC P-256', 'ec'],
  ['RSA-2048', 'rsa'],
] as const) {
  test(`Import of a software ${label} key without wrappers: the TPM signs with it, node verifies`, async () => {
    const { publicKey, privateKey } =
      keyType === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
    const scheme = keyType === 'ec' ? { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 } : { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 };
    const objectPublic = keyObjectToTpmPublic(privateKey, { objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign, scheme });
    assert.deepEqual(keyObjectToTpmPublic(publicKey, { objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign, scheme }), objectPublic);
    const plain = marshal(TPM2B_SENSITIVE, keyObjectToTpmSensitive(privateKey));
    await withLoaded(fixture.tpm, primary(srkEccP256Template()), async (srk) => {
      const outPrivate = await fixture.tpm.run(importObject(auth(srk.handle), { objectPublic, duplicate: plain }));
      await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), outPrivate, objectPublic)), async (key) => {
        const message = utf8.encode(`imported ${label}`);
        const signature = await fixture.tpm.run(sign(auth(key.handle), sha256(message)));
        assert.equal(verifyTpmSignature(publicKey, message, signature), true);
      });
    });
  });
}

test('Import refuses an object that claims fixedTPM', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const objectPublic = keyObjectToTpmPublic(privateKey, { objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent });
  const plain = marshal(TPM2B_SENSITIVE, keyObjectToTpmSensitive(privateKey));
  await withLoaded(fixture.tpm, primary(srkEccP256Template()), async (srk) => {
    await assert.rejects(fixture.tpm.run(importObject(auth(srk.handle), { objectPublic, duplicate: plain })), (e: unknown) =>
      isSigilError(e, 'tpm.rc.attributes'),
    );
  });
});
