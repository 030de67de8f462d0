/**
 * Intel TDX evidence: DCAP quotes v4/v5 → parse, verify (signatures, PCK chain, CRLs, TCB info,
 * QE identity, CCEL), appraise (reference values and TCB policy).
 */
export { parseTdxQuote, type TdxQuote } from './quote.ts';
export { verifyTdxQuote, type TdxTrust } from './verify.ts';
export { appraiseTdx, type TdxPolicy } from './appraise.ts';
export type { TdxClaims } from './claims.ts';
export { collateralFromQvlJson, signedJsonFromPcsResponse, rawJsonMember, type SignedJson, type TdxCollateral } from './collateral.ts';
export { verifyTcbInfo, verifyQeIdentity } from './signed-json.ts';
export { parseTcbInfo, type TcbInfo } from './tcb-info.ts';
export { parseQeIdentity, evaluateQeIdentity, type QeIdentity, type QeIdentityResult } from './qe-identity.ts';
export { evaluateTcb, evaluateTdxModule, matchTcbLevels, type TcbEvaluation } from './tcb-evaluation.ts';
export { TCB_STATUSES, type TcbStatus } from './tcb-status.ts';
export { parsePckExtensions, parseSgxExtension, SGX_EXTENSION_OID, type PckExtensions } from './pck-extensions.ts';
export { parseCcel, parseCcelAcpiTable, replayRtmrs, type CcelAcpiTable, type CcelEvent, type CcelLog } from './ccel.ts';
export { INTEL_SGX_ROOT_CA_PEM, INTEL_SGX_ROOT_CA_SHA256, intelSgxRootCa } from './roots.ts';
export { checkTdxPolicy, createTdxKind, parseTdxEvidence, tdxEvidenceKind, type TdxEvidence } from './kind.ts';
