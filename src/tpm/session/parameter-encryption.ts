import { SigilError } from '../../core/errors.ts';
import { TPM_ALG } from '../constants.ts';
import { aesCfbDecrypt, aesCfbEncrypt, kdfa } from '../crypto/kdf.ts';
import type { SymmetricDefinition } from '../structures/public.ts';

/**
 * Session-based parameter encryption of the first TPM2B parameter (Part 1, 21; reference code
 * CryptParameterEncryption/Decryption, ParmEncryptSym, CryptXORObfuscation).
 *
 * The key is sessionKey ‖ authValue, where authValue is the authorized entity's (trailing zeros
 * removed) whenever the session authorizes a handle — bound or not, policy or HMAC — and empty for
 * a session present only for encryption.
 *
 * Nonces go "newer first": a command is protected with (nonceCaller, nonceTPM), a response with
 * (nonceTPM, nonceCaller), nonceTPM being the one the same response carries.
 */

/** AES-CFB: key ‖ iv = KDFa(hash, key, "CFB", nonceNewer, nonceOlder, keyBits + 128). */
function cfbKeyAndIv(hash: number, symmetric: SymmetricDefinition, key: Uint8Array, nonceNewer: Uint8Array, nonceOlder: Uint8Array) {
  if (symmetric.algorithm !== TPM_ALG.AES || symmetric.mode !== TPM_ALG.CFB) {
    throw new SigilError('tpm.symmetric_unsupported', 'parameter encryption supports AES in CFB mode and XOR only', { ...symmetric });
  }
  const keyBits = symmetric.keyBits ?? 128;
  const material = kdfa(hash, key, 'CFB', nonceNewer, nonceOlder, keyBits + 128);
  return { key: material.subarray(0, keyBits / 8), iv: material.subarray(keyBits / 8) };
}

/** XOR obfuscation: data ⊕ KDFa(hash, key, "XOR", nonceNewer, nonceOlder, 8·size), hash being the session's. */
function xorMask(hash: number, key: Uint8Array, nonceNewer: Uint8Array, nonceOlder: Uint8Array, data: Uint8Array): Uint8Array {
  const mask = kdfa(hash, key, 'XOR', nonceNewer, nonceOlder, data.length * 8);
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ mask[i];
  return out;
}

export interface ParameterCipherInput {
  /** The session's hash algorithm (authHash). */
  hash: number;
  symmetric: SymmetricDefinition;
  /** sessionKey ‖ authValue, see above. */
  key: Uint8Array;
  nonceNewer: Uint8Array;
  nonceOlder: Uint8Array;
}

export function encryptParameterData(input: ParameterCipherInput, data: Uint8Array): Uint8Array {
  if (input.symmetric.algorithm === TPM_ALG.XOR) return xorMask(input.hash, input.key, input.nonceNewer, input.nonceOlder, data);
  const { key, iv } = cfbKeyAndIv(input.hash, input.symmetric, input.key, input.nonceNewer, input.nonceOlder);
  return aesCfbEncrypt(key, iv, data);
}

export function decryptParameterData(input: ParameterCipherInput, data: Uint8Array): Uint8Array {
  if (input.symmetric.algorithm === TPM_ALG.XOR) return xorMask(input.hash, input.key, input.nonceNewer, input.nonceOlder, data);
  const { key, iv } = cfbKeyAndIv(input.hash, input.symmetric, input.key, input.nonceNewer, input.nonceOlder);
  return aesCfbDecrypt(key, iv, data);
}
