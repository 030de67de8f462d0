import { SigilError } from '../core/errors.ts';
import type { Appraisal, Verified } from './verifier.ts';

/**
 * The one place the broker learns what evidence kinds exist. Each kind brings the three steps of
 * DESIGN.md section 3 plus `bindingData`, so the broker's protocol never names a TEE:
 *
 *   parse(body)              untrusted JSON body → structure (bounds-checked; only SigilError)
 *   verify(structure, trust) signatures, chains, collateral, enrolled device material → Verified
 *   bindingData(verified)    the bytes the attester bound to the session: TPM quote extraData,
 *                            SNP / TDX report_data. The broker compares them with
 *                            H(nonce ‖ runtime-key thumbprint) (src/policy/binding.ts); verify
 *                            does NOT check the nonce itself, so the comparison and its trace
 *                            entry live in one place for every kind.
 *   checkPolicy(values)      validate a policy's kind-specific reference values when an admin
 *                            stores them (fail early, fail closed)
 *   appraise(verified, p)    reference values → status, AR4SI trust vector, trace
 */

/** Material the broker stored when a device enrolled (JSON-safe: hex / base64 strings). */
export interface EnrolledDevice {
  tenant: string;
  id: string;
  /** Kind-specific, e.g. TPM: { akPublic: hex TPMT_PUBLIC, akName: hex }. */
  material: Record<string, string>;
}

/** Certificates and other collateral an administrator configured for the tenant. */
export interface CollateralBundle {
  name: string;
  /** What the bundle anchors: 'tpm-ek', 'tpm-ak', 'snp-ark', 'tdx-root', ... (kind-defined). */
  purpose: string;
  pem: string;
}

export interface TrustContext {
  /** The instant certificates, CRLs and TCB data are checked at (pinned for recorded fixtures). */
  at: Date;
  /** The nonce the broker issued (or the relying party supplied), raw bytes; absent in nonce-less verification. */
  nonce?: Uint8Array;
  /** What bindingData(verified) must match (the broker checks it after verify); informative here. */
  expectedBinding?: Uint8Array;
  /** The tenant's configured collateral (CA bundles), by purpose. */
  collateral: CollateralBundle[];
  /** The enrolled device, for kinds that need enrolment (TPM: the AK to trust). */
  device?: EnrolledDevice;
}

export interface EvidenceKindEntry<Structure = unknown, Claims = unknown, Policy = unknown> {
  readonly description: string;
  /** TPM evidence is only as good as the enrolled AK; TEE reports chain to the vendor instead. */
  readonly needsEnrolment: boolean;
  /** CA-bundle purposes verify reads from trust.collateral (e.g. ['snp-ark']); none: not loaded. */
  readonly collateralPurposes?: readonly string[];
  parse(body: unknown): Structure;
  verify(structure: Structure, trust: TrustContext): Promise<Verified<Claims>>;
  bindingData(verified: Verified<Claims>): Uint8Array;
  checkPolicy(referenceValues: unknown): Policy;
  appraise(verified: Verified<Claims>, policy: Policy): Appraisal | Promise<Appraisal>;
  /** JSON-safe claims worth returning to the caller and keeping with the attestation record. */
  summary?(verified: Verified<Claims>): Record<string, unknown>;
}

const registry = new Map<string, EvidenceKindEntry>();

/** The registered kinds, by name ('tpm', 'snp', 'tdx', ...). */
export const evidenceKinds: ReadonlyMap<string, EvidenceKindEntry> = registry;

export function registerEvidenceKind<S, C, P>(kind: string, entry: EvidenceKindEntry<S, C, P>): void {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(kind)) throw new SigilError('evidence.kind_name_invalid', `"${kind}" is not a valid evidence kind name`, { kind });
  registry.set(kind, entry as unknown as EvidenceKindEntry);
}

export function evidenceKind(kind: string): EvidenceKindEntry {
  const entry = registry.get(kind);
  if (!entry) {
    throw new SigilError('evidence.kind_unknown', `evidence kind "${kind}" is not supported here`, { kind, supported: [...registry.keys()] });
  }
  return entry;
}
