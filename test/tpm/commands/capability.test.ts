/** GetCapability and GetRandom against swtpm: the answers a fresh libtpms TPM must give. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_ALG, TPM_CAP, TPM_CC, TPM_ECC_CURVE, TPM_PT, TPM_RH } from '../../../src/tpm/constants.ts';
import { createPrimary } from '../../../src/tpm/commands/object.ts';
import { getCapability, getRandom } from '../../../src/tpm/commands/startup.ts';
import { srkEccP256Template } from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;

before(async () => {
  fixture = await TpmFixture.start();
});

after(async () => {
  await fixture?.stop();
});

function ascii(value: number): string {
  return String.fromCharCode(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff).replace(/[\0 ]+$/, '');
}

test('PCRS: the sha1 and sha256 banks swtpm-process allocates, 24 PCRs each', async () => {
  const { data } = await fixture.tpm.run(getCapability(TPM_CAP.PCRS, 0, 1));
  assert.equal(data.capability, TPM_CAP.PCRS);
  if (data.capability !== TPM_CAP.PCRS) return;
  const active = data.pcrs.filter((bank) => bank.pcrs.length > 0);
  const all24 = Array.from({ length: 24 }, (_, i) => i);
  assert.deepEqual(active, [
    { hash: TPM_ALG.SHA1, pcrs: all24 },
    { hash: TPM_ALG.SHA256, pcrs: all24 },
  ]);
});

test('ALGS lists the algorithms Sigil relies on, and paging reports moreData', async () => {
  const { moreData, data } = await fixture.tpm.run(getCapability(TPM_CAP.ALGS, 0, 128));
  assert.equal(moreData, false);
  assert.equal(data.capability, TPM_CAP.ALGS);
  if (data.capability !== TPM_CAP.ALGS) return;
  const algs = data.algorithms.map((a) => a.alg);
  for (const alg of [TPM_ALG.RSA, TPM_ALG.ECC, TPM_ALG.SHA256, TPM_ALG.AES, TPM_ALG.CFB, TPM_ALG.OAEP, TPM_ALG.RSASSA, TPM_ALG.RSAPSS, TPM_ALG.ECDSA, TPM_ALG.ECDH]) {
    assert.ok(algs.includes(alg), `algorithm 0x${alg.toString(16)} listed`);
  }
  assert.deepEqual(algs, [...algs].sort((a, b) => a - b), 'in ascending order');
  const firstTwo = await fixture.tpm.run(getCapability(TPM_CAP.ALGS, 0, 2));
  assert.equal(firstTwo.moreData, true);
  assert.ok(firstTwo.data.capability === TPM_CAP.ALGS && firstTwo.data.algorithms.length === 2);
});

test('COMMANDS includes every command this stack defines for attestation, credentials and duplication', async () => {
  const { data } = await fixture.tpm.run(getCapability(TPM_CAP.COMMANDS, TPM_CC.NV_UndefineSpaceSpecial, 256));
  assert.equal(data.capability, TPM_CAP.COMMANDS);
  if (data.capability !== TPM_CAP.COMMANDS) return;
  // TPMA_CC: the command index is the low 16 bits.
  const codes = data.commands.map((attributes) => attributes & 0xffff);
  for (const cc of [TPM_CC.Quote, TPM_CC.Certify, TPM_CC.CertifyCreation, TPM_CC.Sign, TPM_CC.VerifySignature, TPM_CC.ActivateCredential, TPM_CC.MakeCredential, TPM_CC.Duplicate, TPM_CC.Import, TPM_CC.RSA_Encrypt, TPM_CC.RSA_Decrypt, TPM_CC.ECDH_ZGen, TPM_CC.HierarchyChangeAuth, TPM_CC.Clear]) {
    assert.ok(codes.includes(cc), `command 0x${cc.toString(16)} implemented`);
  }
});

test('TPM_PROPERTIES: TPM 2.0 family, IBM libtpms, 24 PCRs', async () => {
  const { data } = await fixture.tpm.run(getCapability(TPM_CAP.TPM_PROPERTIES, TPM_PT.FAMILY_INDICATOR, 64));
  assert.equal(data.capability, TPM_CAP.TPM_PROPERTIES);
  if (data.capability !== TPM_CAP.TPM_PROPERTIES) return;
  const property = (tag: number) => data.properties.find((p) => p.property === tag)?.value;
  assert.equal(ascii(property(TPM_PT.FAMILY_INDICATOR)!), '2.0');
  assert.equal(ascii(property(TPM_PT.MANUFACTURER)!), 'IBM');
  assert.equal(property(TPM_PT.PCR_COUNT), 24);
  assert.ok(property(TPM_PT.MAX_DIGEST)! >= 48);
  assert.ok(property(TPM_PT.NV_BUFFER_MAX)! >= 512);
});

test('ECC_CURVES includes NIST P-256 and P-384', async () => {
  const { data } = await fixture.tpm.run(getCapability(TPM_CAP.ECC_CURVES, 0, 32));
  assert.ok(data.capability === TPM_CAP.ECC_CURVES && data.curves.includes(TPM_ECC_CURVE.NIST_P256) && data.curves.includes(TPM_ECC_CURVE.NIST_P384));
});

test('HANDLES: a created primary is listed among transient handles until flushed', async () => {
  assert.deepEqual(await fixture.transientHandles(), []);
  await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() })), async (srk) => {
    assert.deepEqual(await fixture.transientHandles(), [srk.handle]);
  });
  assert.deepEqual(await fixture.transientHandles(), []);
});

test('GetRandom returns the bytes asked for, different each time', async () => {
  const a = await fixture.tpm.run(getRandom(32));
  const b = await fixture.tpm.run(getRandom(32));
  assert.equal(a.length, 32);
  assert.notDeepEqual(a, b);
});
