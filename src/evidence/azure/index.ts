/**
 * Azure confidential VMs (SEV-SNP and TDX with a paravisor-provided vTPM): parse (HCL report,
 * TEE report or TD quote, vTPM quote → structures), verify (TEE report, runtime-data binding,
 * AK from the runtime data, vTPM quote → Verified claims), appraise (TEE policy + PCRs + VM
 * configuration → Appraisal). Isomorphic: WebCrypto, @peculiar/x509 and jose only.
 */
export { parseHclReport, HCL_SIGNATURE, HCL_VARIABLE_DATA_OFFSET, HCL_RUNTIME_DATA_OFFSET, IGVM_REPORT_TYPE, type HclReport } from './hcl-report.ts';
export { parseTdReportStruct, TDREPORT_SIZE, type TdReportStruct } from './td-report.ts';
export { parseRuntimeData, akPublicArea, jwkThumbprint, HCL_AK_KID, HCL_EK_KID, type RuntimeData, type RsaJwk, type VmConfiguration } from './runtime-data.ts';
export { parseAzureTpmQuote, type AzureTpmQuote } from './tpm-quote.ts';
export {
  parseAzureSnpEvidence,
  parseAzureTdxEvidence,
  azureSnpEvidenceFromParts,
  azureTdxEvidenceFromParts,
  type AzureSnpEvidence,
  type AzureTdxEvidence,
  type AzureSnpParts,
  type AzureTdxParts,
} from './evidence.ts';
export { checkRuntimeDataBinding, type HclClaims, type VtpmClaims } from './binding.ts';
export { verifyAzureSnp, verifyAzureTdx, checkTdReportMatchesQuote, HCL_VMPL, type AzureSnpTrust, type AzureTdxTrust, type AzureSnpClaims, type AzureTdxClaims } from './verify.ts';
export { appraiseAzureSnp, appraiseAzureTdx, checkAzurePolicy, type AzureSnpPolicy, type AzureTdxPolicy, type AzureCommonPolicy, type AzureVmPolicy } from './appraise.ts';
export { createAzureSnpKind, createAzureTdxKind, azureSnpEvidenceKind, azureTdxEvidenceKind, type AzureKindOptions } from './kind.ts';
