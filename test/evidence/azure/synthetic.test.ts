import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixtureTest } from '../../support/fixtures.ts';
import { azureSnpEvidenceFromParts, appraiseAzureSnp, verifyAzureSnp, type AzureSnpTrust } from '../../../src/evidence/azure/index.ts';
import { AT, rejects } from './support.ts';
import { makeSynthetic, type SyntheticOptions } from './synthetic.ts';

/**
 * Paths the real fixtures do not reach, on synthetic evidence signed by a private AMD-shaped PKI
 * (explicitly passed as `authorities`, never trusted by default).
 */
async function build(options: SyntheticOptions = {}, trust: Partial<AzureSnpTrust> = {}) {
  const synthetic = await makeSynthetic(options);
  const evidence = azureSnpEvidenceFromParts({ hclReport: synthetic.hcl, tpmQuote: synthetic.tpmQuote, vcek: synthetic.vcek });
  return { evidence, synthetic, trust: { at: AT, authorities: synthetic.pki.authorities, ...trust } };
}

test('synthetic evidence verifies only against its own PKI, passed explicitly', fixtureTest(), async () => {
  const { evidence, trust } = await build();
  const { claims } = await verifyAzureSnp(evidence, trust);
  assert.equal(claims.hcl.hashType, 'SHA-256');
  assert.equal(claims.hcl.vmConfiguration.vmUniqueId, 'SYNTHETIC');
  assert.equal(claims.hcl.ekPublic, undefined);
  await rejects(verifyAzureSnp(evidence, { at: AT }), /^snp\.(vcek_chain_invalid|chain_invalid|ask_invalid|endorsement_chain_invalid)/);
});

test('SHA-384 and SHA-512 runtime-data hashes bind the first 48 / 64 bytes of REPORT_DATA', fixtureTest(), async () => {
  for (const [hashType, name, hexLength] of [[2, 'SHA-384', 96], [3, 'SHA-512', 128]] as const) {
    const { evidence, trust } = await build({ hashType });
    const { claims } = await verifyAzureSnp(evidence, trust);
    assert.equal(claims.hcl.hashType, name);
    assert.equal(claims.hcl.runtimeDataHash.length, hexLength);
    assert.equal(claims.snp.reportData.slice(0, hexLength), claims.hcl.runtimeDataHash);
  }
});

test('a report requested at VMPL 1 is refused even though it is genuine', fixtureTest(), async () => {
  const { evidence, trust } = await build({ vmpl: 1 });
  const error = await rejects(verifyAzureSnp(evidence, trust), 'azure.vmpl_not_zero');
  assert.equal(error.details.vmpl, 1);
});

test('REPORT_DATA that does not hash the runtime data is refused', fixtureTest(), async () => {
  const { evidence, trust } = await build({ reportDataOverride: new Uint8Array(32).fill(1) });
  await rejects(verifyAzureSnp(evidence, trust), 'azure.runtime_data_binding_mismatch');
});

test('user-data binding (evidence v2): the quote nonce zero-padded to 64 bytes', fixtureTest(), async () => {
  const nonce = new Uint8Array(48).fill(0xab);
  const padded = new Uint8Array(64);
  padded.set(nonce);
  const good = await build({ nonce, userData: padded }, { requireUserData: true });
  const { claims } = await verifyAzureSnp(good.evidence, good.trust);
  assert.equal(claims.hcl.userDataBound, true);
  const bad = await build({ nonce, userData: new Uint8Array(64).fill(0xab) }, { requireUserData: true });
  await rejects(verifyAzureSnp(bad.evidence, bad.trust), 'azure.user_data_mismatch');
  // Not required: recorded, not bound.
  const loose = await build({ nonce, userData: new Uint8Array(64).fill(0xab) });
  assert.equal((await verifyAzureSnp(loose.evidence, loose.trust)).claims.hcl.userDataBound, false);
});

test('runtime data without an RSA HCLAkPub, or not JSON, is refused after the binding holds', fixtureTest(), async () => {
  const noAk = await build({ variableData: () => JSON.stringify({ keys: [], 'vm-configuration': {} }) });
  await rejects(verifyAzureSnp(noAk.evidence, noAk.trust), 'azure.ak_missing');
  const ecAk = await build({ variableData: () => JSON.stringify({ keys: [{ kid: 'HCLAkPub', kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' }] }) });
  await rejects(verifyAzureSnp(ecAk.evidence, ecAk.trust), 'azure.ak_unsupported');
  const twoAks = await build({ variableData: (jwk) => JSON.stringify({ keys: [{ kid: 'HCLAkPub', kty: 'RSA', n: jwk.n, e: jwk.e }, { kid: 'HCLAkPub', kty: 'RSA', n: jwk.n, e: jwk.e }] }) });
  await rejects(verifyAzureSnp(twoAks.evidence, twoAks.trust), 'azure.runtime_data_malformed');
  const notJson = await build({ variableData: () => '{"keys": [' });
  await rejects(verifyAzureSnp(notJson.evidence, notJson.trust), 'azure.runtime_data_malformed');
  const badUserData = await build({ variableData: (jwk) => JSON.stringify({ keys: [{ kid: 'HCLAkPub', kty: 'RSA', n: jwk.n, e: jwk.e }], 'user-data': 'xyz' }) });
  await rejects(verifyAzureSnp(badUserData.evidence, badUserData.trust), 'azure.runtime_data_malformed');
  // Another AK than the one that signed the quote.
  const otherAk = await build({
    variableData: (jwk) => JSON.stringify({ keys: [{ kid: 'HCLAkPub', kty: 'RSA', n: `${jwk.n!.slice(0, -4)}AAAA`, e: jwk.e }] }),
  });
  await rejects(verifyAzureSnp(otherAk.evidence, otherAk.trust), 'tpm.quote_signature_invalid');
});

test('appraisal: VM configuration defaults and the console rule', fixtureTest(), async () => {
  const noSecureBoot = await build({
    variableData: (jwk) => JSON.stringify({ keys: [{ kid: 'HCLAkPub', kty: 'RSA', n: jwk.n, e: jwk.e }], 'vm-configuration': { 'secure-boot': false, 'tpm-enabled': true, 'console-enabled': true } }),
  });
  const verifiedEvidence = await verifyAzureSnp(noSecureBoot.evidence, noSecureBoot.trust);
  const refused = appraiseAzureSnp(verifiedEvidence);
  assert.equal(refused.status, 'contraindicated');
  assert.deepEqual(refused.trace.filter((t) => t.result === 'fail').map((t) => t.rule), ['azure.vm_secure_boot']);
  const allowed = appraiseAzureSnp(verifiedEvidence, { vm: { requireSecureBoot: false, allowConsole: false } });
  assert.deepEqual(allowed.trace.filter((t) => t.result === 'fail').map((t) => t.rule), ['azure.vm_console']);
  assert.equal(allowed.trustVector.configuration, 96);
});
