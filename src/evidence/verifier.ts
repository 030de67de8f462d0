/**
 * The shape every evidence kind follows (DESIGN.md section 3; go-sev-guest and Trustee):
 *
 *   parse(bytes)             → structure   untrusted, bounds-checked, only SigilError on garbage
 *   verify(structure, trust) → Verified    signatures, chains, CRLs, nonce and key bindings
 *   appraise(verified, policy) → Appraisal reference values, TCB floors, flags; a status, an AR4SI
 *                                          trust vector and a trace of every rule
 *
 * Claims exist only inside a Verified value, which only a verify step creates (`verified()`), so
 * the broker and policy code cannot read claims from evidence that was not checked.
 */

export type EvidenceKind = 'tpm' | 'snp' | 'tdx' | 'azure-snp' | 'azure-tdx';

const VERIFIED = Symbol('sigil.verified');

export interface Verified<Claims> {
  readonly [VERIFIED]: true;
  readonly kind: EvidenceKind;
  readonly claims: Claims;
  /** When the verification was done, and against which time certificates were checked. */
  readonly verifiedAt: Date;
}

/** Called by verify steps only, after every check passed. */
export function verified<Claims>(kind: EvidenceKind, claims: Claims, verifiedAt: Date): Verified<Claims> {
  return Object.freeze({ [VERIFIED]: true as const, kind, claims, verifiedAt });
}

export function isVerified(value: unknown): value is Verified<unknown> {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[VERIFIED] === true;
}

/** AR4SI tiers (draft-ietf-rats-ar4si, section 2.3.3): 0 none, 2..31 affirming, 32..95 warning, 96..127 contraindicated. */
export const TRUST_TIER = { none: 0, affirming: 2, warning: 32, contraindicated: 96 } as const;
export type AppraisalStatus = 'affirming' | 'warning' | 'contraindicated' | 'none';

/** The AR4SI trustworthiness vector (EAR `ear.trustworthiness-vector`). */
export interface TrustVector {
  instance_identity?: number;
  configuration?: number;
  executables?: number;
  file_system?: number;
  hardware?: number;
  runtime_opaque?: number;
  storage_opaque?: number;
  sourced_data?: number;
}

/** One rule's outcome: which claim, what the policy expected, what the evidence said. */
export interface TraceEntry {
  rule: string;
  claim: string;
  expected: unknown;
  actual: unknown;
  result: 'pass' | 'fail' | 'warn' | 'skip';
  message?: string;
}

export interface Appraisal {
  status: AppraisalStatus;
  trustVector: TrustVector;
  trace: TraceEntry[];
}

/** The worst status among rule results: any fail → contraindicated, any warn → warning. */
export function statusOf(trace: TraceEntry[]): AppraisalStatus {
  if (trace.some((t) => t.result === 'fail')) return 'contraindicated';
  if (trace.some((t) => t.result === 'warn')) return 'warning';
  if (trace.some((t) => t.result === 'pass')) return 'affirming';
  return 'none';
}

export function tierOf(status: AppraisalStatus): number {
  return TRUST_TIER[status];
}
