/**
 * Quote, Certify, CertifyCreation, Sign and VerifySignature against swtpm, every signature checked
 * twice: by node:crypto through public-key.ts, and (quotes) by the isomorphic evidence verifier.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import { concatBytes, utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_RH, TPM_ST, TPMA_OBJECT } from '../../../src/tpm/constants.ts';
import { certify, certifyCreation, quote, sign, verifySignature } from '../../../src/tpm/commands/attestation.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { create, createPrimary, load, loadExternal, readPublic, type CreatePrimaryResult } from '../../../src/tpm/commands/object.ts';
import { pcrExtend, pcrRead } from '../../../src/tpm/commands/pcr.ts';
import { objectName } from '../../../src/tpm/names.ts';
import { ecdsaDerToTpmSignature, keyObjectToTpmPublic, verifyTpmSignature } from '../../../src/tpm/public-key.ts';
import type { TpmPublic } from '../../../src/tpm/structures/public.ts';
import { akEccP256Template, akRsa2048Template, eccSigningTemplate, rsaSigningTemplate, srkEccP256Template } from '../../../src/tpm/templates.ts';
import { TPMT_SIGNATURE, type TpmSignature } from '../../../src/tpm/structures/signature.ts';
import { marshal } from '../../../src/tpm/marshal/codec.ts';
import { parseQuote, verifyQuote } from '../../../src/evidence/tpm/quote.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;
let srk: CreatePrimaryResult;

before(async () => {
  fixture = await TpmFixture.start();
  srk = await fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() }));
});

after(async () => {
  if (srk) await fixture.tpm.run(flushContext(srk.handle));
  await fixture?.stop();
});

interface LoadedKey {
  handle: number;
  name: Uint8Array;
  publicArea: TpmPublic;
}

/** Create a child of the SRK, load it, run body, flush it. */
async function withChild<R>(template: TpmPublic, body: (key: LoadedKey) => Promise<R>): Promise<R> {
  const created = await fixture.tpm.run(create(auth(srk.handle), { inPublic: template }));
  return withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), created.outPrivate, created.outPublic)), (loaded) =>
    body({ handle: loaded.handle, name: loaded.name, publicArea: created.outPublic }),
  );
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

const QUOTED_PCRS = [0, 1, 2, 3, 4, 5, 6, 7, 16];

/** PCR values of the selection; PCR_Read returns at most 8 digests, so read in slices. */
async function readPcrs(hash: number, pcrs: number[]): Promise<Map<number, Uint8Array>> {
  const values = new Map<number, Uint8Array>();
  for (let i = 0; i < pcrs.length; i += 8) {
    const slice = pcrs.slice(i, i + 8);
    const result = await fixture.tpm.run(pcrRead([{ hash, pcrs: slice }]));
    assert.deepEqual(result.selection[0].pcrs, slice);
    slice.forEach((pcr, k) => values.set(pcr, result.digests[k]));
  }
  return values;
}

for (const [label, template] of [
  ['RSA-2048 RSASSA', akRsa2048Template()],
  ['ECC P-256 ECDSA', akEccP256Template()],
] as const) {
  test(`Quote with a ${label} AK over sha256 PCRs 0-7,16 verifies in node and in the evidence verifier`, async () => {
    await fixture.tpm.run(pcrExtend(auth(16), [{ hashAlg: TPM_ALG.SHA256, digest: sha256(utf8.encode(`quote test ${label}`)) }]));
    await withChild(template, async (ak) => {
      const nonce = randomBytes(32);
      const selection = [{ hash: TPM_ALG.SHA256, pcrs: QUOTED_PCRS }];
      const { attestBytes, attest, signature } = await fixture.tpm.run(quote(auth(ak.handle), nonce, selection));
      assert.equal(attest.magic, TPM_GENERATED_VALUE);
      assert.equal(attest.attested.type, TPM_ST.ATTEST_QUOTE);
      assert.deepEqual(attest.extraData, new Uint8Array(nonce));
      const { qualifiedName } = await fixture.tpm.run(readPublic(ak.handle));
      assert.deepEqual(attest.qualifiedSigner, qualifiedName);
      assert.equal(signature.sigAlg, template.type === TPM_ALG.RSA ? TPM_ALG.RSASSA : TPM_ALG.ECDSA);

      const values = await readPcrs(TPM_ALG.SHA256, QUOTED_PCRS);
      if (attest.attested.type !== TPM_ST.ATTEST_QUOTE) throw new Error('unreachable');
      assert.deepEqual(attest.attested.pcrSelect, selection);
      assert.deepEqual(attest.attested.pcrDigest, sha256(concatBytes(...QUOTED_PCRS.map((p) => values.get(p)!))));

      assert.equal(verifyTpmSignature(ak.publicArea, attestBytes, signature), true);
      const tampered = attestBytes.slice();
      tampered[tampered.length - 1] ^= 1;
      assert.equal(verifyTpmSignature(ak.publicArea, tampered, signature), false);

      const verified = await verifyQuote(parseQuote(attestBytes, marshal(TPMT_SIGNATURE, signature)), {
        akPublic: ak.publicArea,
        nonce,
        pcrValues: new Map([[TPM_ALG.SHA256, values]]),
      });
      assert.equal(verified.pcrs.sha256[16], Buffer.from(values.get(16)!).toString('hex'));
      assert.equal(verified.resetCount, attest.clockInfo.resetCount);
    });
  });
}

test('Certify: an AK signs that an object with a given name is loaded', async () => {
  await withChild(akEccP256Template(), async (ak) => {
    await withChild(eccSigningTemplate(), async (object) => {
      const qualifying = utf8.encode('certify nonce');
      const { attestBytes, attest, signature } = await fixture.tpm.run(certify(auth(object.handle), auth(ak.handle), qualifying));
      assert.equal(attest.magic, TPM_GENERATED_VALUE);
      assert.deepEqual(attest.extraData, qualifying);
      if (attest.attested.type !== TPM_ST.ATTEST_CERTIFY) throw new Error(`unexpected attest type ${attest.attested.type}`);
      assert.deepEqual(attest.attested.name, await objectName(object.publicArea));
      assert.deepEqual(attest.attested.qualifiedName, (await fixture.tpm.run(readPublic(object.handle))).qualifiedName);
      assert.equal(verifyTpmSignature(ak.publicArea, attestBytes, signature), true);
    });
  });
});

test('CertifyCreation: an AK signs the creation data of an object with the TPM ticket', async () => {
  await withChild(akRsa2048Template(), async (ak) => {
    const created = await fixture.tpm.run(create(auth(srk.handle), { inPublic: eccSigningTemplate(), outsideInfo: utf8.encode('made for certify-creation') }));
    await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), created.outPrivate, created.outPublic)), async (object) => {
      const nonce = randomBytes(16);
      const { attestBytes, attest, signature } = await fixture.tpm.run(
        certifyCreation(auth(ak.handle), object.handle, nonce, created.creationHash, created.creationTicket),
      );
      if (attest.attested.type !== TPM_ST.ATTEST_CREATION) throw new Error(`unexpected attest type ${attest.attested.type}`);
      assert.deepEqual(attest.attested.objectName, object.name);
      assert.deepEqual(attest.attested.creationHash, created.creationHash);
      assert.deepEqual(attest.extraData, new Uint8Array(nonce));
      assert.equal(verifyTpmSignature(ak.publicArea, attestBytes, signature), true);
      // A ticket for other creation data is refused.
      const wrongHash = created.creationHash.slice();
      wrongHash[0] ^= 1;
      await assert.rejects(
        fixture.tpm.run(certifyCreation(auth(ak.handle), object.handle, nonce, wrongHash, created.creationTicket)),
        (e: unknown) => isSigilError(e, 'tpm.rc.ticket'),
      );
    });
  });
});

const signingCases: [string, TpmPublic, TpmSignature['sigAlg']][] = [
  ['ECDSA P-256', eccSigningTemplate(), TPM_ALG.ECDSA],
  ['RSASSA-2048', rsaSigningTemplate(), TPM_ALG.RSASSA],
  ['RSAPSS-2048', rsaSigningTemplate(2048, { scheme: { scheme: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA256 } }), TPM_ALG.RSAPSS],
];

for (const [label, template, sigAlg] of signingCases) {
  test(`Sign + VerifySignature (${label}): the TPM signature verifies in node and in the TPM`, async () => {
    await withChild(template, async (key) => {
      const message = utf8.encode(`message signed with ${label}`);
      const digest = sha256(message);
      const signature = await fixture.tpm.run(sign(auth(key.handle), digest));
      assert.equal(signature.sigAlg, sigAlg);
      assert.equal(verifyTpmSignature(key.publicArea, message, signature), true);
      assert.equal(verifyTpmSignature(key.publicArea, utf8.encode('another message'), signature), false);

      const ticket = await fixture.tpm.run(verifySignature(key.handle, digest, signature));
      assert.equal(ticket.tag, TPM_ST.VERIFIED);
      assert.equal(ticket.hierarchy, TPM_RH.OWNER);
      assert.ok(ticket.digest.length >= 32, "an HMAC by the hierarchy proof (its size is the TPM's choice)");
      const otherDigest = sha256(utf8.encode('another message'));
      await assert.rejects(fixture.tpm.run(verifySignature(key.handle, otherDigest, signature)), (e: unknown) => isSigilError(e, 'tpm.rc.signature'));
    });
  });
}

test('Sign with an explicit scheme on a key whose scheme is NULL', async () => {
  await withChild(rsaSigningTemplate(2048, { scheme: { scheme: TPM_ALG.NULL } }), async (key) => {
    const message = utf8.encode('scheme chosen per call');
    const signature = await fixture.tpm.run(sign(auth(key.handle), sha256(message), { scheme: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA256 }));
    assert.equal(signature.sigAlg, TPM_ALG.RSAPSS);
    assert.equal(verifyTpmSignature(key.publicArea, message, signature), true);
  });
});

test('a restricted AK refuses to Sign an outside digest with the NULL ticket', async () => {
  await withChild(akEccP256Template(), async (ak) => {
    await assert.rejects(fixture.tpm.run(sign(auth(ak.handle), sha256(utf8.encode('forged quote')))), (e: unknown) => isSigilError(e, 'tpm.rc.ticket'));
  });
});

test('VerifySignature checks a node-made ECDSA signature with a key from LoadExternal', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const message = utf8.encode('signed in software');
  const der = nodeSign('sha256', message, privateKey);
  const signature = ecdsaDerToTpmSignature(new Uint8Array(der), TPM_ALG.SHA256);
  assert.equal(verifyTpmSignature(publicKey, message, signature), true);
  const external = keyObjectToTpmPublic(publicKey, { objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign });
  await withLoaded(fixture.tpm, fixture.tpm.run(loadExternal(external, TPM_RH.NULL)), async (key) => {
    assert.deepEqual(key.name, await objectName(external));
    const ticket = await fixture.tpm.run(verifySignature(key.handle, sha256(message), signature));
    assert.equal(ticket.tag, TPM_ST.VERIFIED);
    assert.equal(ticket.hierarchy, TPM_RH.NULL);
  });
});
