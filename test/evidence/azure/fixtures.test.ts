import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { fromHex, toHex } from '../../../src/core/hex.ts';
import {
  azureSnpEvidenceFromParts,
  HCL_VARIABLE_DATA_OFFSET,
  parseAzureSnpEvidence,
  parseHclReport,
  verifyAzureSnp,
  verifyAzureTdx,
} from '../../../src/evidence/azure/index.ts';
import { AT, AT_TDX, CHALLENGE, genoaEvidence, milanParts, rejects, snpChainPem, snpHclBytes, tdxHclBytes, tdxParts, v2Evidence } from './support.ts';

/**
 * Every file in ../shared/fixtures/azure gives the outcome the fixtures README states, with its
 * values (Trustee az_snp_vtpm / az_tdx_vtpm tests, and the README's re-checked values).
 */
const zero = (bytes: number) => '00'.repeat(bytes);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

test('HCL report framing: SNP (v1) and TDX (v2) layouts', fixtureTest(), () => {
  const snp = parseHclReport(snpHclBytes());
  assert.equal(snp.header.version, 1);
  assert.equal(snp.reportType, 'snp');
  assert.equal(snp.runtimeData.hashType, 'SHA-256');
  assert.equal(snp.hardwareReport.length, 1184);
  assert.equal(snp.variableData.length, 1110);
  assert.equal(snp.header.reportSize, HCL_VARIABLE_DATA_OFFSET + 1110);
  const tdx = parseHclReport(tdxHclBytes());
  assert.equal(tdx.header.version, 2);
  assert.equal(tdx.reportType, 'tdx');
  assert.equal(tdx.runtimeData.reportTypeValue, 4);
  assert.equal(tdx.hardwareReport.length, 1024);
  assert.equal(tdx.variableData.length, 1201);
});

test('Milan HCL report + vTPM quote + VCEK chain: SNP report, binding, AK, quote, PCRs', fixtureTest(), async () => {
  const evidence = milanParts();
  const { claims } = await verifyAzureSnp(evidence, { at: AT, chain: snpChainPem(), nonce: fromHex(CHALLENGE) });
  assert.equal(claims.tee, 'snp');
  assert.equal(claims.snp.product, 'Milan');
  assert.equal(claims.snp.reportVersion, 2);
  assert.equal(claims.snp.vmpl, 0);
  assert.equal(claims.snp.measurement, '9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c315');
  // test_verify_report_data: SHA-256(variable data) = report_data[0..32].
  const varDataHash = sha256(evidence.hcl.variableData);
  assert.equal(claims.snp.reportData, varDataHash + zero(32));
  assert.equal(claims.hcl.runtimeDataHash, varDataHash);
  // test_verify_quote_nonce: "challenge"; test_verify_pcrs; PCR0 re-checked.
  assert.equal(claims.tpm.extraData, CHALLENGE);
  assert.equal(Object.keys(claims.tpm.pcrs.sha256).length, 24);
  assert.equal(claims.tpm.pcrs.sha256[0], 'f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be');
  assert.equal(claims.hcl.akPublic.kty, 'RSA');
  assert.equal(claims.hcl.akPublic.e, 'AQAB');
  assert.ok(claims.hcl.akPublic.n.startsWith('qR7LqAABDczZ'));
  assert.equal(claims.hcl.vmConfiguration.vmUniqueId, '911B0EF8-9DBA-48B0-B275-4E4DF2D39252');
  assert.equal(claims.hcl.vmConfiguration.secureBoot, true);
  assert.equal(claims.hcl.userData, zero(64));
  assert.equal(claims.hcl.userDataBound, false);
});

test('Milan: Trustee failure cases give the named checks', fixtureTest(), async () => {
  const trust = { at: AT, chain: snpChainPem() };
  // test_verify_snp_report_failure: HCL byte 0x1A6 (SNP report byte 0x186, REPORTED_TCB) = 0.
  const tcb = snpHclBytes();
  tcb[0x1a6] = 0;
  await rejects(verifyAzureSnp(milanParts(tcb), trust), 'snp.signature_invalid');
  // test_verify_report_data_failure: HCL byte 0x6E0 + 1 (inside the variable data).
  const varData = snpHclBytes();
  varData[0x6e0] += 1;
  await rejects(verifyAzureSnp(milanParts(varData), trust), 'azure.runtime_data_binding_mismatch');
  // test_verify_akpub_failure: HCL byte 0x540 (the AK modulus) = 0 — caught by the binding first.
  const ak = snpHclBytes();
  ak[0x540] = 0;
  await rejects(verifyAzureSnp(milanParts(ak), trust), 'azure.runtime_data_binding_mismatch');
  // test_verify_quote_nonce_failure: a different nonce.
  await rejects(verifyAzureSnp(milanParts(), { ...trust, nonce: new TextEncoder().encode('egnellahc') }), 'tpm.quote_nonce_mismatch');
  // Signature bit, PCR bit.
  const quote = JSON.parse(fixtureText('azure/trustee_azsnp_tpm_quote.json')) as { signature: string; message: string; pcrs: string[] };
  const badSig = { ...quote, signature: (quote.signature[0] === '0' ? '1' : '0') + quote.signature.slice(1) };
  await rejects(verifyAzureSnp(milanParts(snpHclBytes(), badSig), trust), 'tpm.quote_signature_invalid');
  const badPcr = { ...quote, pcrs: quote.pcrs.map((p, i) => (i === 5 ? (p[0] === '0' ? '1' : '0') + p.slice(1) : p)) };
  await rejects(verifyAzureSnp(milanParts(snpHclBytes(), badPcr), trust), 'tpm.quote_pcr_digest_mismatch');
  // Without the VCEK there is nothing to verify the report with.
  await rejects(verifyAzureSnp(milanParts(), { at: AT }), 'snp.endorsement_key_missing');
  // The user-data is zero here: requiring the v2 binding fails.
  await rejects(verifyAzureSnp(milanParts(), { ...trust, requireUserData: true }), 'azure.user_data_mismatch');
});

test('evidence v2 (Milan, report v3): report_data in the quote nonce and the HCL user-data, PCR0', fixtureTest(), async () => {
  const evidence = v2Evidence();
  assert.equal(evidence.version, 2);
  const { claims } = await verifyAzureSnp(evidence, { at: AT });
  const reportData = '982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef';
  assert.equal(claims.evidenceVersion, 2);
  assert.equal(claims.snp.product, 'Milan');
  assert.equal(claims.snp.reportVersion, 3);
  assert.deepEqual(claims.snp.cpuid, { family: 0x19, model: 0x01, stepping: 0x01 });
  assert.equal(claims.tpm.extraData, reportData);
  assert.equal(claims.hcl.userData, reportData + zero(16));
  assert.equal(claims.hcl.userDataBound, true);
  assert.equal(claims.tpm.pcrs.sha256[0], '84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7');
  assert.equal(claims.snp.reportData, sha256(evidence.hcl.variableData) + zero(32));
  // test_verify_user_data: another expected report_data ("123abc") is refused.
  await rejects(verifyAzureSnp(v2Evidence(), { at: AT, nonce: fromHex('123abc') }), 'tpm.quote_nonce_mismatch');
  await verifyAzureSnp(v2Evidence(), { at: AT, nonce: fromHex(reportData) });
});

test('Genoa evidence (legacy layout): report_data, PCR0, SNP values; the VCEK file is the one inside', fixtureTest(), async () => {
  const evidence = genoaEvidence();
  assert.equal(evidence.version, 0);
  const { claims } = await verifyAzureSnp(evidence, { at: AT });
  assert.equal(claims.snp.product, 'Genoa');
  assert.deepEqual(claims.snp.cpuid, { family: 0x19, model: 0x11, stepping: 0x01 });
  assert.equal(claims.tpm.extraData, '0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f');
  assert.equal(claims.tpm.pcrs.sha256[0], 'afd689d0bb1c5f36f023fbaf574135f555a28a10c1f6b938d2a25e70c7783338');
  assert.equal(claims.snp.measurement, 'f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae');
  assert.equal(claims.snp.reportData, 'b581f12e29a2d7d64e5e0b738d563879a78b51c644d0fa0cce02b48699f6bf5f' + zero(32));
  assert.equal(claims.snp.policy.hex, '3001f');
  assert.equal(claims.snp.vmpl, 0);
  // platform_info 0x24: bit 2 ECC, bit 5 alias check complete.
  assert.equal(claims.snp.platformInfo.eccEnabled, true);
  assert.equal(claims.snp.platformInfo.aliasCheckComplete, true);
  assert.equal(claims.snp.platformInfo.smtEnabled, false);
  assert.equal(claims.snp.reportedTcb.hex, '541700000000000a');
  assert.deepEqual([claims.snp.reportedTcb.bootloader, claims.snp.reportedTcb.snp, claims.snp.reportedTcb.microcode], [10, 23, 84]);
  assert.deepEqual(claims.snp.currentVersion, { major: 1, minor: 55, build: 40 });
  // The hardware report is byte-for-byte the derived snp/ fixture.
  assert.equal(toHex(evidence.hcl.hardwareReport), toHex(fixture('snp/trustee_azure_genoa_snp_report.bin')));
  // The separate VCEK file verifies the same evidence (test_genoa_vcek_validation).
  const json = JSON.parse(fixtureText('azure/trustee_azsnp_genoa_evidence.json')) as { vcek: string };
  const pemBody = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');
  assert.equal(pemBody(json.vcek), pemBody(fixtureText('azure/trustee_azsnp_genoa_vcek.pem')));
  const legacy = JSON.parse(fixtureText('azure/trustee_azsnp_genoa_evidence.json')) as { report: number[]; quote: unknown };
  const parts = azureSnpEvidenceFromParts({ hclReport: Uint8Array.from(legacy.report), tpmQuote: legacy.quote });
  const again = await verifyAzureSnp(parts, { at: AT, vcek: fixtureText('azure/trustee_azsnp_genoa_vcek.pem'), chain: fixtureText('snp/amd_genoa_vcek_ask_ark.pem') });
  assert.equal(again.claims.snp.endorsement.root, 'ARK-Genoa');
  // Genoa's VCEK does not verify the Milan report.
  await rejects(verifyAzureSnp(milanParts(), { at: AT, vcek: fixtureText('azure/trustee_azsnp_genoa_vcek.pem') }), /^snp\.(product_mismatch|chip_id_mismatch|signature_invalid|tcb_mismatch)$/);
});

test('TDX: HCL report + TD quote + vTPM quote: TD quote chain, TD report match, binding, PCR0', fixtureTest(), async () => {
  const evidence = tdxParts();
  assert.equal(evidence.tdQuote.header.version, 4);
  assert.equal(evidence.tdQuote.trailingBytes, 70);
  const { claims } = await verifyAzureTdx(evidence, { at: AT_TDX, nonce: fromHex(CHALLENGE) });
  assert.equal(claims.tee, 'tdx');
  assert.equal(claims.tdx.mrTd, '024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b');
  assert.deepEqual(claims.tdx.rtmrs, [zero(48), zero(48), zero(48), zero(48)]);
  assert.equal(claims.tdx.reportData, '9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839' + zero(32));
  assert.equal(sha256(evidence.hcl.variableData), '9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839');
  assert.equal(claims.tdx.pck.fmspc, '00806f050000');
  assert.equal(claims.tdx.tcb, undefined, 'no collateral: the DCAP TCB result is UNCONFIRMED upstream');
  assert.equal(claims.tpm.extraData, CHALLENGE);
  assert.equal(claims.tpm.pcrs.sha256[0], '782b20b10f55cc46e2142cc2145d548698073e5beb82752c8d7f9279f0d8a273');
  assert.equal(claims.hcl.vmConfiguration.tpmPersisted, false);
  assert.equal(claims.hcl.vmConfiguration.rootCertThumbprint, '6nZZnYaJc4KqUZ_yvA-mucFdYNouvlPnITnNMXsHl-0');
  assert.equal(evidence.tdReport.reportType.type, 0x81);
  // test_verify_hcl_var_data_failure: HCL byte 0x880 + 1.
  const bad = tdxHclBytes();
  bad[0x880] += 1;
  await rejects(verifyAzureTdx(tdxParts(bad), { at: AT_TDX }), 'azure.runtime_data_binding_mismatch');
  // A TD report that is not the quoted one.
  const otherReport = tdxHclBytes();
  otherReport[0x20 + 528] ^= 0x01; // MRTD
  const error = await rejects(verifyAzureTdx(tdxParts(otherReport), { at: AT_TDX }), 'azure.td_report_mismatch');
  assert.equal(error.details.field, 'mrTd');
  await rejects(verifyAzureTdx(tdxParts(), { at: AT_TDX, nonce: new TextEncoder().encode('wrong') }), 'tpm.quote_nonce_mismatch');
  // An SNP HCL report is not TDX evidence, and the reverse.
  await rejects(() => tdxParts(snpHclBytes()), 'azure.report_type_mismatch');
  await rejects(() => milanParts(tdxHclBytes()), 'azure.report_type_mismatch');
});

test('the VMPL is signed: setting it to 1 in a real report fails the SNP signature (VMPL check: synthetic.test.ts)', fixtureTest(), async () => {
  const hcl = snpHclBytes();
  hcl[0x20 + 0x30] = 1;
  await rejects(verifyAzureSnp(milanParts(hcl), { at: AT, chain: snpChainPem() }), 'snp.signature_invalid');
});

test('v2 evidence with its HCL as JSON text, bytes or object parses to the same structure', fixtureTest(), () => {
  const text = fixtureText('azure/trustee_azsnp_evidence_v2.json');
  const fromText = parseAzureSnpEvidence(text);
  const fromBytes = parseAzureSnpEvidence(new TextEncoder().encode(text));
  const fromObject = parseAzureSnpEvidence(JSON.parse(text));
  for (const e of [fromBytes, fromObject]) {
    assert.equal(toHex(e.hcl.variableData), toHex(fromText.hcl.variableData));
    assert.equal(toHex(e.tpmQuote.signature), toHex(fromText.tpmQuote.signature));
  }
});
