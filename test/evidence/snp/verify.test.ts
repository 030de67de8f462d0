import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { fromBase64 } from '../../../src/core/hex.ts';
import { isVerified } from '../../../src/evidence/verifier.ts';
import { parseSnpReport } from '../../../src/evidence/snp/report.ts';
import { verifySnp, verifySnpReport, type VerifySnpReportOptions } from '../../../src/evidence/snp/verify.ts';
import { fixture, fixtureTest, fixtureText } from '../../support/fixtures.ts';
import { SNP_CASES, snpReportFromHcl } from './cases.ts';

async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isSigilError(error), `not a SigilError: ${String(error)}`);
    assert.ok(error.code.startsWith('snp.'), error.code);
    return error.code;
  }
  return 'verified';
}

const byName = (name: string) => SNP_CASES.find((c) => c.name.startsWith(name))!;

test('every SNP fixture report verifies to the pinned ARK of its product', fixtureTest(), async () => {
  const expected: Record<string, [string, 'vcek' | 'vlek', number, string]> = {
    'gosevguest Milan v2 (VCEK)': ['Milan', 'vcek', 2, 'ARK-Milan'],
    'virtee/sev Milan v2 (VCEK)': ['Milan', 'vcek', 2, 'ARK-Milan'],
    'trustee Milan v2 with ID block (VCEK)': ['Milan', 'vcek', 2, 'ARK-Milan'],
    'trustee Milan v3 (VLEK)': ['Milan', 'vlek', 3, 'ARK-Milan'],
    'trustee Azure Genoa v3 (VCEK)': ['Genoa', 'vcek', 3, 'ARK-Genoa'],
    'trustee Azure HCL Milan v2 (VCEK chain PEM)': ['Milan', 'vcek', 2, 'ARK-Milan'],
    'trustee Azure evidence v2 Milan v3 (VCEK)': ['Milan', 'vcek', 3, 'ARK-Milan'],
  };
  for (const c of SNP_CASES) {
    const result = await verifySnpReport(c.report(), c.options());
    assert.ok(isVerified(result));
    const { product, signingKey, reportVersion, endorsement } = result.claims;
    assert.deepEqual([product, signingKey, reportVersion, endorsement.root], expected[c.name], c.name);
    assert.equal(endorsement.chipIdChecked, signingKey === 'vcek', c.name);
    assert.equal(result.verifiedAt.getTime(), c.options().at.getTime());
  }
});

test('go-sev-guest Milan: claims as the upstream tests state them', fixtureTest(), async () => {
  const c = byName('gosevguest');
  const { claims } = await verifySnpReport(c.report(), c.options());
  assert.equal(claims.measurement, 'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01');
  assert.equal(claims.reportData, '0102030405' + '00'.repeat(59));
  assert.deepEqual(claims.reportedTcb, { bootloader: 2, tee: 0, snp: 5, microcode: 68, hex: '4405000000000002' });
  assert.equal(claims.launchTcb.hex, '4405000000000002');
  assert.equal(claims.endorsement.productName, 'Milan-B0');
  assert.equal(claims.policy.debug, true);
  assert.equal(claims.chipId, '3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d');
});

test('virtee/sev and trustee Milan, VLEK, Genoa and Azure: measurement, report_data, TCB', fixtureTest(), async () => {
  const values: Record<string, [string, string, string]> = {
    'virtee/sev': ['7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f',
      'd447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd', '7308000000000003'],
    'trustee Milan v2': ['a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c',
      'ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2' + '00'.repeat(32), '7308000000000003'],
    'trustee Milan v3 (VLEK)': ['8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0',
      '819770b7e6ea6df8dd8fd4dd146b073c0bf4f3ce5b0977ecac486e3a05ed1bd54e2a7ac1f5d1ca02e7d7d5ef9f73b8574fd9359e3a480d741a4478e8a7bc27ca', 'd918000000000004'],
    'trustee Azure Genoa': ['f57dc09a507c6ecd82369bffb600f0003792f4d99bc26e985ec0c266fc34faf3706faf814c9e61065768a6ff917c89ae',
      'b581f12e29a2d7d64e5e0b738d563879a78b51c644d0fa0cce02b48699f6bf5f' + '00'.repeat(32), '541700000000000a'],
  };
  for (const [name, [measurement, reportData, tcb]] of Object.entries(values)) {
    const c = byName(name);
    const { claims } = await verifySnpReport(c.report(), c.options());
    assert.equal(claims.measurement, measurement, name);
    assert.equal(claims.reportData, reportData, name);
    assert.equal(claims.reportedTcb.hex, tcb, name);
  }
  const vlek = await verifySnpReport(byName('trustee Milan v3').report(), byName('trustee Milan v3').options());
  assert.equal(vlek.claims.endorsement.cspId, 'CN=cc-us-east-2.amazonaws.com');
  assert.equal(vlek.claims.endorsement.issuer.endsWith('CN=SEV-VLEK-Milan'), true);
  const genoa = await verifySnpReport(byName('trustee Azure Genoa').report(), byName('trustee Azure Genoa').options());
  assert.deepEqual(genoa.claims.reportedTcb, { bootloader: 10, tee: 0, snp: 23, microcode: 84, hex: '541700000000000a' });
  assert.deepEqual(genoa.claims.currentVersion, { major: 1, minor: 55, build: 40 });
  const hcl = await verifySnpReport(byName('trustee Azure HCL').report(), byName('trustee Azure HCL').options());
  assert.equal(hcl.claims.measurement, '9ac48fcac8a2d88aeeff8d427ad4f2be0e3917c748a18bdf52cc317e7fe20308b459d5ef1a12e0c22944eb386d17c315');
  const v2 = await verifySnpReport(byName('trustee Azure evidence v2').report(), byName('trustee Azure evidence v2').options());
  assert.deepEqual(v2.claims.cpuid, { family: 0x19, model: 0x01, stepping: 0x01 });
});

test('the embedded ASK/ASVK suffice: a bare VCEK or VLEK verifies', fixtureTest(), async () => {
  const vcek = await verifySnpReport(fixture('snp/trustee_milan_vcek_report.bin'), { vcek: fixture('snp/trustee_milan_vcek.der'), at: new Date('2025-06-01T00:00:00Z') });
  assert.equal(vcek.claims.endorsement.root, 'ARK-Milan');
  const vlek = await verifySnpReport(fixture('snp/trustee_milan_vlek_report.bin'), { vlek: fixture('snp/trustee_milan_vlek.der'), at: new Date('2025-06-01T00:00:00Z') });
  assert.equal(vlek.claims.signingKey, 'vlek');
});

test('source-stated negatives: virtee/sev and trustee mutations are rejected', fixtureTest(), async () => {
  // virtee/sev milan_report_invalid: flip bit 7 of byte 21 of the report.
  const virtee = byName('virtee/sev');
  const flipped = virtee.report();
  flipped[21] ^= 0x80;
  assert.equal(await failure(verifySnpReport(flipped, virtee.options())), 'snp.signature_invalid');
  // virtee/sev milan_chain_invalid: xor 0xff into byte 40 of the VCEK DER.
  const badVcek = fixture('snp/virteesev_milan_vcek.der');
  badVcek[40] ^= 0xff;
  assert.match(await failure(verifySnpReport(virtee.report(), { ...virtee.options(), vcek: badVcek })), /^snp\.(vcek_chain_invalid|certificate_malformed)$/);
  // trustee: report byte 42 +1 → signature; byte 384 (reported_tcb) +1 → refused; VCEK DER byte 42 +1 → chain.
  for (const name of ['trustee Milan v2', 'trustee Milan v3 (VLEK)']) {
    const c = byName(name);
    for (const offset of [42, 384]) {
      const report = c.report();
      report[offset] = (report[offset] + 1) & 0xff;
      assert.equal(await failure(verifySnpReport(report, c.options())), 'snp.signature_invalid', `${name} byte ${offset}`);
    }
  }
  const vcekDer = fixture('snp/trustee_milan_vcek.der');
  vcekDer[42] = (vcekDer[42] + 1) & 0xff;
  const trustee = byName('trustee Milan v2');
  assert.match(await failure(verifySnpReport(trustee.report(), { ...trustee.options(), vcek: vcekDer })), /^snp\.(vcek_chain_invalid|certificate_malformed)$/);
  const vlekDer = fixture('snp/trustee_milan_vlek.der');
  vlekDer[42] = (vlekDer[42] + 1) & 0xff;
  const vlek = byName('trustee Milan v3');
  assert.match(await failure(verifySnpReport(vlek.report(), { ...vlek.options(), vlek: vlekDer })), /^snp\.(vlek_chain_invalid|certificate_malformed)$/);
});

test('a VCEK is not accepted under the ASVK, nor a VLEK under the ASK', fixtureTest(), async () => {
  const { verifyEndorsementChain } = await import('../../../src/evidence/snp/chain.ts');
  const { parseCertificates } = await import('../../../src/evidence/snp/endorsement.ts');
  const at = new Date('2025-06-01T00:00:00Z');
  const [vcek] = parseCertificates(fixture('snp/trustee_milan_vcek.der'));
  const [vlek] = parseCertificates(fixture('snp/trustee_milan_vlek.der'));
  // Treat each leaf as the other kind: the issuer found must then be the wrong key → refused.
  assert.equal(await failure(verifyEndorsementChain(vcek, { kind: 'vlek', product: 'Milan', supplied: parseCertificates(fixtureText('snp/amd_milan_vlek_asvk_ark.pem')), at, crls: [] })), 'snp.vlek_chain_invalid');
  assert.equal(await failure(verifyEndorsementChain(vlek, { kind: 'vcek', product: 'Milan', supplied: parseCertificates(fixtureText('snp/amd_milan_vcek_ask_ark.pem')), at, crls: [] })), 'snp.vcek_chain_invalid');
  // A Milan VCEK does not chain to the Genoa authorities.
  assert.equal(await failure(verifyEndorsementChain(vcek, { kind: 'vcek', product: 'Genoa', supplied: [], at, crls: [] })), 'snp.vcek_chain_invalid');
});

test('validity periods are checked at the given time', fixtureTest(), async () => {
  const gosev = byName('gosevguest');
  assert.equal(await failure(verifySnpReport(gosev.report(), { ...gosev.options(), at: new Date('2053-07-01T00:00:00Z') })), 'snp.certificate_expired');
  assert.equal(await failure(verifySnpReport(gosev.report(), { ...gosev.options(), at: new Date('2022-09-23T00:00:00Z') })), 'snp.certificate_expired');
  // The VLEK expired on 2025-12-10.
  const vlek = byName('trustee Milan v3');
  assert.equal(await failure(verifySnpReport(vlek.report(), { ...vlek.options(), at: new Date('2026-01-01T00:00:00Z') })), 'snp.certificate_expired');
  assert.equal(await failure(verifySnp(parseSnpReport(vlek.report()), { at: new Date('invalid') })), 'snp.trust_invalid');
});

test('wrong or missing endorsement material names the check that failed', fixtureTest(), async () => {
  const gosev = byName('gosevguest');
  const at = gosev.options().at;
  // Another chip's VCEK: chains fine, but did not sign this report.
  const other: VerifySnpReportOptions = { vcek: fixture('snp/virteesev_milan_vcek.der'), at: new Date('2024-01-01T00:00:00Z') };
  assert.equal(await failure(verifySnpReport(gosev.report(), other)), 'snp.signature_invalid');
  assert.equal(await failure(verifySnpReport(gosev.report(), { at })), 'snp.endorsement_key_missing');
  assert.equal(await failure(verifySnpReport(byName('trustee Milan v3').report(), { vcek: fixture('snp/trustee_milan_vcek.der'), at: new Date('2025-06-01T00:00:00Z') })), 'snp.signing_key_mismatch');
  assert.equal(await failure(verifySnpReport(gosev.report(), { ...gosev.options(), product: 'Genoa' })), 'snp.product_mismatch');
  // A chain that brings a root other than the pinned one is refused.
  assert.equal(await failure(verifySnpReport(gosev.report(), { ...gosev.options(), chain: fixtureText('snp/amd_genoa_vcek_ask_ark.pem') })), 'snp.ark_untrusted');
  // A report whose SIGNING_KEY says "none" or a reserved value.
  const unsigned = gosev.report();
  unsigned[0x48] = 7 << 2;
  assert.equal(await failure(verifySnpReport(unsigned, gosev.options())), 'snp.report_unsigned');
  unsigned[0x48] = 3 << 2;
  assert.equal(await failure(verifySnpReport(unsigned, gosev.options())), 'snp.signing_key_invalid');
  const algo = gosev.report();
  algo[0x34] = 2;
  assert.equal(await failure(verifySnpReport(algo, gosev.options())), 'snp.signature_algorithm_unsupported');
});

test('the AMD extensions of a real VCEK decode (TCB, product, struct version, hwID)', fixtureTest(), async () => {
  // Mismatches between these and a signed report are exercised with a private PKI in synthetic.test.ts.
  const { describeEndorsement, parseCertificates } = await import('../../../src/evidence/snp/endorsement.ts');
  const info = describeEndorsement(parseCertificates(fixture('snp/trustee_milan_vcek.der'))[0]);
  assert.equal(info.kind, 'vcek');
  assert.deepEqual(info.tcb, { bootloader: 3, tee: 0, snp: 8, microcode: 115 });
  assert.equal(info.productName, 'Milan-B0');
  assert.equal(info.product, 'Milan');
  assert.equal(info.structVersion, 0);
  assert.equal(info.hwId?.length, 64);
  const { claims } = await verifySnpReport(fixture('snp/trustee_milan_vcek_report.bin'), { vcek: fixture('snp/trustee_milan_vcek.der'), at: new Date('2025-06-01T00:00:00Z') });
  assert.equal(claims.chipId.startsWith('c38427a30d4c7af9'), true);
  const vlek = describeEndorsement(parseCertificates(fixture('snp/trustee_milan_vlek.der'))[0]);
  assert.deepEqual([vlek.kind, vlek.productName, vlek.hwId, vlek.tcb], ['vlek', 'Milan', undefined, { bootloader: 4, tee: 0, snp: 24, microcode: 217 }]);
});

test('Azure HCL: the SNP report at 0x20 is the same format (byte 0x1A6 zeroed → refused)', fixtureTest(), async () => {
  const hcl = fixture('azure/trustee_azsnp_hcl_report.bin');
  hcl[0x1a6] = 0;
  const c = byName('trustee Azure HCL');
  assert.equal(await failure(verifySnpReport(snpReportFromHcl(hcl), c.options())), 'snp.signature_invalid');
  const evidence = JSON.parse(fixtureText('azure/trustee_azsnp_evidence_v2.json'));
  assert.equal(fromBase64(evidence.vcek)[0], 0x30);
});
