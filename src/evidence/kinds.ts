import { createAzureSnpKind, createAzureTdxKind } from './azure/kind.ts';
import type { AzureSnpPolicy, AzureTdxPolicy } from './azure/appraise.ts';
import type { CollateralProvider } from './collateral/provider.ts';
import { registerEvidenceKind, type EvidenceKindEntry } from './registry.ts';
import type { SnpAppraisalPolicy } from './snp/appraise.ts';
import { createSnpKind } from './snp/kind.ts';
import type { SnpProduct } from './snp/product.ts';
import type { TdxPolicy } from './tdx/appraise.ts';
import { createTdxKind } from './tdx/kind.ts';
import { tpmEvidenceKind } from './tpm/kind.ts';
import { statusOf, type Appraisal } from './verifier.ts';

/**
 * The evidence kinds the broker supports out of the box: tpm, snp, tdx, azure-snp, azure-tdx.
 * The protocol and the store need no change for a new kind: add one line here.
 *
 * Collateral (AMD chains, CRLs and VCEKs; Intel TCB info, QE identity and CRLs) comes from one
 * CollateralProvider the operator configures (`sigil serve --collateral DIR [--collateral-online]`);
 * tenants add their own CA bundles through the admin API.
 *
 * The TEE appraisers treat a reference value the policy does not give as "skip" (right for a
 * library, where the caller reads the trace). The broker promises more: a policy that names no
 * reference value for what ran fails closed. Each TEE kind is wrapped here with the fields that
 * count as such a value; the TPM kind does the same in its own appraisal (tpm/appraise.ts).
 */
export interface EvidenceKindOptions {
  collateral?: CollateralProvider;
  /** The SEV-SNP product to assume for version-2 reports that name none. */
  snpProduct?: SnpProduct;
}

const some = (list: unknown): boolean => Array.isArray(list) && list.length > 0;

function namesSnpMeasurement(policy: SnpAppraisalPolicy | undefined): boolean {
  return some(policy?.measurements) || some(policy?.idKeyDigests) || some(policy?.authorKeyDigests);
}

function namesTdxMeasurement(policy: TdxPolicy | undefined): boolean {
  return some(policy?.mrTd) || Object.values(policy?.rtmr ?? {}).some(some);
}

const namesPcr = (policy: { pcrs?: Record<string, unknown> }): boolean => Object.keys(policy.pcrs ?? {}).length > 0;

/**
 * Wrap a kind so that its appraisal fails (rule `<kind>.reference-values`) when the policy names
 * none of `fields`: without a reference value for what ran there is nothing to affirm.
 */
export function requireReferenceValues<S, C, P>(kind: string, entry: EvidenceKindEntry<S, C, P>, fields: string, names: (policy: P) => boolean): EvidenceKindEntry<S, C, P> {
  return {
    ...entry,
    async appraise(verified, policy) {
      const appraisal: Appraisal = await entry.appraise(verified, policy);
      if (names(policy)) return appraisal;
      const trace = [
        { rule: `${kind}.reference-values`, claim: fields, expected: 'at least one reference value', actual: 'none', result: 'fail' as const, message: 'the policy names no reference value for what ran: nothing to appraise, so it fails closed' },
        ...appraisal.trace,
      ];
      return { ...appraisal, status: statusOf(trace), trace };
    },
  };
}

/** The broker's kinds, each bound to the configured collateral provider. */
export function defaultEvidenceKinds(options: EvidenceKindOptions = {}): Map<string, EvidenceKindEntry> {
  const kinds = new Map<string, EvidenceKindEntry>();
  const add = <S, C, P>(name: string, entry: EvidenceKindEntry<S, C, P>) => kinds.set(name, entry as unknown as EvidenceKindEntry);
  add('tpm', tpmEvidenceKind);
  add('snp', requireReferenceValues('snp', createSnpKind(options), 'measurements | idKeyDigests | authorKeyDigests', namesSnpMeasurement));
  add('tdx', requireReferenceValues('tdx', createTdxKind(options), 'mrTd | rtmr', namesTdxMeasurement));
  add('azure-snp', requireReferenceValues('azure-snp', createAzureSnpKind(options), 'pcrs | snp.measurements', (p: AzureSnpPolicy) => namesPcr(p) || namesSnpMeasurement(p.snp)));
  add('azure-tdx', requireReferenceValues('azure-tdx', createAzureTdxKind(options), 'pcrs | tdx.mrTd | tdx.rtmr', (p: AzureTdxPolicy) => namesPcr(p) || namesTdxMeasurement(p.tdx)));
  return kinds;
}

/** Put the default kinds into the process-wide registry (for code that looks kinds up by name). */
export function registerDefaultEvidenceKinds(options: EvidenceKindOptions = {}): void {
  for (const [name, entry] of defaultEvidenceKinds(options)) registerEvidenceKind(name, entry);
}
