import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import { decodeGuestPolicy, decodeKeyInfo, decodePlatformInfo } from '../../../src/evidence/snp/flags.ts';
import { productFromCpuid, productFromName } from '../../../src/evidence/snp/product.ts';
import { parseSnpReport, SNP_REPORT_SIZE } from '../../../src/evidence/snp/report.ts';
import { reportSignatureP1363 } from '../../../src/evidence/snp/signature.ts';
import { decodeTcb, encodeTcb } from '../../../src/evidence/snp/tcb.ts';
import { fixture } from '../../support/fixtures.ts';
import { fixtureTest } from '../../support/fixtures.ts';
import { SNP_CASES } from './cases.ts';

const zeros = (n: number) => '00'.repeat(n);

test('go-sev-guest Milan report: every field the upstream check_test asserts', fixtureTest(), () => {
  const r = parseSnpReport(fixture('snp/gosevguest_milan_attestation.bin'));
  assert.equal(r.version, 2);
  assert.equal(r.guestSvn, 0);
  assert.equal(r.policyValue, 0xb0000n);
  assert.deepEqual(
    { debug: r.policy.debug, smt: r.policy.smt, migrateMa: r.policy.migrateMa, reservedOne: r.policy.reservedOne, singleSocket: r.policy.singleSocket, abi: [r.policy.abiMajor, r.policy.abiMinor] },
    { debug: true, smt: true, migrateMa: false, reservedOne: true, singleSocket: false, abi: [0, 0] },
  );
  assert.equal(toHex(r.familyId), zeros(16));
  assert.equal(toHex(r.imageId), zeros(16));
  assert.equal(r.vmpl, 0);
  assert.equal(r.signatureAlgo, 1);
  assert.equal(r.platformInfoValue, 1n);
  assert.equal(r.platformInfo.smtEnabled, true);
  assert.equal(r.platformInfo.tsmeEnabled, false);
  assert.deepEqual(r.keyInfo, { authorKeyEnabled: false, maskChipKey: false, signingKey: 'vcek', signingKeyValue: 0, reservedBits: 0 });
  assert.equal(toHex(r.reportData), '0102030405' + zeros(59));
  assert.equal(toHex(r.measurement), 'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01');
  assert.equal(toHex(r.hostData), zeros(32));
  assert.equal(toHex(r.idKeyDigest), zeros(48));
  assert.equal(toHex(r.authorKeyDigest), zeros(48));
  assert.equal(toHex(r.reportId), '8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a');
  assert.equal(toHex(r.reportIdMa), 'ff'.repeat(32));
  assert.equal(toHex(r.chipId), '3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d');
  // 0x4405000000000002 = 4901323769462652930: bootloader 2, tee 0, snp 5, microcode 68.
  for (const tcb of [r.currentTcb, r.reportedTcb, r.committedTcb, r.launchTcb]) assert.equal(tcb, 4901323769462652930n);
  assert.deepEqual(decodeTcb(r.reportedTcb, 'Milan'), { bootloader: 2, tee: 0, snp: 5, microcode: 68, hex: '4405000000000002' });
  assert.deepEqual(r.currentVersion, { major: 1, minor: 49, build: 3 });
  assert.deepEqual(r.committedVersion, { major: 1, minor: 49, build: 3 });
  assert.equal(r.cpuid, undefined, 'version 2 has no CPUID fields');
  assert.equal(r.launchMitVector, undefined);
  assert.equal(r.signedBytes.length, 0x2a0);
  assert.equal(reportSignatureP1363(r).length, 96);
});

test('trustee Milan VCEK report: ID block fields', fixtureTest(), () => {
  const r = parseSnpReport(fixture('snp/trustee_milan_vcek_report.bin'));
  assert.equal(r.guestSvn, 4);
  assert.equal(toHex(r.familyId), '01' + zeros(15));
  assert.equal(toHex(r.imageId), '02' + zeros(15));
  assert.equal(r.policyValue, 0x3001fn);
  assert.equal(toHex(r.reportData), 'ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2' + zeros(32));
  assert.equal(toHex(r.measurement), 'a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c');
  assert.equal(toHex(r.idKeyDigest), '0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3');
  assert.equal(r.reportedTcb, 0x7308000000000003n);
  assert.ok(toHex(r.chipId).startsWith('c38427a30d4c7af9') && toHex(r.chipId).endsWith('477524e'));
});

test('trustee Milan VLEK report (v3): signing key, CPUID, platform info, firmware', fixtureTest(), () => {
  const r = parseSnpReport(fixture('snp/trustee_milan_vlek_report.bin'));
  assert.equal(r.version, 3);
  assert.equal(r.keyInfo.signingKey, 'vlek');
  assert.equal(r.policyValue, 0x30000n);
  assert.equal(r.platformInfoValue, 0x27n);
  assert.deepEqual(
    [r.platformInfo.smtEnabled, r.platformInfo.tsmeEnabled, r.platformInfo.eccEnabled, r.platformInfo.raplDisabled, r.platformInfo.ciphertextHidingEnabled, r.platformInfo.aliasCheckComplete],
    [true, true, true, false, false, true],
  );
  assert.deepEqual(r.cpuid, { family: 0x19, model: 0x01, stepping: 0x01 });
  assert.equal(productFromCpuid(r.cpuid!), 'Milan');
  assert.deepEqual(decodeTcb(r.reportedTcb, 'Milan'), { bootloader: 4, tee: 0, snp: 24, microcode: 217, hex: 'd918000000000004' });
  assert.deepEqual(r.currentVersion, { major: 1, minor: 55, build: 29 });
  assert.equal(toHex(r.measurement), '8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0');
});

test('Genoa report (v3): CPUID 19/11/01, TCB 0x541700000000000a, firmware 1.55 build 40', fixtureTest(), () => {
  const r = parseSnpReport(fixture('snp/trustee_azure_genoa_snp_report.bin'));
  assert.equal(r.version, 3);
  assert.deepEqual(r.cpuid, { family: 0x19, model: 0x11, stepping: 0x01 });
  assert.equal(productFromCpuid(r.cpuid!), 'Genoa');
  assert.equal(r.policyValue, 0x3001fn);
  assert.equal(r.platformInfoValue, 0x24n);
  assert.deepEqual(decodeTcb(r.reportedTcb, 'Genoa'), { bootloader: 10, tee: 0, snp: 23, microcode: 84, hex: '541700000000000a' });
  assert.deepEqual(r.currentVersion, { major: 1, minor: 55, build: 40 });
});

test('every fixture report parses, and each signed region is the first 0x2A0 bytes', fixtureTest(), () => {
  for (const c of SNP_CASES) {
    const bytes = c.report();
    const r = parseSnpReport(bytes);
    assert.deepEqual(r.signedBytes, bytes.subarray(0, 0x2a0), c.name);
    assert.ok(r.version === 2 || r.version === 3, c.name);
  }
});

test('size and version errors name the failed check', fixtureTest(), () => {
  const good = fixture('snp/gosevguest_milan_attestation.bin');
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (error) {
      assert.ok(isSigilError(error));
      return error.code;
    }
    return 'no error';
  };
  assert.equal(code(() => parseSnpReport(good.subarray(0, SNP_REPORT_SIZE - 1))), 'snp.report_truncated');
  assert.equal(code(() => parseSnpReport(new Uint8Array(0))), 'snp.report_truncated');
  assert.equal(code(() => parseSnpReport(new Uint8Array(SNP_REPORT_SIZE + 1))), 'snp.report_trailing_bytes');
  const v1 = good.slice();
  v1[0] = 1;
  assert.equal(code(() => parseSnpReport(v1)), 'snp.report_version_unsupported');
  assert.equal(code(() => parseSnpReport('not bytes' as unknown as Uint8Array)), 'snp.report_malformed');
});

test('version 5 layout: mitigation vectors are read from 0x1F8 and 0x200', fixtureTest(), () => {
  const bytes = fixture('snp/gosevguest_milan_attestation.bin');
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  view.setUint32(0, 5, true);
  view.setBigUint64(0x1f8, 0x11n, true);
  view.setBigUint64(0x200, 0x2233n, true);
  const r = parseSnpReport(bytes);
  assert.equal(r.launchMitVector, 0x11n);
  assert.equal(r.currentMitVector, 0x2233n);
  assert.deepEqual(r.cpuid, { family: 0, model: 0, stepping: 0 });
});

test('guest policy bits decode by name (ABI 1.58 table 9)', () => {
  const all = decodeGuestPolicy((1n << 26n) - 1n);
  assert.deepEqual(
    [all.abiMinor, all.abiMajor, all.smt, all.reservedOne, all.migrateMa, all.debug, all.singleSocket, all.cxlAllow, all.memAes256Xts, all.raplDis, all.ciphertextHiding, all.pageSwapDisable, all.reservedBits],
    [0xff, 0xff, true, true, true, true, true, true, true, true, true, true, '0'],
  );
  const each: [bigint, keyof ReturnType<typeof decodeGuestPolicy>][] = [
    [1n << 16n, 'smt'], [1n << 18n, 'migrateMa'], [1n << 19n, 'debug'], [1n << 20n, 'singleSocket'], [1n << 21n, 'cxlAllow'],
    [1n << 22n, 'memAes256Xts'], [1n << 23n, 'raplDis'], [1n << 24n, 'ciphertextHiding'], [1n << 25n, 'pageSwapDisable'],
  ];
  for (const [value, name] of each) {
    const p = decodeGuestPolicy(value);
    assert.equal(p[name], true, name);
    const set = Object.entries(p).filter(([k, v]) => v === true && k !== name);
    assert.deepEqual(set, [], `${name} alone`);
  }
  assert.equal(decodeGuestPolicy(0x0305n).abiMajor, 3);
  assert.equal(decodeGuestPolicy(0x0305n).abiMinor, 5);
  assert.equal(decodeGuestPolicy(1n << 40n).reservedBits, (1n << 40n).toString(16));
});

test('platform info and key selection bits decode by name', () => {
  const p = decodePlatformInfo(0b1011_1111n | (1n << 9n));
  assert.deepEqual(
    [p.smtEnabled, p.tsmeEnabled, p.eccEnabled, p.raplDisabled, p.ciphertextHidingEnabled, p.aliasCheckComplete, p.tioEnabled, p.reservedBits],
    [true, true, true, true, true, true, true, '200'],
  );
  assert.deepEqual(decodeKeyInfo(0b00001), { authorKeyEnabled: true, maskChipKey: false, signingKey: 'vcek', signingKeyValue: 0, reservedBits: 0 });
  assert.deepEqual(decodeKeyInfo(0b00110), { authorKeyEnabled: false, maskChipKey: true, signingKey: 'vlek', signingKeyValue: 1, reservedBits: 0 });
  assert.equal(decodeKeyInfo(7 << 2).signingKey, 'none');
  assert.equal(decodeKeyInfo(3 << 2).signingKey, 'reserved');
  assert.equal(decodeKeyInfo(1 << 5).reservedBits, 32);
});

test('TCB layout differs by product: Turin puts FMC at byte 0 and SNP at byte 3', () => {
  const value = 0x4400000003020100n | 0x0005000000000000n;
  assert.deepEqual(decodeTcb(value, 'Genoa'), { bootloader: 0x00, tee: 0x01, snp: 0x05, microcode: 0x44, hex: '4405000003020100' });
  assert.deepEqual(decodeTcb(value, 'Turin'), { fmc: 0x00, bootloader: 0x01, tee: 0x02, snp: 0x03, microcode: 0x44, hex: '4405000003020100' });
  const parts = { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5 };
  assert.deepEqual(decodeTcb(encodeTcb(parts, 'Turin'), 'Turin'), { ...parts, hex: '0500000004030201' });
  assert.equal(encodeTcb({ bootloader: 2, tee: 0, snp: 5, microcode: 68 }, 'Milan'), 0x4405000000000002n);
});

test('products from CPUID and from certificate names', () => {
  assert.equal(productFromCpuid({ family: 0x19, model: 0x01, stepping: 1 }), 'Milan');
  assert.equal(productFromCpuid({ family: 0x19, model: 0x11, stepping: 1 }), 'Genoa');
  assert.equal(productFromCpuid({ family: 0x19, model: 0xa0, stepping: 1 }), 'Genoa');
  assert.equal(productFromCpuid({ family: 0x1a, model: 0x02, stepping: 0 }), 'Turin');
  assert.equal(productFromCpuid({ family: 0x1a, model: 0x50, stepping: 0 }), undefined);
  assert.equal(productFromCpuid({ family: 0x17, model: 0x31, stepping: 0 }), undefined);
  assert.equal(productFromName('Milan-B0'), 'Milan');
  assert.equal(productFromName('Genoa'), 'Genoa');
  assert.equal(productFromName('Siena-A0'), 'Genoa');
  assert.equal(productFromName('Turin'), 'Turin');
  assert.equal(productFromName('Venice'), undefined);
});
