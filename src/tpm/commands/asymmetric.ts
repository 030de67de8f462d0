import { utf8 } from '../../core/bytes.ts';
import { defineCommand } from '../command.ts';
import { TPM_CC } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import { TPM2B_DATA, TPM2B_PUBLIC_KEY_RSA } from '../structures/basic.ts';
import { SCHEME_NULL, TPM2B_ECC_POINT, TPMT_SCHEME, type EccPoint, type Scheme } from '../structures/public.ts';

/** RSA_Encrypt, RSA_Decrypt, ECDH_KeyGen, ECDH_ZGen (Part 3, section 14). */

/**
 * An OAEP label as the TPM wants it: the text's bytes and a terminating zero byte. The TPM
 * refuses a non-empty label whose last byte is not zero (TPM_RC_VALUE), and the zero is part of
 * the label that OAEP hashes, so a software peer must use these same bytes.
 */
export function oaepLabel(text: string): Uint8Array {
  const bytes = utf8.encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

/**
 * TPM2_RSA_Encrypt: keyHandle (no auth, public part suffices); message TPM2B_PUBLIC_KEY_RSA,
 * inScheme TPMT_RSA_DECRYPT, label TPM2B_DATA → outData TPM2B_PUBLIC_KEY_RSA.
 */
export function rsaEncrypt(keyHandle: HandleArg, message: Uint8Array, inScheme: Scheme = SCHEME_NULL, label: Uint8Array = new Uint8Array(0)) {
  return defineCommand<Uint8Array>({
    code: TPM_CC.RSA_Encrypt,
    handles: [keyHandle],
    parameters: (w) => {
      TPM2B_PUBLIC_KEY_RSA.write(w, message);
      TPMT_SCHEME.write(w, inScheme);
      TPM2B_DATA.write(w, label);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => TPM2B_PUBLIC_KEY_RSA.read(r),
  });
}

/**
 * TPM2_RSA_Decrypt: keyHandle @USER; cipherText TPM2B_PUBLIC_KEY_RSA, inScheme TPMT_RSA_DECRYPT,
 * label TPM2B_DATA → message TPM2B_PUBLIC_KEY_RSA.
 */
export function rsaDecrypt(keyHandle: AuthHandle, cipherText: Uint8Array, inScheme: Scheme = SCHEME_NULL, label: Uint8Array = new Uint8Array(0)) {
  return defineCommand<Uint8Array>({
    code: TPM_CC.RSA_Decrypt,
    authHandles: [keyHandle],
    parameters: (w) => {
      TPM2B_PUBLIC_KEY_RSA.write(w, cipherText);
      TPMT_SCHEME.write(w, inScheme);
      TPM2B_DATA.write(w, label);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => TPM2B_PUBLIC_KEY_RSA.read(r),
  });
}

export interface EcdhKeyGenResult {
  /** The shared point: the ephemeral private scalar times the key's public point. */
  zPoint: EccPoint;
  /** The ephemeral public point to hand to the key's holder. */
  pubPoint: EccPoint;
}

/** TPM2_ECDH_KeyGen: keyHandle (no auth) → zPoint TPM2B_ECC_POINT, pubPoint TPM2B_ECC_POINT. */
export function ecdhKeyGen(keyHandle: HandleArg) {
  return defineCommand<EcdhKeyGenResult>({
    code: TPM_CC.ECDH_KeyGen,
    handles: [keyHandle],
    encryptableResponse: true,
    parse: (r) => ({ zPoint: TPM2B_ECC_POINT.read(r), pubPoint: TPM2B_ECC_POINT.read(r) }),
  });
}

/**
 * TPM2_ECDH_ZGen: keyHandle @USER; inPoint TPM2B_ECC_POINT → outPoint TPM2B_ECC_POINT, the key's
 * private scalar times inPoint. Its x coordinate is the ECDH shared secret Z.
 */
export function ecdhZGen(keyHandle: AuthHandle, inPoint: EccPoint) {
  return defineCommand<EccPoint>({
    code: TPM_CC.ECDH_ZGen,
    authHandles: [keyHandle],
    parameters: (w) => TPM2B_ECC_POINT.write(w, inPoint),
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => TPM2B_ECC_POINT.read(r),
  });
}
