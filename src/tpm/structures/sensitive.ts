import { sized, struct, tpm2b, u16, type CodecType } from '../marshal/codec.ts';
import { TPM2B_AUTH, TPM2B_DIGEST, TPM2B_SENSITIVE_DATA } from './basic.ts';

/** TPMS_SENSITIVE_CREATE (Part 2, 11.1.15): the auth value and, for sealed objects, the secret. */
export const TPMS_SENSITIVE_CREATE = struct('TPMS_SENSITIVE_CREATE', { userAuth: TPM2B_AUTH, data: TPM2B_SENSITIVE_DATA });
export const TPM2B_SENSITIVE_CREATE = sized('TPM2B_SENSITIVE_CREATE', TPMS_SENSITIVE_CREATE);
export type SensitiveCreate = CodecType<typeof TPMS_SENSITIVE_CREATE>;

/**
 * TPMT_SENSITIVE (Part 2, 11.3.2): the private part of an object as Duplicate/Import carry it.
 * Every arm of TPMU_SENSITIVE_COMPOSITE is a TPM2B, so one byte string covers them all (RSA prime,
 * ECC private scalar, keyed-hash/symmetric bits).
 */
export const TPMT_SENSITIVE = struct('TPMT_SENSITIVE', {
  sensitiveType: u16,
  authValue: TPM2B_AUTH,
  seedValue: TPM2B_DIGEST,
  sensitive: tpm2b('TPMU_SENSITIVE_COMPOSITE', 640),
});
export const TPM2B_SENSITIVE = sized('TPM2B_SENSITIVE', TPMT_SENSITIVE);
export type Sensitive = CodecType<typeof TPMT_SENSITIVE>;
