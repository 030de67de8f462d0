import { fromHex } from '../../core/hex.ts';
import type { CollateralProvider } from '../collateral/provider.ts';
import type { SnpProduct } from '../snp/product.ts';
import { snpCollateralFor, tdxCollateralFor } from '../collateral/resolve.ts';
import type { EvidenceKindEntry, TrustContext } from '../registry.ts';
import type { Verified } from '../verifier.ts';
import { appraiseAzureSnp, appraiseAzureTdx, checkAzurePolicy, type AzureSnpPolicy, type AzureTdxPolicy } from './appraise.ts';
import { parseAzureSnpEvidence, parseAzureTdxEvidence, type AzureSnpEvidence, type AzureTdxEvidence } from './evidence.ts';
import { verifyAzureSnp, verifyAzureTdx, type AzureSnpClaims, type AzureTdxClaims } from './verify.ts';

/**
 * The 'azure-snp' and 'azure-tdx' evidence kinds for the broker (registry.ts). The body is
 * Trustee's evidence JSON (evidence.ts). Nothing is enrolled: the TEE report vouches for the vTPM
 * AK. bindingData is the vTPM quote's extraData, where the attester puts the broker's binding
 * (and which evidence v2 also binds into the TEE report through the HCL user-data).
 *
 * Collateral: a CollateralProvider (offline bundle, online KDS/PCS, or both) supplies AMD chains,
 * CRLs and missing VCEKs, and Intel TCB info, QE identity and CRLs; the tenant's configured
 * bundles add PEM CRLs ('snp-crl') and chains ('snp-chain').
 */
export interface AzureKindOptions {
  collateral?: CollateralProvider;
  /** The SEV-SNP product to assume when a report does not name it (version-2 reports have no CPUID). */
  snpProduct?: SnpProduct;
}

function pems(trust: TrustContext, purpose: string): string[] {
  return trust.collateral.filter((c) => c.purpose === purpose).map((c) => c.pem);
}

export function createAzureSnpKind(options: AzureKindOptions = {}): EvidenceKindEntry<AzureSnpEvidence, AzureSnpClaims, AzureSnpPolicy> {
  return {
    description: 'Azure confidential VM on AMD SEV-SNP: HCL report + vTPM quote',
    needsEnrolment: false,
    parse: parseAzureSnpEvidence,
    async verify(evidence, trust) {
      const crls: (Uint8Array | string)[] = pems(trust, 'snp-crl');
      const chains = pems(trust, 'snp-chain');
      let vcek = evidence.vcek;
      let chain: string | undefined = chains.length > 0 ? chains.join('\n') : undefined;
      if (options.collateral) {
        const resolved = await snpCollateralFor(evidence.snpReport, options.collateral, {
          fetchVcek: vcek === undefined,
          ...(options.snpProduct && !evidence.snpReport.cpuid ? { product: options.snpProduct } : {}),
        });
        chain = chain ? `${chain}\n${resolved.value.chain}` : resolved.value.chain;
        crls.push(...resolved.value.crls);
        vcek ??= resolved.value.vcek;
      }
      return verifyAzureSnp(evidence, {
        at: trust.at,
        ...(vcek !== undefined ? { vcek } : {}),
        ...(chain ? { chain } : {}),
        ...(options.snpProduct ? { product: options.snpProduct } : {}),
        crls,
      });
    },
    bindingData: (verified: Verified<AzureSnpClaims>) => fromHex(verified.claims.tpm.extraData),
    checkPolicy: (value) => checkAzurePolicy<AzureSnpPolicy>(value),
    appraise: appraiseAzureSnp,
    summary: (v) => ({
      tee: 'snp',
      product: v.claims.snp.product,
      measurement: v.claims.snp.measurement,
      pcrs: v.claims.tpm.pcrs,
      akThumbprint: v.claims.hcl.akThumbprint,
      vmUniqueId: v.claims.hcl.vmConfiguration.vmUniqueId,
    }),
  };
}

export function createAzureTdxKind(options: AzureKindOptions = {}): EvidenceKindEntry<AzureTdxEvidence, AzureTdxClaims, AzureTdxPolicy> {
  return {
    description: 'Azure confidential VM on Intel TDX: HCL report + TD quote + vTPM quote',
    needsEnrolment: false,
    parse: parseAzureTdxEvidence,
    async verify(evidence, trust) {
      const collateral = options.collateral ? (await tdxCollateralFor(evidence.tdQuote, options.collateral)).value : undefined;
      return verifyAzureTdx(evidence, { at: trust.at, ...(collateral ? { collateral } : {}) });
    },
    bindingData: (verified: Verified<AzureTdxClaims>) => fromHex(verified.claims.tpm.extraData),
    checkPolicy: (value) => checkAzurePolicy<AzureTdxPolicy>(value),
    appraise: appraiseAzureTdx,
    summary: (v) => ({
      tee: 'tdx',
      mrTd: v.claims.tdx.mrTd,
      tcbStatus: v.claims.tdx.tcb?.status,
      pcrs: v.claims.tpm.pcrs,
      akThumbprint: v.claims.hcl.akThumbprint,
      vmUniqueId: v.claims.hcl.vmConfiguration.vmUniqueId,
    }),
  };
}

export const azureSnpEvidenceKind = createAzureSnpKind();
export const azureTdxEvidenceKind = createAzureTdxKind();
