/**
 * Software MakeCredential and import blobs (src/tpm/credential.ts) against swtpm: the TPM's
 * ActivateCredential must release what software protected to its EK, and its Import + Load +
 * Unseal must open what software sealed to its SRK, including under the MachineOS authorized
 * policy (PolicyPCR + PolicyNV approved by an offline signer through PolicyAuthorize).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import { isSigilError } from '../../src/core/errors.ts';
import { auth } from '../../src/tpm/command.ts';
import { verifySignature } from '../../src/tpm/commands/attestation.ts';
import { flushContext } from '../../src/tpm/commands/context.ts';
import { activateCredential } from '../../src/tpm/commands/credential.ts';
import { importObject } from '../../src/tpm/commands/duplication.ts';
import { nvDefineSpace, nvReadPublic, nvUndefineSpace, nvWrite } from '../../src/tpm/commands/nv.ts';
import { createPrimary, load, loadExternal, unseal } from '../../src/tpm/commands/object.ts';
import { pcrEvent, pcrRead } from '../../src/tpm/commands/pcr.ts';
import { TPM_ALG, TPM_CC, TPM_EO, TPM_NT, TPM_RH, TPMA_NV, TPMA_OBJECT, nvTypeBits } from '../../src/tpm/constants.ts';
import { createImportBlob, makeCredential, sealToRemoteTpm, type ImportBlob } from '../../src/tpm/credential.ts';
import { objectName } from '../../src/tpm/names.ts';
import { PolicyCalculator, approvedPolicyDigest, approvedPolicyMessage } from '../../src/tpm/policy/index.ts';
import { keyObjectToTpmPublic } from '../../src/tpm/public-key.ts';
import { PolicySession } from '../../src/tpm/session/policy.ts';
import type { NvPublic } from '../../src/tpm/structures/nv.ts';
import type { TpmPublic } from '../../src/tpm/structures/public.ts';
import { akEccP256Template, ekEccP256Template, ekRsa2048Template, sealedDataTemplate, srkEccP256Template, srkRsa2048Template } from '../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './commands/tpm-fixture.ts';

const NV_INDEX = 0x01500020;
let fixture: TpmFixture;

before(async () => {
  fixture = await TpmFixture.start();
  await fixture.tpm.run(pcrEvent(auth(7), new TextEncoder().encode('secure boot: db, dbx, MOK')));
  const lockout: NvPublic = { nvIndex: NV_INDEX, nameAlg: TPM_ALG.SHA256, attributes: nvTypeBits(TPM_NT.ORDINARY) | TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE | TPMA_NV.NO_DA, authPolicy: new Uint8Array(0), dataSize: 2 };
  await fixture.tpm.run(nvDefineSpace(auth(TPM_RH.OWNER), new Uint8Array(0), lockout));
  await fixture.tpm.run(nvWrite(auth(NV_INDEX), NV_INDEX, new Uint8Array([0x00, 0x01])));
});

after(async () => {
  if (!fixture) return;
  try {
    await fixture.tpm.run(nvUndefineSpace(auth(TPM_RH.OWNER), NV_INDEX));
  } finally {
    await fixture.stop();
  }
});

for (const [label, ekTemplate] of [
  ['RSA-2048', ekRsa2048Template()],
  ['ECC P-256', ekEccP256Template()],
] as const) {
  test(`software makeCredential to the ${label} EK opens with the TPM's ActivateCredential, only for the AK it names`, async () => {
    await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.ENDORSEMENT), { inPublic: ekTemplate })), async (ek) => {
      await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: akEccP256Template() })), async (ak) => {
        const credential = new Uint8Array(randomBytes(32));
        const made = await makeCredential({ ekPublic: ek.outPublic, objectName: ak.name, credential });
        // TPM2B(HMAC-SHA256) ‖ CFB(TPM2B_DIGEST(credential)); the seed is an OAEP block or an ECC point.
        assert.equal(made.credentialBlob.length, 2 + 32 + 2 + 32);
        assert.equal(made.secret.length, label === 'RSA-2048' ? 256 : 2 + 32 + 2 + 32);

        const activate = async (blob: { credentialBlob: Uint8Array; secret: Uint8Array }) => {
          const session = await PolicySession.start(fixture.tpm);
          try {
            await session.policySecret(auth(TPM_RH.ENDORSEMENT));
            return await fixture.tpm.run(activateCredential(auth(ak.handle), { handle: ek.handle, session }, blob));
          } finally {
            await session.flush(fixture.tpm);
          }
        };
        assert.deepEqual(await activate(made), credential);

        const otherAk = { ...ak.outPublic, objectAttributes: ak.outPublic.objectAttributes | TPMA_OBJECT.noDA };
        const forOther = await makeCredential({ ekPublic: ek.outPublic, objectName: await objectName(otherAk), credential });
        await assert.rejects(activate(forOther), (e: unknown) => isSigilError(e, 'tpm.rc.integrity'), 'a credential for another AK name is refused');

        const tampered = { ...made, credentialBlob: made.credentialBlob.slice() };
        tampered.credentialBlob[tampered.credentialBlob.length - 1] ^= 0x01;
        await assert.rejects(activate(tampered), (e: unknown) => isSigilError(e, 'tpm.rc.integrity'), 'a changed blob is refused');
      });
    });
  });
}

test('makeCredential refuses a credential longer than the EK nameAlg digest', async () => {
  const ekPublic: TpmPublic = { ...ekEccP256Template(), unique: { x: new Uint8Array(32), y: new Uint8Array(32) } };
  await assert.rejects(makeCredential({ ekPublic, objectName: new Uint8Array(34), credential: new Uint8Array(33) }), (e: unknown) => isSigilError(e, 'tpm.credential_too_large'));
});

/** Import a blob under `parentHandle` and load it; the caller flushes the returned handle. */
async function importAndLoad(parentHandle: number, blob: ImportBlob): Promise<number> {
  const outPrivate = await fixture.tpm.run(importObject(auth(parentHandle), { objectPublic: blob.objectPublic, duplicate: blob.duplicate, inSymSeed: blob.inSymSeed }));
  const loaded = await fixture.tpm.run(load(auth(parentHandle), outPrivate, blob.objectPublic));
  assert.deepEqual(loaded.name, await objectName(blob.objectPublic), 'the TPM names the imported object as names.ts does');
  return loaded.handle;
}

test('sealToRemoteTpm without a policy: Import under an RSA SRK, Load, Unseal with the authValue', async () => {
  await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkRsa2048Template() })), async (srk) => {
    const secret = new TextEncoder().encode('disk key for a device I have never touched');
    const authValue = new TextEncoder().encode('pin-1234');
    const blob = await sealToRemoteTpm({ parentPublic: srk.outPublic, secret, authValue, nameAlg: TPM_ALG.SHA384 });
    assert.equal(blob.objectPublic.objectAttributes & (TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent), 0);
    const sealed = await importAndLoad(srk.handle, blob);
    try {
      assert.deepEqual(await fixture.tpm.run(unseal(auth(sealed, authValue))), secret);
      await assert.rejects(fixture.tpm.run(unseal(auth(sealed, new TextEncoder().encode('wrong')))), (e: unknown) => isSigilError(e) && e.code.startsWith('tpm.rc.auth_fail'));
    } finally {
      await fixture.tpm.run(flushContext(sealed));
    }

    // The outer HMAC covers the ciphertext and the name: a flipped byte or another public area fails.
    const tampered = { ...blob, duplicate: blob.duplicate.slice() };
    tampered.duplicate[tampered.duplicate.length - 1] ^= 0x01;
    await assert.rejects(
      fixture.tpm.run(importObject(auth(srk.handle), { objectPublic: tampered.objectPublic, duplicate: tampered.duplicate, inSymSeed: tampered.inSymSeed })),
      (e: unknown) => isSigilError(e, 'tpm.rc.integrity'),
    );
    const otherPublic = { ...blob.objectPublic, objectAttributes: blob.objectPublic.objectAttributes | TPMA_OBJECT.noDA };
    await assert.rejects(
      fixture.tpm.run(importObject(auth(srk.handle), { objectPublic: otherPublic, duplicate: blob.duplicate, inSymSeed: blob.inSymSeed })),
      (e: unknown) => isSigilError(e, 'tpm.rc.integrity'),
    );
  });
});

test('sealToRemoteTpm under the MachineOS authorized policy: Import under an ECC SRK, Unseal through PolicyPCR + PolicyNV + PolicyAuthorize', async () => {
  // The vendor's offline policy key: the device only ever sees its public area.
  const signer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signerPublic = keyObjectToTpmPublic(signer.publicKey, { objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign });
  const policyRef = new TextEncoder().encode('machineos/unseal');
  const selection = [{ hash: TPM_ALG.SHA256, pcrs: [7] }];
  const pcr7 = (await fixture.tpm.run(pcrRead(selection))).digests;
  const nvPublic = (await fixture.tpm.run(nvReadPublic(NV_INDEX))).nvPublic;
  const operand = new Uint8Array([0x00, 0x01]);

  // Release signing, offline: approve "PCR 7 as measured, lock-out index still 0x0001, Unseal only".
  const approved = await new PolicyCalculator(TPM_ALG.SHA256).policyPCR(selection, pcr7).policyNV(nvPublic, operand, 0, TPM_EO.EQ).policyCommandCode(TPM_CC.Unseal).digest();
  const signature = nodeSign('sha256', approvedPolicyMessage(approved, policyRef), { key: signer.privateKey, dsaEncoding: 'ieee-p1363' });
  const tpmSignature = { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r: new Uint8Array(signature.subarray(0, 32)), s: new Uint8Array(signature.subarray(32)) } as const;
  const authPolicy = await new PolicyCalculator(TPM_ALG.SHA256).policyAuthorize(signerPublic, policyRef).digest();
  assert.deepEqual(sealedDataTemplate({ authPolicy }).authPolicy, authPolicy);

  const secret = new Uint8Array(randomBytes(32));
  const srk = await fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() }));
  let sealed: number;
  try {
    const blob = await sealToRemoteTpm({ parentPublic: srk.outPublic, secret, policyDigest: authPolicy });
    assert.equal(blob.objectPublic.objectAttributes & TPMA_OBJECT.userWithAuth, 0, 'only the policy opens it');
    sealed = await importAndLoad(srk.handle, blob);
  } finally {
    await fixture.tpm.run(flushContext(srk.handle)); // the loaded object no longer needs its parent
  }

  const unsealWithPolicy = async (): Promise<Uint8Array> =>
    withLoaded(fixture.tpm, fixture.tpm.run(loadExternal(signerPublic, TPM_RH.OWNER)), async (key) => {
      const ticket = await fixture.tpm.run(verifySignature(key.handle, await approvedPolicyDigest(signerPublic.nameAlg, approved, policyRef), tpmSignature));
      const session = await PolicySession.start(fixture.tpm);
      try {
        await session.policyPCR(selection);
        await session.policyNV(auth(NV_INDEX), NV_INDEX, operand, 0, TPM_EO.EQ);
        await session.policyCommandCode(TPM_CC.Unseal);
        assert.deepEqual(await session.getDigest(), approved, 'the session reached the approved policy');
        await session.policyAuthorize(approved, policyRef, key.name, ticket);
        assert.deepEqual(await session.getDigest(), authPolicy);
        return await session.run(unseal({ handle: sealed, session }));
      } finally {
        await session.flush(fixture.tpm);
      }
    });

  try {
    assert.deepEqual(await unsealWithPolicy(), secret);
    // Lock-out: the device writes 0x0000 to the index, and PolicyNV no longer passes.
    await fixture.tpm.run(nvWrite(auth(NV_INDEX), NV_INDEX, new Uint8Array([0x00, 0x00])));
    try {
      await assert.rejects(unsealWithPolicy(), (e: unknown) => isSigilError(e, 'tpm.rc.policy'));
    } finally {
      await fixture.tpm.run(nvWrite(auth(NV_INDEX), NV_INDEX, new Uint8Array([0x00, 0x01])));
    }
  } finally {
    await fixture.tpm.run(flushContext(sealed));
  }
});

test('createImportBlob refuses objects that cannot be imported', async () => {
  const parentPublic: TpmPublic = { ...srkEccP256Template(), unique: { x: new Uint8Array(32), y: new Uint8Array(32) } };
  const sensitive = { sensitiveType: TPM_ALG.KEYEDHASH, authValue: new Uint8Array(0), seedValue: new Uint8Array(32), sensitive: new Uint8Array([1]) };
  await assert.rejects(createImportBlob({ parentPublic, objectPublic: sealedDataTemplate(), sensitive }), (e: unknown) => isSigilError(e, 'tpm.import_attributes_invalid'), 'fixedTPM/fixedParent set');
  const duplicable = { ...sealedDataTemplate(), objectAttributes: TPMA_OBJECT.userWithAuth };
  await assert.rejects(createImportBlob({ parentPublic: { ...parentPublic, symmetric: { algorithm: TPM_ALG.NULL } }, objectPublic: duplicable, sensitive }), (e: unknown) => isSigilError(e, 'tpm.protector_invalid'), 'a parent without a symmetric definition');
  await assert.rejects(sealToRemoteTpm({ parentPublic, secret: new Uint8Array(129) }), (e: unknown) => isSigilError(e, 'tpm.seal_too_large'));
});
