import { statusOf, TRUST_TIER, type Appraisal, type TraceEntry, type TrustVector, type Verified } from '../verifier.ts';
import type { TdxClaims } from './claims.ts';
import { INTEL_QE_VENDOR_ID } from './quote-header.ts';
import type { TcbStatus } from './tcb-status.ts';

/**
 * Appraisal of verified TDX claims against reference values and a TCB policy. Pure: no crypto,
 * no parsing. Every rule leaves one trace entry; a reference value the policy does not give is a
 * "skip", never a silent pass. Hex comparisons ignore case.
 */
export interface TdxPolicy {
  /** Accepted values (any of), hex. */
  mrTd?: string[];
  rtmr?: Partial<Record<0 | 1 | 2 | 3, string[]>>;
  mrSeam?: string[];
  mrConfigId?: string[];
  mrOwner?: string[];
  mrOwnerConfig?: string[];
  mrServiceTd?: string[];
  xfam?: string[];
  /** Exact TDATTRIBUTES values (hex, quote byte order). */
  tdAttributes?: string[];
  /** A debug TD exposes its memory and state to the host; refused unless this is set. */
  allowDebug?: boolean;
  /** The exact REPORTDATA expected (e.g. a nonce, zero-padded to 64 bytes), hex. */
  reportData?: string;
  /** Each TEE_TCB_SVN byte must be at least this (hex, 16 bytes). */
  minimumTeeTcbSvn?: string;
  /** Default: Intel's QE. */
  qeVendorId?: string;
  /** TCB statuses accepted; UpToDate passes, any other accepted one warns. Default ["UpToDate"]. */
  allowedTcbStatuses?: TcbStatus[];
  /** Advisories that are refused even when the status is accepted. */
  forbiddenAdvisoryIds?: string[];
  /** Without TCB info the platform's TCB is unknown: a failure unless this is false. */
  requireTcbEvaluation?: boolean;
  /** Without a QE identity the quoting enclave is unchecked: a failure unless this is false. */
  requireQeIdentity?: boolean;
  /** Require that a CCEL event log was replayed against the RTMRs. */
  requireEventLog?: boolean;
}

type Category = 'executables' | 'configuration' | 'hardware' | 'instance_identity';

export function appraiseTdx(evidence: Verified<TdxClaims>, policy: TdxPolicy = {}): Appraisal {
  const claims = evidence.claims;
  const trace: TraceEntry[] = [];
  const categories = new Map<Category, TraceEntry[]>();
  const add = (category: Category, entry: TraceEntry) => {
    trace.push(entry);
    categories.set(category, [...(categories.get(category) ?? []), entry]);
  };
  const oneOf = (category: Category, rule: string, claim: string, actual: string, expected: string[] | undefined) => {
    if (!expected) return add(category, { rule, claim, expected: null, actual, result: 'skip', message: 'no reference value in the policy' });
    const ok = expected.some((value) => value.toLowerCase() === actual);
    add(category, { rule, claim, expected, actual, result: ok ? 'pass' : 'fail' });
  };

  oneOf('executables', 'tdx.mr_td', 'mrTd', claims.mrTd, policy.mrTd);
  for (const index of [0, 1, 2, 3] as const) oneOf('executables', `tdx.rtmr${index}`, `rtmrs[${index}]`, claims.rtmrs[index], policy.rtmr?.[index]);
  oneOf('executables', 'tdx.mr_seam', 'mrSeam', claims.mrSeam, policy.mrSeam);
  oneOf('configuration', 'tdx.mr_config_id', 'mrConfigId', claims.mrConfigId, policy.mrConfigId);
  oneOf('configuration', 'tdx.mr_owner', 'mrOwner', claims.mrOwner, policy.mrOwner);
  oneOf('configuration', 'tdx.mr_owner_config', 'mrOwnerConfig', claims.mrOwnerConfig, policy.mrOwnerConfig);
  if (claims.mrServiceTd !== undefined || policy.mrServiceTd) oneOf('configuration', 'tdx.mr_service_td', 'mrServiceTd', claims.mrServiceTd ?? '', policy.mrServiceTd);
  oneOf('configuration', 'tdx.xfam', 'xfam', claims.xfam, policy.xfam);
  oneOf('configuration', 'tdx.td_attributes', 'tdAttributes', claims.tdAttributes, policy.tdAttributes);

  const debug = claims.tdAttributeFlags.debug;
  add('configuration', {
    rule: 'tdx.debug',
    claim: 'tdAttributeFlags.debug',
    expected: policy.allowDebug ? 'any' : false,
    actual: debug,
    result: debug && !policy.allowDebug ? 'fail' : debug ? 'warn' : 'pass',
    message: debug ? 'the TD runs in debug mode: the host can read and change its state' : undefined,
  });

  if (policy.reportData === undefined) add('instance_identity', { rule: 'tdx.report_data', claim: 'reportData', expected: null, actual: claims.reportData, result: 'skip', message: 'no expected report data in the policy' });
  else add('instance_identity', { rule: 'tdx.report_data', claim: 'reportData', expected: policy.reportData.toLowerCase(), actual: claims.reportData, result: policy.reportData.toLowerCase() === claims.reportData ? 'pass' : 'fail' });

  const vendor = (policy.qeVendorId ?? INTEL_QE_VENDOR_ID).toLowerCase();
  add('hardware', { rule: 'tdx.qe_vendor_id', claim: 'header.qeVendorId', expected: vendor, actual: claims.header.qeVendorId, result: vendor === claims.header.qeVendorId ? 'pass' : 'fail' });

  if (policy.minimumTeeTcbSvn !== undefined) {
    const minimum = policy.minimumTeeTcbSvn.toLowerCase();
    const rule = { rule: 'tdx.minimum_tee_tcb_svn', claim: 'teeTcbSvn', expected: `>= ${minimum}`, actual: claims.teeTcbSvn };
    if (!/^[0-9a-f]{32}$/.test(minimum)) add('hardware', { ...rule, result: 'fail', message: 'the policy value is not 16 bytes of hex' });
    else {
      const byte = (hex: string, i: number) => parseInt(hex.slice(i * 2, i * 2 + 2), 16);
      const below = [...Array(16).keys()].some((i) => byte(claims.teeTcbSvn, i) < byte(minimum, i));
      add('hardware', { ...rule, result: below ? 'fail' : 'pass' });
    }
  }

  const allowed = policy.allowedTcbStatuses ?? ['UpToDate'];
  if (claims.tcb) {
    const status = claims.tcb.status;
    add('hardware', {
      rule: 'tdx.tcb_status',
      claim: 'tcb.status',
      expected: allowed,
      actual: status,
      result: !allowed.includes(status) ? 'fail' : status === 'UpToDate' ? 'pass' : 'warn',
      message: claims.tcb.advisoryIds.length ? `advisories: ${claims.tcb.advisoryIds.join(', ')}` : undefined,
    });
    const forbidden = (policy.forbiddenAdvisoryIds ?? []).filter((id) => claims.tcb?.advisoryIds.includes(id));
    if (policy.forbiddenAdvisoryIds) add('hardware', { rule: 'tdx.advisories', claim: 'tcb.advisoryIds', expected: { none_of: policy.forbiddenAdvisoryIds }, actual: claims.tcb.advisoryIds, result: forbidden.length ? 'fail' : 'pass' });
  } else {
    const required = policy.requireTcbEvaluation ?? true;
    add('hardware', { rule: 'tdx.tcb_status', claim: 'tcb.status', expected: allowed, actual: null, result: required ? 'fail' : 'warn', message: 'no TCB info was supplied, so the platform TCB was not evaluated' });
  }
  if (claims.qeIdentity) {
    const qe = claims.qeIdentity.status;
    add('hardware', { rule: 'tdx.qe_identity', claim: 'qeIdentity.status', expected: 'UpToDate', actual: qe, result: qe === 'UpToDate' ? 'pass' : allowed.includes(qe) ? 'warn' : 'fail' });
  } else {
    const required = policy.requireQeIdentity ?? true;
    add('hardware', { rule: 'tdx.qe_identity', claim: 'qeIdentity.status', expected: 'UpToDate', actual: null, result: required ? 'fail' : 'warn', message: 'no QE identity was supplied, so the quoting enclave was not checked' });
  }
  if (policy.requireEventLog) add('executables', { rule: 'tdx.event_log', claim: 'eventLog', expected: 'replayed', actual: claims.eventLog ? 'replayed' : null, result: claims.eventLog ? 'pass' : 'fail' });

  const trustVector: TrustVector = {};
  for (const [category, entries] of categories) {
    const status = statusOf(entries);
    if (status !== 'none') trustVector[category] = TRUST_TIER[status];
  }
  return { status: statusOf(trace), trustVector, trace };
}
