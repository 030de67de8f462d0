import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { verified, type Verified } from '../../../src/evidence/verifier.ts';
import { appraiseSnp, type SnpAppraisalPolicy } from '../../../src/evidence/snp/appraise.ts';
import { verifySnpReport, type SnpClaims } from '../../../src/evidence/snp/verify.ts';
import { fixture, fixturesAvailable, fixtureTest } from '../../support/fixtures.ts';

let gosev: Verified<SnpClaims>;
let trustee: Verified<SnpClaims>;

before(async () => {
  if (!fixturesAvailable()) return;
  gosev = await verifySnpReport(fixture('snp/gosevguest_milan_attestation.bin'), { vcek: fixture('snp/gosevguest_milan_vcek.der'), at: new Date('2022-09-24T01:00:00Z') });
  trustee = await verifySnpReport(fixture('snp/trustee_milan_vcek_report.bin'), { vcek: fixture('snp/trustee_milan_vcek.der'), at: new Date('2025-06-01T00:00:00Z') });
});

const results = (policy: SnpAppraisalPolicy, rule: string, evidence = gosev) =>
  appraiseSnp(evidence, policy).trace.filter((t) => t.rule === rule).map((t) => t.result);

// Values from google/go-sev-guest tools/check/check_test.go for this report (fixtures README).
const GOSEV_PASSING: SnpAppraisalPolicy = {
  reportData: '01020304050000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000',
  measurements: ['b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01'],
  hostData: '00'.repeat(32),
  familyId: '00'.repeat(16),
  imageId: '00'.repeat(16),
  minimumTcb: { bootloader: 2, tee: 0, snp: 5, microcode: 68 },
  minimumLaunchTcb: { bootloader: 2, tee: 0, snp: 5, microcode: 68 },
  guestPolicy: { allowDebug: true, allowSmt: true },
  minimumFirmware: { major: 1, minor: 49, build: 0 },
  vmpl: 0,
  products: ['Milan'],
  signingKeys: ['vcek'],
  chipIds: ['3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d'],
};

test('go-sev-guest check_test: the passing values pass, with a full trace', fixtureTest(), () => {
  const appraisal = appraiseSnp(gosev, GOSEV_PASSING);
  assert.equal(appraisal.status, 'affirming', JSON.stringify(appraisal.trace.filter((t) => t.result !== 'pass')));
  assert.deepEqual(appraisal.trustVector, { executables: 2, instance_identity: 2, configuration: 2, hardware: 2 });
  const measurement = appraisal.trace.find((t) => t.rule === 'snp.measurement')!;
  assert.deepEqual(measurement, { rule: 'snp.measurement', claim: 'measurement', expected: GOSEV_PASSING.measurements, actual: GOSEV_PASSING.measurements![0], result: 'pass' });
  // Four TCB components × reported/committed/current, and four for launch.
  assert.equal(appraisal.trace.filter((t) => t.rule === 'snp.tcb_minimum').length, 12);
  assert.equal(appraisal.trace.filter((t) => t.rule === 'snp.launch_tcb_minimum').length, 4);
  for (const entry of appraisal.trace) assert.ok('expected' in entry && 'actual' in entry && entry.claim.length > 0, entry.rule);
});

test('go-sev-guest check_test: the failing values fail, each in its own rule', fixtureTest(), () => {
  // minimum TCB 4901323769462652931 = 0x4405000000000003: bootloader 3.
  assert.deepEqual(results({ minimumTcb: { bootloader: 3 } }, 'snp.tcb_minimum'), ['fail', 'fail', 'fail']);
  assert.deepEqual(results({ minimumLaunchTcb: { bootloader: 3 } }, 'snp.launch_tcb_minimum'), ['fail']);
  // Guest policy 0 (nothing allowed) fails: debug and SMT are set.
  assert.deepEqual(results({}, 'snp.policy_debug'), ['fail']);
  assert.deepEqual(results({ guestPolicy: { allowDebug: true, allowSmt: false } }, 'snp.policy_smt'), ['fail']);
  assert.deepEqual(results({ minimumFirmware: { major: 1, minor: 50 } }, 'snp.firmware_minimum'), ['fail', 'fail']);
  assert.deepEqual(results({ minimumFirmware: { major: 1, minor: 49, build: 90 } }, 'snp.firmware_minimum'), ['fail', 'fail']);
  assert.deepEqual(results({ minimumFirmware: { major: 1, minor: 49, build: 3 } }, 'snp.firmware_minimum'), ['pass', 'pass']);
  assert.deepEqual(results({ vmpl: 1 }, 'snp.vmpl'), ['fail']);
  assert.deepEqual(results({ vmpl: [0, 1] }, 'snp.vmpl'), ['pass']);
  // platform_info 0 means "SMT must be off": this platform has SMT on.
  assert.deepEqual(results({ platform: { allowSmt: false } }, 'snp.platform_smt'), ['fail']);
  assert.deepEqual(results({ requireIdBlock: true }, 'snp.id_block_required'), ['fail']);
  assert.deepEqual(results({ requireAuthorKey: true }, 'snp.author_key_required'), ['fail']);
  assert.deepEqual(results({ reportData: '01020304' }, 'snp.report_data'), ['fail']);
  assert.deepEqual(results({ reportData: '0102030405' }, 'snp.report_data'), ['pass'], 'a shorter expectation is zero-extended');
  assert.deepEqual(results({ measurements: ['00'.repeat(48)] }, 'snp.measurement'), ['fail']);
  assert.deepEqual(results({ hostData: '01' }, 'snp.host_data'), ['fail']);
  assert.deepEqual(results({ products: ['Genoa'] }, 'snp.product'), ['fail']);
  assert.deepEqual(results({ signingKeys: ['vlek'] }, 'snp.signing_key'), ['fail']);
  assert.deepEqual(results({ requireCrlChecked: true }, 'snp.crl_checked'), ['fail']);
  assert.deepEqual(results({ minimumReportVersion: 3 }, 'snp.report_version_minimum'), ['fail']);
  const failing = appraiseSnp(gosev, { ...GOSEV_PASSING, vmpl: 1 });
  assert.equal(failing.status, 'contraindicated');
  assert.equal(failing.trustVector.configuration, 96);
  assert.equal(failing.trustVector.executables, 2);
});

test('secure defaults: without a policy a debuggable guest is contraindicated; unnamed references are skipped', fixtureTest(), () => {
  const appraisal = appraiseSnp(gosev);
  assert.equal(appraisal.status, 'contraindicated');
  const byRule = Object.fromEntries(appraisal.trace.map((t) => [t.rule, t.result]));
  assert.equal(byRule['snp.policy_debug'], 'fail');
  assert.equal(byRule['snp.policy_migrate_ma'], 'pass');
  assert.equal(byRule['snp.measurement'], 'skip');
  assert.equal(byRule['snp.report_data'], 'skip');
  assert.equal(byRule['snp.vmpl'], 'skip');
  assert.equal(byRule['snp.tcb_minimum'], 'skip');
  assert.equal(byRule['snp.tcb_reported_not_above_current'], 'pass');
  assert.equal(byRule['snp.tcb_reported_is_committed'], 'pass');
  assert.equal(byRule['snp.policy_reserved'], 'pass');
  assert.equal(appraisal.trustVector.executables, undefined, 'nothing about executables was appraised');
});

test('trustee ID-block report: ID key digest, family/image ID and guest SVN', fixtureTest(), () => {
  const policy: SnpAppraisalPolicy = {
    requireIdBlock: true,
    idKeyDigests: ['0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a44a3'],
    familyId: '01',
    imageId: '02',
    minimumGuestSvn: 4,
    reportData: 'ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2',
    minimumTcb: { bootloader: 3, snp: 8, microcode: 115 },
  };
  const appraisal = appraiseSnp(trustee, policy);
  assert.equal(appraisal.status, 'affirming', JSON.stringify(appraisal.trace.filter((t) => t.result !== 'pass' && t.result !== 'skip')));
  assert.deepEqual(results({ minimumGuestSvn: 5 }, 'snp.guest_svn_minimum', trustee), ['fail']);
  assert.deepEqual(results({ authorKeyDigests: ['00'.repeat(48)] }, 'snp.author_key_digest', trustee), ['pass'], 'no author key: its digest is zero');
  assert.deepEqual(results({ requireAuthorKey: true }, 'snp.author_key_required', trustee), ['fail']);
  // The current TCB (microcode 206) is above the reported one: allowed.
  assert.deepEqual(results({}, 'snp.tcb_reported_not_above_current', trustee), ['pass']);
});

test('only verified SNP evidence can be appraised; bad reference values are typed errors', fixtureTest(), () => {
  const forged = { kind: 'snp', claims: gosev.claims, verifiedAt: new Date() } as unknown as Verified<SnpClaims>;
  assert.throws(() => appraiseSnp(forged), (e) => isSigilError(e, 'snp.not_verified'));
  assert.throws(() => appraiseSnp(verified('tdx', gosev.claims, new Date()) as Verified<SnpClaims>), (e) => isSigilError(e, 'snp.not_verified'));
  assert.throws(() => appraiseSnp(gosev, { reportData: 'zz' }), (e) => isSigilError(e, 'snp.policy_invalid'));
  assert.throws(() => appraiseSnp(gosev, { hostData: '00'.repeat(33) }), (e) => isSigilError(e, 'snp.policy_invalid'));
});
