import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { appraiseAzureSnp, appraiseAzureTdx, checkAzurePolicy, verifyAzureSnp, verifyAzureTdx, type AzureSnpClaims } from '../../../src/evidence/azure/index.ts';
import { verified, type Verified } from '../../../src/evidence/verifier.ts';
import { AT, AT_TDX, genoaEvidence, milanParts, snpChainPem, tdxParts, v2Evidence } from './support.ts';

const GENOA_PCR0 = 'afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338';

test('Genoa: default policy affirms except the SNP rules the policy leaves unnamed; PCR references pass and fail', fixtureTest(), async () => {
  const evidence = await verifyAzureSnp(genoaEvidence(), { at: AT });
  const plain = appraiseAzureSnp(evidence);
  assert.deepEqual(plain.trace.filter((t) => t.result === 'fail'), []);
  const rules = plain.trace.map((t) => t.rule);
  for (const rule of ['snp.measurement', 'snp.policy_debug', 'azure.pcr', 'azure.vm_secure_boot', 'azure.vm_tpm_enabled']) assert.ok(rules.includes(rule), rule);
  assert.equal(plain.trustVector.configuration, 2);

  const pinned = appraiseAzureSnp(evidence, {
    pcrs: { 0: GENOA_PCR0, 7: [evidence.claims.tpm.pcrs.sha256[7]] },
    snp: { measurements: [evidence.claims.snp.measurement], vmpl: 0, products: ['Genoa'] },
  });
  const pcrRules = pinned.trace.filter((t) => t.rule === 'azure.pcr');
  assert.deepEqual(pcrRules.map((t) => [t.claim, t.result]), [['tpm.pcrs.sha256[0]', 'pass'], ['tpm.pcrs.sha256[7]', 'pass']]);
  assert.equal(pinned.trustVector.executables, 2);

  const wrong = appraiseAzureSnp(evidence, { pcrs: { 0: '00'.repeat(32) } });
  assert.equal(wrong.status, 'contraindicated');
  const failed = wrong.trace.find((t) => t.result === 'fail');
  assert.deepEqual([failed?.rule, failed?.actual], ['azure.pcr', GENOA_PCR0]);
  assert.equal(wrong.trustVector.executables, 96);
});

test('v2: user-data reference and binding rules', fixtureTest(), async () => {
  const evidence = await verifyAzureSnp(v2Evidence(), { at: AT });
  const reportData = evidence.claims.tpm.extraData;
  const appraisal = appraiseAzureSnp(evidence, { userData: reportData, requireUserDataBound: true, akThumbprints: [evidence.claims.hcl.akThumbprint] });
  assert.deepEqual(
    appraisal.trace.filter((t) => t.rule.startsWith('azure.user_data') || t.rule === 'azure.ak_thumbprint').map((t) => [t.rule, t.result]),
    [['azure.user_data', 'pass'], ['azure.user_data_bound', 'pass'], ['azure.ak_thumbprint', 'pass']],
  );
  assert.equal(appraisal.trustVector.instance_identity, 2);
  const milan = await verifyAzureSnp(milanParts(), { at: AT, chain: snpChainPem() });
  const unbound = appraiseAzureSnp(milan, { requireUserDataBound: true });
  assert.deepEqual(unbound.trace.filter((t) => t.result === 'fail').map((t) => t.rule), ['azure.user_data_bound']);
});

test('TDX: without collateral the TCB is unevaluated (TDX default refuses), named in the trace', fixtureTest(), async () => {
  const evidence = await verifyAzureTdx(tdxParts(), { at: AT_TDX });
  const strict = appraiseAzureTdx(evidence, { pcrs: { 0: '782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273' } });
  assert.equal(strict.status, 'contraindicated');
  assert.deepEqual(strict.trace.filter((t) => t.result === 'fail').map((t) => t.rule), ['tdx.tcb_status', 'tdx.qe_identity']);
  assert.equal(strict.trace.find((t) => t.rule === 'azure.pcr')?.result, 'pass');
  const relaxed = appraiseAzureTdx(evidence, { tdx: { requireTcbEvaluation: false, requireQeIdentity: false, mrTd: [evidence.claims.tdx.mrTd] } });
  assert.equal(relaxed.status, 'warning');
});

test('only verified Azure evidence of the right kind is appraised; policies are validated', fixtureTest(), async () => {
  const evidence = await verifyAzureSnp(genoaEvidence(), { at: AT });
  const forged = { kind: 'azure-snp', claims: evidence.claims, verifiedAt: AT } as unknown as Verified<AzureSnpClaims>;
  assert.throws(() => appraiseAzureSnp(forged), (e) => e instanceof SigilError && e.code === 'azure.not_verified');
  assert.throws(() => appraiseAzureSnp(verified('snp', evidence.claims, AT) as Verified<AzureSnpClaims>), (e) => e instanceof SigilError && e.code === 'azure.not_verified');
  for (const bad of [{ pcrs: { 24: '00'.repeat(32) } }, { pcrs: { 0: 'zz' } }, { pcrs: { 0: '00' } }, { userData: '00'.repeat(65) }, 'x']) {
    assert.throws(() => checkAzurePolicy(bad), (e) => e instanceof SigilError && e.code === 'azure.policy_invalid', JSON.stringify(bad));
  }
  assert.deepEqual(checkAzurePolicy({ pcrs: { 0: GENOA_PCR0 } }), { pcrs: { 0: GENOA_PCR0 } });
});
