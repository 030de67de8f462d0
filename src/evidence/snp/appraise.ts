import { SigilError } from '../../core/errors.ts';
import { isVerified, statusOf, TRUST_TIER, type Appraisal, type TraceEntry, type TrustVector, type Verified } from '../verifier.ts';
import type { SnpProduct } from './product.ts';
import { tcbAtMost, tcbBelow, type TcbComponent, type TcbVersion } from './tcb.ts';
import type { SnpClaims } from './verify.ts';

/**
 * Appraisal of verified SNP claims against reference values and a policy. Crypto is done (verify);
 * this only compares. Secure defaults hold without any policy: a debuggable guest, a guest that
 * may be exported by a migration agent and a report whose REPORTED_TCB is above the platform's
 * current TCB are refused; a REPORTED_TCB older than the committed one is a warning. Everything
 * else applies when the policy names it; unnamed reference values show as "skip" in the trace.
 */
export type TcbFloor = Partial<Record<TcbComponent, number>>;

export interface SnpAppraisalPolicy {
  /** Allowed launch measurements (hex, 48 bytes). */
  measurements?: string[];
  /** Expected REPORT_DATA (hex, ≤ 64 bytes; shorter values are zero-extended to 64). */
  reportData?: string;
  hostData?: string;
  familyId?: string;
  imageId?: string;
  idKeyDigests?: string[];
  authorKeyDigests?: string[];
  requireIdBlock?: boolean;
  requireAuthorKey?: boolean;
  /** Floor for REPORTED_TCB, COMMITTED_TCB and CURRENT_TCB, per component. */
  minimumTcb?: TcbFloor;
  /** Floor for LAUNCH_TCB, per component. */
  minimumLaunchTcb?: TcbFloor;
  /** Refuse (instead of warn) when REPORTED_TCB is older than COMMITTED_TCB. */
  requireReportedTcbCommitted?: boolean;
  /** Allowed VMPLs (0 is the most privileged). */
  vmpl?: number | number[];
  minimumGuestSvn?: number;
  /** Floor for the current and committed SNP firmware version. */
  minimumFirmware?: { major: number; minor: number; build?: number };
  minimumReportVersion?: number;
  guestPolicy?: {
    allowDebug?: boolean;
    allowMigrationAgent?: boolean;
    allowSmt?: boolean;
    requireSingleSocket?: boolean;
    allowCxl?: boolean;
    requireMemAes256Xts?: boolean;
    requireRaplDisabled?: boolean;
    requireCiphertextHiding?: boolean;
    requirePageSwapDisabled?: boolean;
    minimumAbi?: { major: number; minor: number };
  };
  platform?: {
    allowSmt?: boolean;
    requireTsme?: boolean;
    requireEcc?: boolean;
    requireRaplDisabled?: boolean;
    requireCiphertextHiding?: boolean;
    requireAliasCheckComplete?: boolean;
  };
  products?: SnpProduct[];
  signingKeys?: ('vcek' | 'vlek')[];
  chipIds?: string[];
  requireCrlChecked?: boolean;
}

type Component = keyof TrustVector;
interface Rule extends TraceEntry {
  component: Component;
}

function normalizeHex(value: string, bytes?: number): string {
  const clean = value.toLowerCase().replace(/^0x/, '');
  if (!/^([0-9a-f]{2})*$/.test(clean)) throw new SigilError('snp.policy_invalid', `"${value}" is not hex`);
  if (bytes !== undefined) {
    if (clean.length > bytes * 2) throw new SigilError('snp.policy_invalid', `"${value}" is longer than ${bytes} bytes`);
    return clean.padEnd(bytes * 2, '0');
  }
  return clean;
}

const isZero = (hex: string) => /^0*$/.test(hex);

export function appraiseSnp(evidence: Verified<SnpClaims>, policy: SnpAppraisalPolicy = {}): Appraisal {
  if (!isVerified(evidence) || evidence.kind !== 'snp') throw new SigilError('snp.not_verified', 'only verified SNP evidence can be appraised');
  const c = evidence.claims;
  const rules: Rule[] = [];
  const add = (component: Component, rule: string, claim: string, expected: unknown, actual: unknown, ok: boolean | 'warn' | 'skip', message?: string) =>
    rules.push({ component, rule, claim, expected, actual, result: ok === true ? 'pass' : ok === false ? 'fail' : ok, ...(message ? { message } : {}) });
  const oneOf = (component: Component, rule: string, claim: string, allowed: string[] | undefined, actual: string, bytes?: number) => {
    if (allowed === undefined) return add(component, rule, claim, 'any', actual, 'skip', 'no reference value in the policy');
    const list = allowed.map((v) => normalizeHex(v, bytes));
    add(component, rule, claim, list, actual, list.includes(actual));
  };
  const equal = (component: Component, rule: string, claim: string, expected: string | undefined, actual: string, bytes: number) => {
    if (expected === undefined) return;
    const want = normalizeHex(expected, bytes);
    add(component, rule, claim, want, actual, want === actual);
  };

  // Executables: what was launched.
  oneOf('executables', 'snp.measurement', 'measurement', policy.measurements, c.measurement, 48);
  equal('executables', 'snp.family_id', 'familyId', policy.familyId, c.familyId, 16);
  equal('executables', 'snp.image_id', 'imageId', policy.imageId, c.imageId, 16);
  if (policy.requireIdBlock) add('executables', 'snp.id_block_required', 'idKeyDigest', 'non-zero', c.idKeyDigest, !isZero(c.idKeyDigest));
  if (policy.idKeyDigests) oneOf('executables', 'snp.id_key_digest', 'idKeyDigest', policy.idKeyDigests, c.idKeyDigest, 48);
  if (policy.requireAuthorKey) add('executables', 'snp.author_key_required', 'authorKeyEnabled', true, c.authorKeyEnabled, c.authorKeyEnabled && !isZero(c.authorKeyDigest));
  if (policy.authorKeyDigests) oneOf('executables', 'snp.author_key_digest', 'authorKeyDigest', policy.authorKeyDigests, c.authorKeyDigest, 48);
  if (policy.minimumGuestSvn !== undefined) add('executables', 'snp.guest_svn_minimum', 'guestSvn', `>= ${policy.minimumGuestSvn}`, c.guestSvn, c.guestSvn >= policy.minimumGuestSvn);

  // Instance identity: the caller's nonce / key binding.
  if (policy.reportData === undefined) add('instance_identity', 'snp.report_data', 'reportData', 'any', c.reportData, 'skip', 'no expected report_data in the policy');
  else equal('instance_identity', 'snp.report_data', 'reportData', policy.reportData, c.reportData, 64);

  // Configuration: guest policy, VMPL, host data, platform.
  const gp = policy.guestPolicy ?? {};
  add('configuration', 'snp.policy_debug', 'policy.debug', gp.allowDebug ? 'any' : false, c.policy.debug, gp.allowDebug === true || !c.policy.debug);
  add('configuration', 'snp.policy_migrate_ma', 'policy.migrateMa', gp.allowMigrationAgent ? 'any' : false, c.policy.migrateMa, gp.allowMigrationAgent === true || !c.policy.migrateMa);
  if (gp.allowSmt === false) add('configuration', 'snp.policy_smt', 'policy.smt', false, c.policy.smt, !c.policy.smt);
  if (gp.requireSingleSocket) add('configuration', 'snp.policy_single_socket', 'policy.singleSocket', true, c.policy.singleSocket, c.policy.singleSocket);
  if (gp.allowCxl === false) add('configuration', 'snp.policy_cxl', 'policy.cxlAllow', false, c.policy.cxlAllow, !c.policy.cxlAllow);
  if (gp.requireMemAes256Xts) add('configuration', 'snp.policy_mem_aes_256_xts', 'policy.memAes256Xts', true, c.policy.memAes256Xts, c.policy.memAes256Xts);
  if (gp.requireRaplDisabled) add('configuration', 'snp.policy_rapl_dis', 'policy.raplDis', true, c.policy.raplDis, c.policy.raplDis);
  if (gp.requireCiphertextHiding) add('configuration', 'snp.policy_ciphertext_hiding', 'policy.ciphertextHiding', true, c.policy.ciphertextHiding, c.policy.ciphertextHiding);
  if (gp.requirePageSwapDisabled) add('configuration', 'snp.policy_page_swap_disable', 'policy.pageSwapDisable', true, c.policy.pageSwapDisable, c.policy.pageSwapDisable);
  if (gp.minimumAbi) {
    const { major, minor } = gp.minimumAbi;
    const ok = c.policy.abiMajor > major || (c.policy.abiMajor === major && c.policy.abiMinor >= minor);
    add('configuration', 'snp.policy_abi_minimum', 'policy.abi', `>= ${major}.${minor}`, `${c.policy.abiMajor}.${c.policy.abiMinor}`, ok);
  }
  const reservedOk = c.policy.reservedOne && c.policy.reservedBits === '0';
  add('configuration', 'snp.policy_reserved', 'policy.hex', 'bit 17 set, bits 26-63 clear', c.policy.hex, reservedOk ? true : 'warn', reservedOk ? undefined : 'policy bits Sigil does not know are set');
  if (policy.vmpl !== undefined) {
    const allowed = Array.isArray(policy.vmpl) ? policy.vmpl : [policy.vmpl];
    add('configuration', 'snp.vmpl', 'vmpl', allowed, c.vmpl, allowed.includes(c.vmpl));
  } else add('configuration', 'snp.vmpl', 'vmpl', 'any', c.vmpl, 'skip', 'no VMPL in the policy');
  equal('configuration', 'snp.host_data', 'hostData', policy.hostData, c.hostData, 32);
  if (policy.minimumReportVersion !== undefined) add('configuration', 'snp.report_version_minimum', 'reportVersion', `>= ${policy.minimumReportVersion}`, c.reportVersion, c.reportVersion >= policy.minimumReportVersion);
  const pf = policy.platform ?? {};
  if (pf.allowSmt === false) add('configuration', 'snp.platform_smt', 'platformInfo.smtEnabled', false, c.platformInfo.smtEnabled, !c.platformInfo.smtEnabled);
  if (pf.requireTsme) add('configuration', 'snp.platform_tsme', 'platformInfo.tsmeEnabled', true, c.platformInfo.tsmeEnabled, c.platformInfo.tsmeEnabled);
  if (pf.requireEcc) add('configuration', 'snp.platform_ecc', 'platformInfo.eccEnabled', true, c.platformInfo.eccEnabled, c.platformInfo.eccEnabled);
  if (pf.requireRaplDisabled) add('configuration', 'snp.platform_rapl_dis', 'platformInfo.raplDisabled', true, c.platformInfo.raplDisabled, c.platformInfo.raplDisabled);
  if (pf.requireCiphertextHiding) add('configuration', 'snp.platform_ciphertext_hiding', 'platformInfo.ciphertextHidingEnabled', true, c.platformInfo.ciphertextHidingEnabled, c.platformInfo.ciphertextHidingEnabled);
  if (pf.requireAliasCheckComplete) add('configuration', 'snp.platform_alias_check', 'platformInfo.aliasCheckComplete', true, c.platformInfo.aliasCheckComplete, c.platformInfo.aliasCheckComplete);

  // Hardware: product, key, TCB, firmware.
  if (policy.products) add('hardware', 'snp.product', 'product', policy.products, c.product, policy.products.includes(c.product));
  if (policy.signingKeys) add('hardware', 'snp.signing_key', 'signingKey', policy.signingKeys, c.signingKey, policy.signingKeys.includes(c.signingKey));
  if (policy.chipIds) oneOf('hardware', 'snp.chip_id', 'chipId', policy.chipIds, c.chipId, 64);
  if (policy.requireCrlChecked) add('hardware', 'snp.crl_checked', 'endorsement.crlChecked', true, c.endorsement.crlChecked, c.endorsement.crlChecked);
  tcbRules(c, policy, add);
  if (policy.minimumFirmware) {
    const floor = policy.minimumFirmware;
    for (const which of ['currentVersion', 'committedVersion'] as const) {
      const v = c[which];
      const ok = v.major !== floor.major ? v.major > floor.major : v.minor !== floor.minor ? v.minor > floor.minor : v.build >= (floor.build ?? 0);
      add('hardware', 'snp.firmware_minimum', which, `>= ${floor.major}.${floor.minor}${floor.build !== undefined ? ` build ${floor.build}` : ''}`, `${v.major}.${v.minor} build ${v.build}`, ok);
    }
  }

  return { status: statusOf(rules), trustVector: vectorOf(rules), trace: rules.map(({ component: _component, ...entry }) => entry) };
}

type Add = (component: Component, rule: string, claim: string, expected: unknown, actual: unknown, ok: boolean | 'warn' | 'skip', message?: string) => void;

function tcbRules(c: SnpClaims, policy: SnpAppraisalPolicy, add: Add): void {
  const floorRules = (floor: TcbFloor | undefined, rule: string, tcbs: ['reportedTcb' | 'committedTcb' | 'currentTcb' | 'launchTcb', TcbVersion][]) => {
    if (!floor) return add('hardware', rule, tcbs.map((t) => t[0]).join(','), 'any', tcbs[0][1].hex, 'skip', 'no TCB floor in the policy');
    for (const [name, tcb] of tcbs) {
      for (const component of Object.keys(floor) as TcbComponent[]) {
        const low = tcbBelow(tcb, { [component]: floor[component] });
        add('hardware', rule, `${name}.${component}`, `>= ${floor[component]}`, tcb[component] ?? 0, low.length === 0);
      }
    }
  };
  floorRules(policy.minimumTcb, 'snp.tcb_minimum', [['reportedTcb', c.reportedTcb], ['committedTcb', c.committedTcb], ['currentTcb', c.currentTcb]]);
  if (policy.minimumLaunchTcb) floorRules(policy.minimumLaunchTcb, 'snp.launch_tcb_minimum', [['launchTcb', c.launchTcb]]);
  // The firmware never reports a TCB above what is installed; if it does, the report is not coherent.
  add('hardware', 'snp.tcb_reported_not_above_current', 'reportedTcb', `<= currentTcb ${c.currentTcb.hex}`, c.reportedTcb.hex, tcbAtMost(c.reportedTcb, c.currentTcb));
  // A host may report (and have the VCEK derived for) an older TCB than it committed to.
  const committed = c.reportedTcb.hex === c.committedTcb.hex;
  add('hardware', 'snp.tcb_reported_is_committed', 'reportedTcb', c.committedTcb.hex, c.reportedTcb.hex, committed ? true : policy.requireReportedTcbCommitted ? false : 'warn',
    committed ? undefined : 'the host reports an older TCB than it committed to');
}

function vectorOf(rules: Rule[]): TrustVector {
  const vector: TrustVector = {};
  const components = new Set(rules.filter((r) => r.result !== 'skip').map((r) => r.component));
  for (const component of components) {
    const own = rules.filter((r) => r.component === component);
    vector[component] = TRUST_TIER[statusOf(own)];
  }
  return vector;
}
