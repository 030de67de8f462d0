import type { TraceEntry, TrustVector } from '../evidence/verifier.ts';
import type { ReleasePolicy } from './document.ts';
import { earStatus, type EarClaims } from './ear.ts';

/**
 * A resource's release policy against a verified EAR. Every rule leaves a trace entry; the secret
 * is released only when none fails. Token checks (signature, expiry, tenant, key binding,
 * revocation) come before this, in the broker.
 */
const RANK = { affirming: 0, warning: 1, contraindicated: 2, none: 3 } as const;

export function evaluateRelease(claims: EarClaims, policy: ReleasePolicy): TraceEntry[] {
  const trace: TraceEntry[] = [];
  const status = earStatus(claims);
  trace.push({
    rule: 'release.status',
    claim: 'submods.*.ear.status',
    expected: `${policy.minStatus} or better`,
    actual: status,
    result: RANK[status] <= RANK[policy.minStatus] ? 'pass' : 'fail',
  });
  const submods = Object.entries(claims.submods ?? {});
  if (policy.policies) {
    const used = submods.map(([, s]) => s['ear.appraisal-policy-id'].split('/').pop() ?? '');
    const ok = used.length > 0 && used.every((id) => policy.policies!.includes(id));
    trace.push({ rule: 'release.policy', claim: 'submods.*.ear.appraisal-policy-id', expected: policy.policies, actual: used, result: ok ? 'pass' : 'fail' });
  }
  if (policy.kinds) {
    const kind = claims['sigil.kind'];
    trace.push({ rule: 'release.kind', claim: 'sigil.kind', expected: policy.kinds, actual: kind, result: policy.kinds.includes(kind) ? 'pass' : 'fail' });
  }
  if (policy.devices) {
    const device = claims['sigil.device'];
    const ok = device !== undefined && policy.devices.includes(device);
    trace.push({ rule: 'release.device', claim: 'sigil.device', expected: policy.devices, actual: device ?? 'none', result: ok ? 'pass' : 'fail' });
  }
  for (const [claim, max] of Object.entries(policy.trustVector ?? {})) {
    const values = submods.map(([, s]) => (s['ear.trustworthiness-vector'] as TrustVector)[claim as keyof TrustVector]);
    // An absent claim is "no claim" (tier 0), which does not meet a bound: fail closed.
    const ok = values.length > 0 && values.every((v) => typeof v === 'number' && v > 0 && v <= max!);
    trace.push({ rule: `release.trust-vector.${claim}`, claim: `ear.trustworthiness-vector.${claim}`, expected: `1..${max}`, actual: values, result: ok ? 'pass' : 'fail' });
  }
  return trace;
}
