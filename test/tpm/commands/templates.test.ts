/**
 * Key templates against a real TPM: each template makes the key it promises, and the EK templates
 * are byte-for-byte the ones tpm2_createek uses (same seed + same template ⇒ same key, so equal
 * public areas prove equal templates).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { toHex } from '../../../src/core/hex.ts';
import { utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_ALG, TPM_ECC_CURVE, TPM_RH, TPMA_OBJECT } from '../../../src/tpm/constants.ts';
import { create, createPrimary, load, unseal } from '../../../src/tpm/commands/object.ts';
import { marshal, unmarshal } from '../../../src/tpm/marshal/codec.ts';
import { objectName } from '../../../src/tpm/names.ts';
import { TPM2B_PUBLIC, TPMT_PUBLIC, type TpmPublic } from '../../../src/tpm/structures/public.ts';
import { tpmPublicToKeyObject } from '../../../src/tpm/public-key.ts';
import {
  AK_ATTRIBUTES,
  EK_AUTH_POLICY_SHA256,
  SRK_ATTRIBUTES,
  akEccP256Template,
  akRsa2048Template,
  eccEcdhTemplate,
  eccSigningTemplate,
  ekEccP256Template,
  ekRsa2048Template,
  rsaDecryptionTemplate,
  rsaSigningTemplate,
  sealedDataTemplate,
  srkEccP256Template,
  srkRsa2048Template,
} from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;
let scratch: string;

before(async () => {
  fixture = await TpmFixture.start();
  scratch = await mkdtemp(path.join(os.tmpdir(), 'sigil-templates-'));
});

after(async () => {
  await fixture?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Everything but `unique` must come back exactly as the template asked. */
function assertMatchesTemplate(outPublic: TpmPublic, template: TpmPublic): void {
  const { unique: _a, ...got } = outPublic;
  const { unique: _b, ...want } = template;
  assert.deepEqual(got, want);
}

async function primaryPublic(hierarchy: number, template: TpmPublic) {
  return withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(hierarchy), { inPublic: template })), async (primary) => {
    assert.deepEqual(primary.name, await objectName(primary.outPublic), 'the TPM names the object nameAlg ‖ H(public)');
    return primary.outPublic;
  });
}

async function createekPublic(algorithm: 'rsa' | 'ecc'): Promise<TpmPublic> {
  const ctx = path.join(scratch, `ek-${algorithm}.ctx`);
  const pub = path.join(scratch, `ek-${algorithm}.pub`);
  await fixture.tools(['tpm2_createek', '-G', algorithm, '-c', ctx, '-u', pub], ['tpm2_flushcontext', '-t']);
  return unmarshal(TPM2B_PUBLIC, new Uint8Array(await readFile(pub)));
}

test('EK template L-1 (RSA-2048) makes the same EK as tpm2_createek -G rsa', async () => {
  const template = ekRsa2048Template();
  assert.equal(toHex(template.authPolicy), EK_AUTH_POLICY_SHA256);
  assert.equal(template.objectAttributes, 0x000300b2, 'fixedTPM|fixedParent|sensitiveDataOrigin|adminWithPolicy|restricted|decrypt');
  assert.equal(template.type === TPM_ALG.RSA && template.unique.length, 256);
  const ours = await primaryPublic(TPM_RH.ENDORSEMENT, template);
  assertMatchesTemplate(ours, template);
  const theirs = await createekPublic('rsa');
  assert.equal(ours.type === TPM_ALG.RSA && toHex(ours.unique), theirs.type === TPM_ALG.RSA && toHex(theirs.unique), 'same modulus');
  assert.equal(toHex(marshal(TPMT_PUBLIC, ours)), toHex(marshal(TPMT_PUBLIC, theirs)), 'same public area, byte for byte');
  assert.equal(tpmPublicToKeyObject(ours).asymmetricKeyDetails?.modulusLength, 2048);
});

test('EK template L-2 (ECC P-256) makes the same EK as tpm2_createek -G ecc', async () => {
  const template = ekEccP256Template();
  assert.equal(template.type === TPM_ALG.ECC && template.unique.x.length + template.unique.y.length, 64);
  const ours = await primaryPublic(TPM_RH.ENDORSEMENT, template);
  assertMatchesTemplate(ours, template);
  const theirs = await createekPublic('ecc');
  assert.equal(toHex(marshal(TPMT_PUBLIC, ours)), toHex(marshal(TPMT_PUBLIC, theirs)), 'same public area, byte for byte');
  assert.equal(tpmPublicToKeyObject(ours).asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

test('SRK templates make restricted AES-128-CFB storage parents', async () => {
  for (const template of [srkRsa2048Template(), srkEccP256Template()]) {
    assert.equal(template.objectAttributes, SRK_ATTRIBUTES);
    const srk = await primaryPublic(TPM_RH.OWNER, template);
    assertMatchesTemplate(srk, template);
    assert.ok(srk.type === TPM_ALG.RSA || srk.type === TPM_ALG.ECC);
    assert.deepEqual(srk.symmetric, { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB });
    if (srk.type === TPM_ALG.RSA) assert.equal(srk.unique.length, 256);
    if (srk.type === TPM_ALG.ECC) assert.deepEqual([srk.unique.x.length, srk.unique.y.length], [32, 32]);
  }
});

test('AK and unrestricted key templates create and load under an SRK', async () => {
  const children: TpmPublic[] = [
    akRsa2048Template(),
    akEccP256Template(),
    rsaSigningTemplate(2048, { scheme: { scheme: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA256 } }),
    eccSigningTemplate(TPM_ECC_CURVE.NIST_P384, { scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA384 } }),
    rsaDecryptionTemplate(),
    eccEcdhTemplate(),
  ];
  assert.equal(children[0].objectAttributes, AK_ATTRIBUTES);
  await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() })), async (srk) => {
    for (const template of children) {
      const created = await fixture.tpm.run(create(auth(srk.handle), { inPublic: template }));
      assertMatchesTemplate(created.outPublic, template);
      await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), created.outPrivate, created.outPublic)), async (key) => {
        assert.deepEqual(key.name, await objectName(created.outPublic));
      });
      // Every asymmetric public key the TPM made converts to a node key of the promised size.
      const details = tpmPublicToKeyObject(created.outPublic).asymmetricKeyDetails;
      if (template.type === TPM_ALG.RSA) assert.equal(details?.modulusLength, template.keyBits);
      if (template.type === TPM_ALG.ECC) assert.equal(details?.namedCurve, template.curveId === TPM_ECC_CURVE.NIST_P384 ? 'secp384r1' : 'prime256v1');
    }
  });
});

test('sealed-data template: userWithAuth unless a policy is given; the data unseals with the password', async () => {
  const plain = sealedDataTemplate();
  assert.equal(plain.objectAttributes, TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.userWithAuth);
  const policy = new Uint8Array(32).fill(7);
  const withPolicy = sealedDataTemplate({ authPolicy: policy });
  assert.equal(withPolicy.objectAttributes & TPMA_OBJECT.userWithAuth, 0);
  assert.deepEqual(withPolicy.authPolicy, policy);
  assert.ok(sealedDataTemplate({ authPolicy: policy, userWithAuth: true }).objectAttributes & TPMA_OBJECT.userWithAuth);

  const secret = utf8.encode('disk key 0123456789abcdef');
  const password = utf8.encode('unseal me');
  await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkRsa2048Template() })), async (srk) => {
    const sealed = await fixture.tpm.run(create(auth(srk.handle), { inPublic: plain, inSensitive: { userAuth: password, data: secret } }));
    assertMatchesTemplate(sealed.outPublic, plain);
    await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), sealed.outPrivate, sealed.outPublic)), async (object) => {
      assert.deepEqual(await fixture.tpm.run(unseal(auth(object.handle, password))), secret);
    });
    // With a policy and no userWithAuth, a password cannot unseal: only the policy can.
    const policyBound = await fixture.tpm.run(create(auth(srk.handle), { inPublic: withPolicy, inSensitive: { data: secret } }));
    await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), policyBound.outPrivate, policyBound.outPublic)), async (object) => {
      await assert.rejects(fixture.tpm.run(unseal(auth(object.handle))), (e: unknown) => isSigilError(e, 'tpm.rc.auth_unavailable'));
    });
  });
});
