import type * as x509 from '@peculiar/x509';
import { bytesEqual } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import type { SnpProduct } from '../snp/product.ts';
import type { AmdAuthority } from '../snp/roots.ts';
import { verifySnp, type SnpClaims } from '../snp/verify.ts';
import type { TdxClaims } from '../tdx/claims.ts';
import type { TdxCollateral } from '../tdx/collateral.ts';
import type { TdReport } from '../tdx/td-report.ts';
import { verifyTdxQuote } from '../tdx/verify.ts';
import { verified, type Verified } from '../verifier.ts';
import { checkRuntimeDataBinding, verifyVtpm, type HclClaims, type VtpmClaims } from './binding.ts';
import type { AzureSnpEvidence, AzureTdxEvidence } from './evidence.ts';
import { tdReportQuoteFields, type TdReportStruct } from './td-report.ts';

/**
 * Verification of Azure confidential-VM evidence: the TEE report, the HCL runtime data bound into
 * it, the vTPM AK taken from that runtime data, and the vTPM quote verified with the AK.
 *
 *   azure-snp: VCEK chain + SNP report signature (snp verifier) → VMPL 0 (only the paravisor at
 *              VMPL0 writes the HCL report; a guest at VMPL>0 could request a report over runtime
 *              data of its own choosing) → REPORT_DATA binding → vTPM quote.
 *   azure-tdx: TD quote (tdx verifier: PCK chain, QE report, quote signature, collateral when
 *              given) → the HCL's TDREPORT is the one quoted (every quoted field equal) →
 *              REPORT_DATA binding → vTPM quote.
 *
 * Errors name the failed check: snp.* / tdx.* from the TEE verifiers, tpm.quote_* from the vTPM
 * quote, azure.vmpl_not_zero, azure.td_report_mismatch, azure.runtime_data_binding_mismatch,
 * azure.ak_missing, azure.user_data_mismatch.
 */
export interface AzureSnpTrust {
  at: Date;
  /** When given, the vTPM quote must carry exactly this nonce (the broker checks bindingData instead). */
  nonce?: Uint8Array;
  /** The VCEK when the evidence carries none (DER or PEM). */
  vcek?: Uint8Array | string;
  /** ASK/ARK (PEM bundle or DER list); the embedded AMD roots are used without it. */
  chain?: Uint8Array | string | Uint8Array[];
  crls?: (Uint8Array | string)[];
  product?: SnpProduct;
  /** Require HCL user-data = quote nonce. Default: when the evidence is Trustee v2. */
  requireUserData?: boolean;
  /** Private PKI for tests only (see SnpTrust). */
  authorities?: Readonly<Record<SnpProduct, AmdAuthority>>;
}

export interface AzureTdxTrust {
  at: Date;
  nonce?: Uint8Array;
  collateral?: TdxCollateral;
  roots?: x509.X509Certificate[];
  requireUserData?: boolean;
}

export interface AzureSnpClaims {
  tee: 'snp';
  /** Trustee evidence version when the evidence came in that format. */
  evidenceVersion?: number;
  snp: SnpClaims;
  hcl: HclClaims;
  tpm: VtpmClaims;
}

export interface AzureTdxClaims {
  tee: 'tdx';
  evidenceVersion?: number;
  tdx: TdxClaims;
  hcl: HclClaims;
  tpm: VtpmClaims;
}

/** The HCL runs at VMPL0 on Azure SEV-SNP CVMs (Trustee HCL_VMPL_VALUE). */
export const HCL_VMPL = 0;

function checkAt(at: Date): void {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new SigilError('azure.trust_invalid', 'a verification time (at) is required');
}

export async function verifyAzureSnp(evidence: AzureSnpEvidence, trust: AzureSnpTrust): Promise<Verified<AzureSnpClaims>> {
  checkAt(trust.at);
  const endorsementKey = evidence.vcek ?? trust.vcek;
  const snp = await verifySnp(evidence.snpReport, {
    at: trust.at,
    ...(endorsementKey !== undefined ? { endorsementKey } : {}),
    ...(trust.chain !== undefined ? { chain: trust.chain } : {}),
    ...(trust.crls !== undefined ? { crls: trust.crls } : {}),
    ...(trust.product !== undefined ? { product: trust.product } : {}),
    ...(trust.authorities !== undefined ? { authorities: trust.authorities } : {}),
  });
  if (evidence.snpReport.vmpl !== HCL_VMPL) {
    throw new SigilError('azure.vmpl_not_zero', `the SNP report was requested at VMPL ${evidence.snpReport.vmpl}; the HCL's report comes from VMPL ${HCL_VMPL}`, { vmpl: evidence.snpReport.vmpl });
  }
  const hash = await checkRuntimeDataBinding(evidence.hcl, evidence.snpReport.reportData, 'SNP report');
  const vtpm = await verifyVtpm(evidence.hcl, hash, evidence.tpmQuote, {
    ...(trust.nonce ? { nonce: trust.nonce } : {}),
    requireUserData: trust.requireUserData ?? (evidence.version ?? 0) >= 2,
  });
  const claims: AzureSnpClaims = { tee: 'snp', snp: snp.claims, hcl: vtpm.hcl, tpm: vtpm.tpm };
  if (evidence.version !== undefined) claims.evidenceVersion = evidence.version;
  return verified('azure-snp', claims, trust.at);
}

/** The quoting enclave turned a TDREPORT into the quote; the HCL's TDREPORT must be that one. */
export function checkTdReportMatchesQuote(tdReport: TdReportStruct, quoteBody: TdReport): void {
  const quoted = tdReportQuoteFields(quoteBody);
  const local = tdReportQuoteFields(tdReport);
  for (let i = 0; i < quoted.length; i++) {
    if (!bytesEqual(quoted[i][1], local[i][1])) {
      throw new SigilError('azure.td_report_mismatch', `the HCL's TD report ${quoted[i][0]} differs from the TD quote's: the quote was not made from this report`, {
        field: quoted[i][0],
        quoted: toHex(quoted[i][1]),
        hcl: toHex(local[i][1]),
      });
    }
  }
}

export async function verifyAzureTdx(evidence: AzureTdxEvidence, trust: AzureTdxTrust): Promise<Verified<AzureTdxClaims>> {
  checkAt(trust.at);
  const tdx = await verifyTdxQuote(evidence.tdQuote, {
    at: trust.at,
    ...(trust.collateral ? { collateral: trust.collateral } : {}),
    ...(trust.roots ? { roots: trust.roots } : {}),
  });
  checkTdReportMatchesQuote(evidence.tdReport, evidence.tdQuote.body);
  const hash = await checkRuntimeDataBinding(evidence.hcl, evidence.tdQuote.body.reportData, 'TD quote');
  const vtpm = await verifyVtpm(evidence.hcl, hash, evidence.tpmQuote, {
    ...(trust.nonce ? { nonce: trust.nonce } : {}),
    requireUserData: trust.requireUserData ?? false,
  });
  const claims: AzureTdxClaims = { tee: 'tdx', tdx: tdx.claims, hcl: vtpm.hcl, tpm: vtpm.tpm };
  if (evidence.version !== undefined) claims.evidenceVersion = evidence.version;
  return verified('azure-tdx', claims, trust.at);
}
