import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { SigilError, isSigilError } from '../../core/errors.ts';
import { assertPublicKey, verifySignature, type PublicKeyInput } from '../../core/signature.ts';

/**
 * ECDSA P-256 / SHA-256 (core/signature.ts: node:crypto on Node, WebCrypto in browsers, keys
 * imported once). DCAP signatures (quote, QE report, TCB info, QE identity) are raw r || s, 32
 * bytes each, which is WebCrypto's own ECDSA signature format.
 */
const P256 = { alg: 'ECDSA', hash: 'SHA-256', namedCurve: 'P-256' } as const;

/** A P-256 verification key, with the error to report if it turns out not to be one. */
export interface P256Key {
  key: PublicKeyInput;
  code: string;
  message: string;
}

/** A raw 64-byte x || y public key (the quote's attestation key). */
export async function importRawP256(xy: Uint8Array, code: string): Promise<P256Key> {
  if (xy.length !== 64) throw new SigilError(code, `a P-256 public key is 64 bytes, got ${xy.length}`);
  return { key: { ecPoint: xy }, code, message: 'the public key is not a point on P-256' };
}

/** The certificate's subject key, which must be P-256 (checked when it is first used). */
export async function importCertificateKey(cert: x509.X509Certificate, code: string): Promise<P256Key> {
  let spki: Uint8Array;
  try {
    spki = new Uint8Array(cert.publicKey.rawData);
  } catch (error) {
    throw new SigilError(code, `the key of "${cert.subject}" cannot be read`, {}, { cause: error });
  }
  return { key: { spki }, code, message: `the key of "${cert.subject}" is not an ECDSA P-256 key` };
}

/** Whether `key` signed `data`; a key that is not a P-256 key throws its own error code. */
export async function verifyP256(key: P256Key, signature: Uint8Array, data: Uint8Array): Promise<boolean> {
  try {
    if (signature.length === 64) return await verifySignature({ ...P256, key: key.key, signature, data });
    // A bad key is named as such even next to a malformed signature.
    await assertPublicKey({ ...P256, key: key.key });
    return false;
  } catch (error) {
    if (isSigilError(error, 'core.public_key_invalid')) throw new SigilError(key.code, key.message, {}, { cause: error });
    throw error;
  }
}
