/**
 * AMD SEV-SNP evidence: parse (report bytes → SnpReport), verify (VCEK/VLEK chain to the pinned
 * ARK, ECDSA P-384 report signature, TCB and chip binding → Verified<SnpClaims>), appraise
 * (claims + SnpAppraisalPolicy → Appraisal with a trace). Isomorphic: WebCrypto and
 * @peculiar/x509 only.
 */
export { parseSnpReport, SNP_REPORT_SIZE, SNP_SIGNED_SIZE, type SnpReport, type FirmwareVersion } from './report.ts';
export { verifySnp, verifySnpReport, type SnpClaims, type SnpTrust, type VerifySnpReportOptions } from './verify.ts';
export { appraiseSnp, type SnpAppraisalPolicy, type TcbFloor } from './appraise.ts';
export { verifyReportSignature, importReportKey, reportKeyFromSpki, reportSignatureP1363, type ReportKey } from './signature.ts';
export { decodeTcb, encodeTcb, tcbComponents, type TcbVersion, type TcbComponent } from './tcb.ts';
export { decodeGuestPolicy, decodePlatformInfo, decodeKeyInfo, type GuestPolicy, type PlatformInfo, type KeyInfo } from './flags.ts';
export { productFromCpuid, productFromName, SNP_PRODUCTS, type SnpProduct, type SnpCpuid } from './product.ts';
export { describeEndorsement, parseCertificates as parseSnpCertificates, AMD_OID, type EndorsementInfo } from './endorsement.ts';
export { verifyEndorsementChain, parseCrl as parseSnpCrl } from './chain.ts';
export { AMD_AUTHORITIES, type AmdAuthority } from './roots.ts';
