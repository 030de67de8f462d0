import { SigilError } from '../../core/errors.ts';
import { statusOf, TRUST_TIER, type Appraisal, type TraceEntry, type Verified } from '../verifier.ts';
import type { TpmClaims } from './kind.ts';

/**
 * TPM appraisal: the quoted PCRs against reference values. Reference values name, per bank and
 * PCR index, the digests that are acceptable (several, e.g. before and after a firmware update).
 * A policy that names no PCR fails closed, and so does a named PCR the quote did not cover.
 */
export interface TpmAppraisalPolicy {
  /** bank label ("sha256") → PCR index ("7") → acceptable values (hex). */
  pcrs: Record<string, Record<string, string[]>>;
  /** Require the TPM clock's "safe" flag (no clock rollback since the last orderly shutdown). */
  requireSafeClock?: boolean;
}

const BANKS = new Set(['sha1', 'sha256', 'sha384', 'sha512']);

export function checkTpmPolicy(referenceValues: unknown): TpmAppraisalPolicy {
  const fail = (why: string): never => {
    throw new SigilError('policy.reference_values_invalid', `TPM reference values: ${why}`, { kind: 'tpm' });
  };
  if (typeof referenceValues !== 'object' || referenceValues === null) fail('expected an object with "pcrs"');
  const input = referenceValues as Record<string, unknown>;
  for (const key of Object.keys(input)) if (key !== 'pcrs' && key !== 'requireSafeClock') fail(`unknown field "${key}"`);
  const pcrs: TpmAppraisalPolicy['pcrs'] = {};
  const given = input.pcrs ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given)) fail('"pcrs" must map bank → index → values');
  for (const [bank, indexes] of Object.entries(given as Record<string, unknown>)) {
    if (!BANKS.has(bank)) fail(`unknown PCR bank "${bank}"`);
    if (typeof indexes !== 'object' || indexes === null || Array.isArray(indexes)) fail(`bank "${bank}" must map index → values`);
    pcrs[bank] = {};
    for (const [index, values] of Object.entries(indexes as Record<string, unknown>)) {
      const n = Number(index);
      if (!/^\d{1,2}$/.test(index) || n > 23) fail(`"${index}" is not a PCR index 0..23`);
      const list = Array.isArray(values) ? values : [values];
      if (list.length === 0 || !list.every((v) => typeof v === 'string' && /^[0-9a-fA-F]+$/.test(v))) fail(`${bank}:${index} needs one or more hex digests`);
      pcrs[bank][String(n)] = (list as string[]).map((v) => v.toLowerCase());
    }
  }
  if (input.requireSafeClock !== undefined && typeof input.requireSafeClock !== 'boolean') fail('"requireSafeClock" must be a boolean');
  return { pcrs, requireSafeClock: input.requireSafeClock as boolean | undefined };
}

export function appraiseTpm(evidence: Verified<TpmClaims>, policy: TpmAppraisalPolicy): Appraisal {
  const claims = evidence.claims;
  const trace: TraceEntry[] = [];
  const named = Object.entries(policy.pcrs).flatMap(([bank, indexes]) => Object.entries(indexes).map(([index, values]) => ({ bank, index, values })));
  if (named.length === 0) {
    trace.push({ rule: 'tpm.reference-values', claim: 'pcrs', expected: 'at least one PCR reference value', actual: 'none', result: 'fail', message: 'the policy names no PCR: nothing to appraise, so it fails closed' });
  }
  let pcrsOk = named.length > 0;
  for (const { bank, index, values } of named) {
    const actual = claims.pcrs[bank]?.[Number(index)];
    const ok = actual !== undefined && values.includes(actual.toLowerCase());
    if (!ok) pcrsOk = false;
    trace.push({
      rule: `pcr.${bank}:${index}`,
      claim: `pcrs.${bank}.${index}`,
      expected: values,
      actual: actual ?? 'not quoted',
      result: ok ? 'pass' : 'fail',
      ...(actual === undefined ? { message: 'the policy names this PCR but the quote does not cover it' } : {}),
    });
  }
  if (policy.requireSafeClock) {
    trace.push({ rule: 'tpm.clock-safe', claim: 'safe', expected: true, actual: claims.safe, result: claims.safe ? 'pass' : 'fail' });
  }
  const status = statusOf(trace);
  const tier = pcrsOk ? TRUST_TIER.affirming : TRUST_TIER.contraindicated;
  return {
    status,
    trustVector: {
      instance_identity: TRUST_TIER.affirming, // the AK was enrolled (EK certificate + credential activation, or pinned)
      hardware: TRUST_TIER.affirming,
      configuration: tier,
      executables: tier,
    },
    trace,
  };
}
