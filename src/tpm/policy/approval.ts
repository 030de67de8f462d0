import { concatBytes, Writer } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { hashAlg } from '../algorithms.ts';

/**
 * The values a policy's inputs are hashed from, or that a signer signs, outside the policy digest
 * itself: the PCR digest PolicyPCR binds, and the "aHash" a key signs to approve a policy
 * (PolicyAuthorize) or to authorize a session (PolicySigned).
 */

/**
 * pcrDigest for PolicyPCR (Part 3, 23.7): H_policy(value₁ ‖ … ‖ valueₙ), the PCR values in
 * selection order — bank by bank as the TPML_PCR_SELECTION lists them, ascending PCR index within
 * each bank. The hash is the policy session's, not the PCR bank's.
 */
export function pcrDigest(hash: number, values: Uint8Array[]): Promise<Uint8Array> {
  return digest(hashAlg(hash).name, concatBytes(...values));
}

/**
 * What a policy-signing key signs to approve `approvedPolicy` for TPM2_PolicyAuthorize (Part 3,
 * 23.16): approvedPolicy ‖ policyRef. Hand this message to a signer that hashes (WebCrypto
 * RSASSA-PKCS1-v1_5 / ECDSA with the key's nameAlg); VerifySignature then takes its digest.
 */
export function approvedPolicyMessage(approvedPolicy: Uint8Array, policyRef: Uint8Array = new Uint8Array(0)): Uint8Array {
  return concatBytes(approvedPolicy, policyRef);
}

/**
 * aHash = H_keySignNameAlg(approvedPolicy ‖ policyRef): the digest TPM2_VerifySignature checks and
 * whose ticket TPM2_PolicyAuthorize takes. The hash is the signing key's nameAlg (the first two
 * bytes of its name), as the TPM derives it.
 */
export function approvedPolicyDigest(keySignNameAlg: number, approvedPolicy: Uint8Array, policyRef: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
  return digest(hashAlg(keySignNameAlg).name, approvedPolicyMessage(approvedPolicy, policyRef));
}

export interface PolicySignedAuthorization {
  /** The session's nonceTPM; empty when the authorization is not bound to one session. */
  nonceTPM?: Uint8Array;
  /** Seconds; negative asks for a ticket. 0 = no expiry. */
  expiration?: number;
  cpHashA?: Uint8Array;
  policyRef?: Uint8Array;
}

/**
 * What an authorizing key signs for TPM2_PolicySigned (Part 3, 23.3):
 * nonceTPM ‖ expiration (INT32, big-endian) ‖ cpHashA ‖ policyRef. The TPM hashes it with the
 * signature's hash algorithm; a signer that hashes takes this message as it is.
 */
export function policySignedMessage(authorization: PolicySignedAuthorization = {}): Uint8Array {
  const expiration = authorization.expiration ?? 0;
  if (!Number.isInteger(expiration) || expiration < -0x80000000 || expiration > 0x7fffffff) {
    throw new SigilError('tpm.policy_argument_invalid', 'PolicySigned expiration must be a 32-bit signed integer', { expiration });
  }
  return concatBytes(
    authorization.nonceTPM ?? new Uint8Array(0),
    new Writer(4).u32(expiration >>> 0).finish(),
    authorization.cpHashA ?? new Uint8Array(0),
    authorization.policyRef ?? new Uint8Array(0),
  );
}

export function policySignedDigest(signatureHash: number, authorization: PolicySignedAuthorization = {}): Promise<Uint8Array> {
  return digest(hashAlg(signatureHash).name, policySignedMessage(authorization));
}
