import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { toHex } from '../../../src/core/hex.ts';
import { azureSnpEvidenceKind, azureTdxEvidenceKind, createAzureSnpKind, createAzureTdxKind } from '../../../src/evidence/azure/index.ts';
import { memorySource, OfflineBundle } from '../../../src/evidence/collateral/index.ts';
import { parseSnpCertificates } from '../../../src/evidence/snp/index.ts';
import { decodeTcb } from '../../../src/evidence/snp/tcb.ts';
import { isVerified } from '../../../src/evidence/verifier.ts';
import { AT, AT_TDX, milanParts, rejects, snpHclBytes, snpQuoteText, tdxHclBytes, tdxQuoteBytes, tdxTpmQuoteText } from './support.ts';

/** The broker-facing kinds: Trustee JSON bodies in, bindingData out, collateral from a provider. */
const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

test('azure-snp kind: v2 body → verified claims, bindingData = the vTPM quote nonce, summary, appraisal', fixtureTest(), async () => {
  const kind = azureSnpEvidenceKind;
  assert.equal(kind.needsEnrolment, false);
  const structure = kind.parse(JSON.parse(fixtureText('azure/trustee_azsnp_evidence_v2.json')));
  const verified = await kind.verify(structure, { at: AT, collateral: [] });
  assert.ok(isVerified(verified));
  assert.equal(verified.kind, 'azure-snp');
  assert.equal(toHex(kind.bindingData(verified)), '982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef');
  assert.deepEqual(kind.summary?.(verified).pcrs, verified.claims.tpm.pcrs);
  const policy = kind.checkPolicy({ pcrs: { 0: '84275b2f4312cd4fc6cbe6b152ad3c3683e513d9f1e23c34fca160c8cca7a6a7' } });
  const appraisal = await kind.appraise(verified, policy);
  assert.equal(appraisal.trace.find((t) => t.rule === 'azure.pcr')?.result, 'pass');
  await rejects(() => kind.parse({ version: 3 }), 'azure.evidence_malformed');
  await rejects(() => kind.parse('not json'), 'azure.evidence_malformed');
});

test('azure-snp kind: a v1 body without its VCEK verifies with the VCEK and chain from a collateral bundle', fixtureTest(), async () => {
  const report = milanParts().snpReport;
  const [vcek] = parseSnpCertificates(fixtureText('azure/trustee_azsnp_vcek_chain.pem'));
  const tcb = decodeTcb(report.reportedTcb, 'Milan');
  const bundle = new OfflineBundle(
    memorySource({
      'snp/Milan/cert_chain.pem': fixtureText('snp/amd_milan_vcek_ask_ark.pem'),
      [`snp/Milan/vcek/${toHex(report.chipId)}-${tcb.hex}.der`]: new Uint8Array(vcek.rawData),
    }),
  );
  const body = { version: 1, tpm_quote: JSON.parse(snpQuoteText()), hcl_report: b64url(snpHclBytes()) };
  // The v2 report has no CPUID: the product must come from somewhere, and this bundle has no other hint.
  const plain = createAzureSnpKind({ collateral: bundle });
  await rejects(plain.verify(plain.parse(body), { at: AT, collateral: [] }), 'collateral.product_unknown');
  const milan = createAzureSnpKind({ collateral: bundle, snpProduct: 'Milan' });
  const { claims } = await milan.verify(milan.parse(body), { at: AT, collateral: [] });
  assert.equal(claims.snp.endorsement.root, 'ARK-Milan');
  assert.equal(claims.snp.endorsement.crlChecked, false, 'no CRL in the bundle');
  assert.equal(claims.tpm.pcrs.sha256[0], 'f3a7e99a5f819a034386bce753a48a73cfdaa0bea0ecfc124bedbf5a8c4799be');
  // A wrong product assumption is caught by the certificate.
  const genoa = createAzureSnpKind({ collateral: bundle, snpProduct: 'Genoa' });
  await rejects(genoa.verify(genoa.parse(body), { at: AT, collateral: [] }), 'collateral.not_found');
  // Without a provider the VCEK is missing.
  await rejects(azureSnpEvidenceKind.verify(azureSnpEvidenceKind.parse(body), { at: AT, collateral: [] }), 'snp.endorsement_key_missing');
});

test('azure-tdx kind: TD quote with collateral from a provider; a stale CRL in the bundle fails verification by name', fixtureTest(), async () => {
  const body = { version: 1, tpm_quote: JSON.parse(tdxTpmQuoteText()), hcl_report: b64url(tdxHclBytes()), td_quote: b64url(tdxQuoteBytes()) };
  const verified = await azureTdxEvidenceKind.verify(azureTdxEvidenceKind.parse(body), { at: AT_TDX, collateral: [] });
  assert.equal(toHex(azureTdxEvidenceKind.bindingData(verified)), '6368616c6c656e6765');
  assert.equal(azureTdxEvidenceKind.summary?.(verified).mrTd, '024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b');
  // An empty bundle: nothing to add, same result, TCB not evaluated.
  const empty = createAzureTdxKind({ collateral: new OfflineBundle(memorySource({})) });
  const again = await empty.verify(empty.parse(body), { at: AT_TDX, collateral: [] });
  assert.equal(again.claims.tdx.tcb, undefined);
  // The 2023 PCK platform CRL (nextUpdate 2023-07-08) is taken from the bundle and checked.
  const stale = createAzureTdxKind({ collateral: new OfflineBundle(memorySource({ 'tdx/pck_crl_platform.der': fixture('tdx/gotdxguest_pck_platform_crl.der') })) });
  await rejects(stale.verify(stale.parse(body), { at: AT_TDX, collateral: [] }), 'tdx.pck_crl_expired');
});

test('milan parts used by the kinds stay byte-identical to the fixture (no hidden mutation)', fixtureTest(), () => {
  assert.equal(toHex(milanParts().hcl.hardwareReport), toHex(snpHclBytes().subarray(0x20, 0x20 + 1184)));
});
