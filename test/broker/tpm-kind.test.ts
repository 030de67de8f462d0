import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SoftwareQuoter } from '../../src/attester/software-quoter.ts';
import { SigilError } from '../../src/core/errors.ts';
import { evidenceKind } from '../../src/evidence/registry.ts';
import { registerDefaultEvidenceKinds } from '../../src/evidence/kinds.ts';
import type { TrustContext } from '../../src/evidence/registry.ts';
import { mutate, prng } from '../support/fuzz.ts';

registerDefaultEvidenceKinds();
const tpm = evidenceKind('tpm');
const PCRS = { sha256: { '0': '01'.repeat(32), '7': '07'.repeat(32) } };
const binding = new Uint8Array(32).fill(0x5a);

async function setup() {
  const quoter = await SoftwareQuoter.create();
  const trust: TrustContext = { at: new Date(), collateral: [], device: { tenant: 'acme', id: 'd1', material: { akPublic: quoter.akPublicHex(), akName: quoter.akName } } };
  return { quoter, trust, evidence: await quoter.quote(binding, PCRS) };
}

async function codeOf(work: () => unknown): Promise<string> {
  try {
    await work();
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof SigilError, `not a SigilError: ${String(error)}`);
    return error.code;
  }
}

test('TPM kind: verify gives the binding data and claims; appraise traces every named PCR', async () => {
  const { trust, evidence, quoter } = await setup();
  const verified = await tpm.verify(tpm.parse(evidence), trust);
  assert.deepEqual(tpm.bindingData(verified), binding);
  assert.deepEqual(tpm.summary!(verified), { device: 'd1', akName: quoter.akName, pcrs: { sha256: { 0: PCRS.sha256['0'], 7: PCRS.sha256['7'] } } });
  const policy = tpm.checkPolicy({ pcrs: { sha256: { '7': [PCRS.sha256['7'].toUpperCase()], '16': ['00'.repeat(32)] } } });
  const appraisal = await tpm.appraise(verified, policy);
  assert.equal(appraisal.status, 'contraindicated');
  assert.deepEqual(appraisal.trace.map((t) => [t.rule, t.result, t.actual]), [
    ['pcr.sha256:7', 'pass', PCRS.sha256['7']],
    ['pcr.sha256:16', 'fail', 'not quoted'],
  ]);
  assert.equal(appraisal.trustVector.configuration, 96);
  const good = await tpm.appraise(verified, tpm.checkPolicy({ pcrs: { sha256: { '0': PCRS.sha256['0'] } }, requireSafeClock: true }));
  assert.equal(good.status, 'affirming');
  assert.equal(good.trustVector.configuration, 2);
});

test('TPM kind refusals: no enrolled device, another AK, altered PCR values, bad policies', async () => {
  const { trust, evidence } = await setup();
  const other = await SoftwareQuoter.create();
  assert.equal(await codeOf(() => tpm.verify(tpm.parse(evidence), { ...trust, device: undefined })), 'tpm.device_not_enrolled');
  assert.equal(await codeOf(() => tpm.verify(tpm.parse(evidence), { ...trust, device: { ...trust.device!, material: { akPublic: other.akPublicHex() } } })), 'tpm.quote_signature_invalid');
  const altered = { ...evidence, pcrs: { sha256: { ...PCRS.sha256, '7': '08'.repeat(32) } } };
  assert.equal(await codeOf(() => tpm.verify(tpm.parse(altered), trust)), 'tpm.quote_pcr_digest_mismatch');
  for (const bad of [null, 'x', { pcrs: { sha999: {} } }, { pcrs: { sha256: { '24': ['00'] } } }, { pcrs: { sha256: { '7': [] } } }, { pcrs: {}, extra: 1 }, { requireSafeClock: 'yes' }]) {
    assert.equal(await codeOf(() => tpm.checkPolicy(bad)), 'policy.reference_values_invalid', JSON.stringify(bad));
  }
});

test('TPM evidence fuzz: garbled quote, signature and JSON shapes only ever raise SigilError', async () => {
  const { trust, evidence } = await setup();
  const random = prng(0x51617);
  const quote = Buffer.from(evidence.quote as string, 'base64url');
  const signature = Buffer.from(evidence.signature as string, 'base64url');
  let refusedCount = 0;
  for (let i = 0; i < 300; i++) {
    const body = {
      ...evidence,
      quote: Buffer.from(i % 2 ? mutate(quote, random) : quote).toString('base64url'),
      signature: Buffer.from(i % 2 ? signature : mutate(signature, random)).toString('base64url'),
    };
    const code = await codeOf(async () => tpm.verify(tpm.parse(body), trust));
    if (code !== 'ok') refusedCount++;
  }
  assert.ok(refusedCount >= 295, `${refusedCount} of 300 garbled quotes refused`);
  for (const shape of [undefined, 1, [], { quote: 5 }, { quote: 'AA', signature: 'AA' }, { ...evidence, pcrs: 'x' }, { ...evidence, pcrs: { sha256: { x: 'zz' } } }]) {
    assert.notEqual(await codeOf(() => tpm.parse(shape)), 'ok');
  }
});
