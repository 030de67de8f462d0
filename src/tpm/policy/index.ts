/** Offline TPM policy calculation: isomorphic, WebCrypto only. */
export { PolicyCalculator, resolveName, type NameSource, type PolicyStep } from './calculator.ts';
export { approvedPolicyDigest, approvedPolicyMessage, pcrDigest, policySignedDigest, policySignedMessage, type PolicySignedAuthorization } from './approval.ts';
export * as policyUpdate from './update.ts';
