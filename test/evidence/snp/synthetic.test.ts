/**
 * Paths no real fixture covers, with a private AMD-shaped PKI (see synthetic.ts): Turin (report v5,
 * FMC in the TCB, 8-byte hwID), TCB/chip mismatches after a valid signature, masked CHIP_ID and
 * CRLs. The embedded AMD roots never trust this PKI: without `authorities` it is refused.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { appraiseSnp } from '../../../src/evidence/snp/appraise.ts';
import { parseSnpReport } from '../../../src/evidence/snp/report.ts';
import { encodeTcb } from '../../../src/evidence/snp/tcb.ts';
import { verifySnp, type SnpTrust } from '../../../src/evidence/snp/verify.ts';
import { makeCrl, makeLeaf, makeReport, makeTestPki, type ReportFields, type TestPki } from './synthetic.ts';

const AT = new Date('2025-06-01T00:00:00Z');
const TURIN_TCB = { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 0x45 };
const chipId = new Uint8Array(64);
chipId.set([0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18]);

let pki: TestPki;
let vcek: Awaited<ReturnType<typeof makeLeaf>>;

before(async () => {
  pki = await makeTestPki('Turin');
  vcek = await makeLeaf(pki, { productName: 'Turin', structVersion: 1, tcb: TURIN_TCB, hwId: chipId.slice(0, 8) });
});

function turinFields(overrides: Partial<ReportFields> = {}): ReportFields {
  const tcb = encodeTcb(TURIN_TCB, 'Turin');
  return {
    version: 5, policy: 0x30000n, currentTcb: tcb, reportedTcb: tcb, committedTcb: tcb, launchTcb: tcb,
    platformInfo: 0b10_0101n, chipId, cpuid: [0x1a, 0x02, 0x01], launchMitVector: 0x3n, currentMitVector: 0x7n,
    measurement: new Uint8Array(48).fill(0x5a), reportData: new Uint8Array(64).fill(0x11),
    ...overrides,
  };
}

function trust(extra: Partial<SnpTrust> = {}): SnpTrust {
  return { at: AT, endorsementKey: new Uint8Array(vcek.cert.rawData), authorities: pki.authorities, ...extra };
}

async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isSigilError(error), String(error));
    return error.code;
  }
  return 'verified';
}

test('Turin report v5: FMC-first TCB layout, 8-byte hwID, mitigation vectors', async () => {
  const report = parseSnpReport(await makeReport(turinFields(), vcek.keys.privateKey));
  const { claims } = await verifySnp(report, trust());
  assert.equal(claims.product, 'Turin');
  assert.equal(claims.reportVersion, 5);
  assert.deepEqual(claims.reportedTcb, { ...TURIN_TCB, hex: '4500000004030201' });
  assert.equal(claims.launchMitVector, '0000000000000003');
  assert.equal(claims.currentMitVector, '0000000000000007');
  assert.equal(claims.endorsement.chipIdChecked, true);
  assert.equal(claims.endorsement.productName, 'Turin');
  assert.equal(claims.platformInfo.aliasCheckComplete, true);
  assert.equal(claims.measurement, '5a'.repeat(48));
});

test('the private PKI is refused without explicit authorities (the pinned AMD ARK)', async () => {
  const report = parseSnpReport(await makeReport(turinFields(), vcek.keys.privateKey));
  assert.equal(await failure(verifySnp(report, trust({ authorities: undefined }))), 'snp.vcek_chain_invalid');
  // Bringing the private ARK in the chain does not help: it is not the pinned root.
  assert.equal(await failure(verifySnp(report, trust({ authorities: undefined, chain: [new Uint8Array(pki.ask.rawData), new Uint8Array(pki.ark.rawData)] }))), 'snp.ark_untrusted');
});

test('a signed report whose REPORTED_TCB differs from the VCEK TCB is refused (snp.tcb_mismatch)', async () => {
  const bumped = encodeTcb({ ...TURIN_TCB, fmc: 2 }, 'Turin');
  const report = parseSnpReport(await makeReport(turinFields({ reportedTcb: bumped, committedTcb: bumped, currentTcb: bumped }), vcek.keys.privateKey));
  assert.equal(await failure(verifySnp(report, trust())), 'snp.tcb_mismatch');
  // Read with the Milan layout the same bytes would name other components: the product matters.
  const milanLeaf = await makeLeaf(pki, { productName: 'Turin', structVersion: 1, tcb: { bootloader: 1, tee: 2, snp: 0, microcode: 0x45 }, hwId: chipId.slice(0, 8) });
  const sameBytes = parseSnpReport(await makeReport(turinFields(), milanLeaf.keys.privateKey));
  assert.equal(await failure(verifySnp(sameBytes, trust({ endorsementKey: new Uint8Array(milanLeaf.cert.rawData) }))), 'snp.tcb_mismatch');
});

test('a VCEK for another chip is refused (snp.chip_id_mismatch); a masked CHIP_ID skips the check', async () => {
  const otherChip = chipId.slice();
  otherChip[0] ^= 1;
  const report = parseSnpReport(await makeReport(turinFields({ chipId: otherChip }), vcek.keys.privateKey));
  assert.equal(await failure(verifySnp(report, trust())), 'snp.chip_id_mismatch');
  const tail = chipId.slice();
  tail[40] = 1; // Turin CHIP_ID past the 8-byte hwID must be zero
  assert.equal(await failure(verifySnp(parseSnpReport(await makeReport(turinFields({ chipId: tail }), vcek.keys.privateKey)), trust())), 'snp.chip_id_mismatch');
  const masked = parseSnpReport(await makeReport(turinFields({ chipId: new Uint8Array(64), keyInfo: 0b10 }), vcek.keys.privateKey));
  const { claims } = await verifySnp(masked, trust());
  assert.equal(claims.maskChipKey, true);
  assert.equal(claims.endorsement.chipIdChecked, false);
});

test('CPUID and certificate must name the same product', async () => {
  const report = parseSnpReport(await makeReport(turinFields({ cpuid: [0x19, 0x11, 0x01] }), vcek.keys.privateKey));
  assert.equal(await failure(verifySnp(report, trust())), 'snp.product_mismatch');
  const unknown = parseSnpReport(await makeReport(turinFields({ cpuid: [0x1a, 0x60, 0x00] }), vcek.keys.privateKey));
  assert.equal(await failure(verifySnp(unknown, trust())), 'snp.product_unknown');
});

test('CRLs: a current CRL from the ARK is applied; revoked, stale and foreign CRLs are refused', async () => {
  const report = parseSnpReport(await makeReport(turinFields(), vcek.keys.privateKey));
  const clean = await makeCrl(pki, {});
  const ok = await verifySnp(report, trust({ crls: [clean] }));
  assert.equal(ok.claims.endorsement.crlChecked, true);
  const revoked = await makeCrl(pki, { revoked: [pki.ask.serialNumber] });
  assert.equal(await failure(verifySnp(report, trust({ crls: [revoked] }))), 'snp.certificate_revoked');
  const stale = await makeCrl(pki, { thisUpdate: new Date('2024-01-01T00:00:00Z'), nextUpdate: new Date('2024-02-01T00:00:00Z') });
  assert.equal(await failure(verifySnp(report, trust({ crls: [stale] }))), 'snp.crl_not_current');
  const other = await makeTestPki('Turin');
  const foreign = await makeCrl(pki, { signer: other.arkKeys.privateKey });
  assert.equal(await failure(verifySnp(report, trust({ crls: [foreign] }))), 'snp.crl_invalid');
  assert.equal(await failure(verifySnp(report, trust({ crls: [new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])] }))), 'snp.crl_malformed');
  const pem = `-----BEGIN X509 CRL-----\n${btoa(String.fromCharCode(...clean))}\n-----END X509 CRL-----\n`;
  assert.equal((await verifySnp(report, trust({ crls: [pem] }))).claims.endorsement.crlChecked, true);
});

test('reported TCB older than committed: a warning by default, a failure when required', async () => {
  const newer = encodeTcb({ ...TURIN_TCB, snp: 9 }, 'Turin');
  const report = parseSnpReport(await makeReport(turinFields({ committedTcb: newer, currentTcb: newer }), vcek.keys.privateKey));
  const verified = await verifySnp(report, trust());
  const lenient = appraiseSnp(verified);
  const rule = lenient.trace.find((t) => t.rule === 'snp.tcb_reported_is_committed')!;
  assert.equal(rule.result, 'warn');
  assert.equal(lenient.status, 'warning');
  assert.equal(lenient.trustVector.hardware, 32);
  const strict = appraiseSnp(verified, { requireReportedTcbCommitted: true, minimumTcb: { fmc: 1, snp: 4 } });
  assert.equal(strict.status, 'contraindicated');
  assert.deepEqual(strict.trace.filter((t) => t.rule === 'snp.tcb_minimum').map((t) => [t.claim, t.result]), [
    ['reportedTcb.fmc', 'pass'], ['reportedTcb.snp', 'pass'], ['committedTcb.fmc', 'pass'], ['committedTcb.snp', 'pass'], ['currentTcb.fmc', 'pass'], ['currentTcb.snp', 'pass'],
  ]);
  const floor = appraiseSnp(verified, { minimumTcb: { fmc: 2 } });
  assert.deepEqual(floor.trace.filter((t) => t.rule === 'snp.tcb_minimum').map((t) => t.result), ['fail', 'fail', 'fail']);
});

test('a VCEK outside its validity, and one with a missing TCB extension, are refused', async () => {
  const expired = await makeLeaf(pki, { productName: 'Turin', structVersion: 1, tcb: TURIN_TCB, hwId: chipId.slice(0, 8), notAfter: new Date('2025-01-01T00:00:00Z') });
  const report = parseSnpReport(await makeReport(turinFields(), expired.keys.privateKey));
  assert.equal(await failure(verifySnp(report, trust({ endorsementKey: new Uint8Array(expired.cert.rawData) }))), 'snp.certificate_expired');
  const noFmc = await makeLeaf(pki, { productName: 'Turin', structVersion: 1, tcb: { ...TURIN_TCB, fmc: undefined }, hwId: chipId.slice(0, 8) });
  const report2 = parseSnpReport(await makeReport(turinFields(), noFmc.keys.privateKey));
  assert.equal(await failure(verifySnp(report2, trust({ endorsementKey: new Uint8Array(noFmc.cert.rawData) }))), 'snp.tcb_mismatch');
});
