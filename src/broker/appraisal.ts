import type { Kysely } from 'kysely';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import type { CollateralBundle, EnrolledDevice } from '../evidence/registry.ts';
import type { AppraisalStatus, TraceEntry, TrustVector } from '../evidence/verifier.ts';
import { bindingMatches } from '../policy/binding.ts';
import { AppraisalPolicySchema, mergeReferenceValues, type AppraisalPolicy } from '../policy/document.ts';
import { kindOf, type BrokerContext } from './context.ts';
import { failedRule } from './problem.ts';
import { akRevocation, deviceById, policiesByKind, policyById, referenceSet } from './store/queries.ts';
import type { Database } from './store/schema.ts';

/**
 * The kind-agnostic appraisal pipeline shared by attest, stateless verify and dry runs:
 * device → parse + verify → binding → policy → appraise. It never throws for a negative result:
 * it returns the trace with the failed rule, and the caller decides (refuse, or sign a
 * contraindicated EAR for a relying party).
 */
export interface AppraisalInput {
  tenant: string;
  kind: string;
  evidence: unknown;
  deviceId?: string;
  policyId?: string;
  /** An inline policy (dry run of a policy not stored yet). */
  policy?: AppraisalPolicy;
  expectedBinding?: Uint8Array;
  nonce?: Uint8Array;
  at: Date;
}

export interface AppraisalOutcome {
  status: AppraisalStatus;
  trustVector: TrustVector;
  trace: TraceEntry[];
  /** The first failed rule, for messages and metrics. */
  failed?: TraceEntry;
  /** Error code of the failed stage (broker.evidence_rejected, broker.binding_mismatch, …). */
  code?: string;
  policyId?: string;
  device?: EnrolledDevice;
  claims: Record<string, unknown>;
}

function fail(trace: TraceEntry[], entry: TraceEntry, code: string, extra: Partial<AppraisalOutcome> = {}): AppraisalOutcome {
  trace.push(entry);
  return { status: 'contraindicated', trustVector: {}, trace, failed: entry, code, claims: {}, ...extra };
}

interface StoredPolicy {
  id: string;
  document: AppraisalPolicy;
  /** The stored JSON text: with the reference-value sets' texts, the key of the checked-policy cache. */
  text?: string;
}

/** Policy documents by their stored text, validated once (zod) rather than on every attestation. */
const documents = new Map<string, AppraisalPolicy>();

function documentOf(text: string): AppraisalPolicy {
  let document = documents.get(text);
  if (!document) {
    document = AppraisalPolicySchema.parse(JSON.parse(text));
    if (documents.size >= 10_000) documents.clear();
    documents.set(text, document);
  }
  return document;
}

export async function loadPolicy(db: Kysely<Database>, tenant: string, kind: string, policyId?: string): Promise<StoredPolicy | { problem: string }> {
  if (policyId) {
    const [row] = await policyById(db, { tenant, id: policyId });
    if (!row) return { problem: `policy ${policyId} does not exist in tenant ${tenant}` };
    if (row.kind !== kind) return { problem: `policy ${policyId} appraises ${row.kind} evidence, not ${kind}` };
    return { id: row.id, document: documentOf(row.document), text: row.document };
  }
  const rows = await policiesByKind(db, { tenant, kind });
  const chosen = rows.length === 1 ? rows : rows.filter((r) => Number(r.is_default) === 1);
  if (chosen.length !== 1) {
    return { problem: rows.length === 0 ? `tenant ${tenant} has no appraisal policy for ${kind} evidence` : `tenant ${tenant} has ${rows.length} ${kind} policies and none is the default: name one` };
  }
  return { id: chosen[0].id, document: documentOf(chosen[0].document), text: chosen[0].document };
}

/**
 * Reference values checked by the kind (`checkPolicy`), by the stored texts they came from: the
 * policy document and every reference-value set it names. A change to any of them is a new key,
 * on every replica, because the texts are read from the database on every attestation.
 */
const checkedPolicies = new Map<string, unknown>();

export async function runAppraisal(ctx: Pick<BrokerContext, 'db' | 'kinds'>, input: AppraisalInput): Promise<AppraisalOutcome> {
  const { db } = ctx;
  const trace: TraceEntry[] = [];
  const entry = kindOf(ctx, input.kind);
  let device: EnrolledDevice | undefined;
  if (entry.needsEnrolment) {
    const [row] = input.deviceId ? await deviceById(db, { tenant: input.tenant, id: input.deviceId }) : [];
    if (!row) {
      return fail(trace, failedRule('device.enrolled', 'deviceId', 'an enrolled device', input.deviceId ?? 'none', `${input.kind} evidence is only trusted from an enrolled device`), 'broker.device_not_enrolled');
    }
    if (row.status !== 'active') return fail(trace, failedRule('revocation.device', 'device.status', 'active', row.status, `device ${row.id} is revoked`), 'broker.revoked');
    device = { tenant: row.tenant, id: row.id, material: JSON.parse(row.material) };
    const akName = device.material.akName;
    if (akName) {
      const [revoked] = await akRevocation(db, { tenant: input.tenant, ak: akName });
      if (revoked) return fail(trace, failedRule('revocation.ak', 'device.material.akName', 'a key that was never revoked', akName, 'the attestation key is revoked'), 'broker.revoked', { device });
    }
    trace.push({ rule: 'device.enrolled', claim: 'deviceId', expected: 'an enrolled, active device', actual: row.id, result: 'pass' });
  }
  const purposes = entry.collateralPurposes ?? [];
  const collateral: CollateralBundle[] = purposes.length
    ? (await db.selectFrom('ca_bundles').select(['name', 'purpose', 'pem']).where('tenant', '=', input.tenant).where('purpose', 'in', [...purposes]).execute()).map((r) => ({ ...r }))
    : [];
  let verified;
  try {
    const structure = entry.parse(input.evidence);
    verified = await entry.verify(structure, { at: input.at, nonce: input.nonce, expectedBinding: input.expectedBinding, collateral, device });
  } catch (error) {
    if (!(error instanceof SigilError)) throw error;
    return fail(trace, failedRule('evidence.verify', 'evidence', 'evidence that parses and verifies', error.code, error.message), 'broker.evidence_rejected', { device });
  }
  trace.push({ rule: 'evidence.verify', claim: 'evidence', expected: 'evidence that parses and verifies', actual: 'verified', result: 'pass' });
  if (input.expectedBinding) {
    const actual = entry.bindingData(verified);
    if (!bindingMatches(actual, input.expectedBinding)) {
      return fail(
        trace,
        failedRule('binding.runtime-key', 'bindingData', toHex(input.expectedBinding), toHex(actual), 'the evidence is not bound to this nonce and runtime key: SHA-256(nonce ‖ JWK thumbprint) differs'),
        'broker.binding_mismatch',
        { device },
      );
    }
    trace.push({ rule: 'binding.runtime-key', claim: 'bindingData', expected: toHex(input.expectedBinding), actual: toHex(actual), result: 'pass' });
  }
  const policy = input.policy ? { id: input.policyId ?? '(inline)', document: input.policy } : await loadPolicy(db, input.tenant, input.kind, input.policyId);
  if ('problem' in policy) return fail(trace, failedRule('policy.present', 'policyId', 'an appraisal policy', input.policyId ?? 'none', policy.problem), 'broker.policy_missing', { device });
  const layers: unknown[] = [];
  const texts: string[] = [input.kind, policy.text ?? JSON.stringify(policy.document)];
  for (const name of policy.document.referenceValueSets) {
    const [set] = await referenceSet(db, { tenant: input.tenant, name });
    if (!set || set.kind !== input.kind) {
      return fail(trace, failedRule('policy.reference-values', `referenceValueSets.${name}`, `a ${input.kind} reference-value set`, set ? set.kind : 'missing', 'a reference-value set the policy names is missing: fail closed'), 'broker.policy_missing', { device, policyId: policy.id });
    }
    texts.push(set.document);
    layers.push((JSON.parse(set.document) as { values: unknown }).values);
  }
  layers.push(policy.document.referenceValues);
  const cacheKey = texts.join('\u0000');
  let checked = checkedPolicies.get(cacheKey);
  try {
    if (checked === undefined) {
      checked = entry.checkPolicy(mergeReferenceValues(...layers));
      if (checkedPolicies.size >= 10_000) checkedPolicies.clear();
      // Inline (dry-run) policies are not cached: they are one-offs.
      if (policy.text !== undefined) checkedPolicies.set(cacheKey, checked);
    }
  } catch (error) {
    if (!(error instanceof SigilError)) throw error;
    return fail(trace, failedRule('policy.valid', 'referenceValues', 'valid reference values', error.code, error.message), 'broker.policy_invalid', { device, policyId: policy.id });
  }
  const appraisal = await entry.appraise(verified, checked);
  trace.push(...appraisal.trace);
  const failed = appraisal.trace.find((t) => t.result === 'fail');
  return {
    status: appraisal.status,
    trustVector: appraisal.trustVector,
    trace,
    failed,
    code: failed || appraisal.status === 'none' ? 'broker.appraisal_failed' : undefined,
    policyId: policy.id,
    device,
    claims: entry.summary?.(verified) ?? {},
  };
}
