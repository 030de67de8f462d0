import { z } from 'zod';

/**
 * Policy documents an administrator stores per tenant (docs/broker-protocol.md, "Policies"):
 *
 * - appraisal policy: for one evidence kind, the kind's reference values (inline and/or from named
 *   reference-value sets) that `appraise` compares the verified claims with;
 * - reference-value set: a named, separately managed block of reference values (e.g. the golden
 *   PCRs of one firmware release), merged into every policy that lists it;
 * - release policy: on each resource, which attestation results may receive it.
 */
export const NAME = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'letters, digits, ".", "_" and "-", at most 128');

export const AppraisalPolicySchema = z
  .object({
    kind: z.string().min(1).describe('evidence kind the policy appraises: tpm, snp, tdx, ...'),
    description: z.string().max(1000).optional(),
    referenceValues: z.record(z.string(), z.unknown()).default({}).describe('kind-specific reference values (TPM: {"pcrs": {"sha256": {"7": ["hex", ...]}}})'),
    referenceValueSets: z.array(NAME).default([]).describe('names of stored reference-value sets merged in order, before referenceValues'),
    default: z.boolean().default(false).describe('used for this kind when an attestation names no policy'),
  })
  .strict();
export type AppraisalPolicy = z.infer<typeof AppraisalPolicySchema>;

export const ReferenceValueSetSchema = z
  .object({
    kind: z.string().min(1),
    description: z.string().max(1000).optional(),
    values: z.record(z.string(), z.unknown()),
  })
  .strict();
export type ReferenceValueSet = z.infer<typeof ReferenceValueSetSchema>;

export const TRUST_CLAIMS = ['instance_identity', 'configuration', 'executables', 'file_system', 'hardware', 'runtime_opaque', 'storage_opaque', 'sourced_data'] as const;

export const ReleasePolicySchema = z
  .object({
    minStatus: z.enum(['affirming', 'warning']).default('affirming').describe('the worst EAR status that may still receive the secret'),
    policies: z.array(NAME).optional().describe('appraisal policy ids the EAR must come from'),
    kinds: z.array(z.string()).optional().describe('evidence kinds accepted'),
    devices: z.array(NAME).optional().describe('only these enrolled devices'),
    trustVector: z.partialRecord(z.enum(TRUST_CLAIMS), z.number().int().min(0).max(127)).optional().describe('per AR4SI claim, the highest tier accepted'),
  })
  .strict();
export type ReleasePolicy = z.infer<typeof ReleasePolicySchema>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Merge reference values: objects merge key by key, arrays union (so two sets may each allow a
 * value for the same PCR), anything else is replaced by the later value.
 */
export function mergeReferenceValues(...layers: unknown[]): Record<string, unknown> {
  const merge = (a: unknown, b: unknown): unknown => {
    if (isPlainObject(a) && isPlainObject(b)) {
      const out: Record<string, unknown> = { ...a };
      for (const [key, value] of Object.entries(b)) out[key] = key in out ? merge(out[key], value) : value;
      return out;
    }
    if (Array.isArray(a) || Array.isArray(b)) {
      const all = [...(Array.isArray(a) ? a : [a]), ...(Array.isArray(b) ? b : [b])];
      return all.filter((v, i) => all.findIndex((w) => JSON.stringify(w) === JSON.stringify(v)) === i);
    }
    return b;
  };
  let result: unknown = {};
  for (const layer of layers) result = merge(result, layer ?? {});
  return result as Record<string, unknown>;
}
