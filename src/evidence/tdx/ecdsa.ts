import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { concatBytes } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';

/**
 * ECDSA P-256 / SHA-256 through WebCrypto. DCAP signatures (quote, QE report, TCB info, QE
 * identity) are raw r || s, 32 bytes each, which is WebCrypto's own ECDSA signature format.
 */
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const VERIFY = { name: 'ECDSA', hash: 'SHA-256' } as const;

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new SigilError('core.no_webcrypto', 'WebCrypto is not available in this runtime');
  return s;
}

/** A raw 64-byte x || y public key (the quote's attestation key). */
export async function importRawP256(xy: Uint8Array, code: string): Promise<CryptoKey> {
  if (xy.length !== 64) throw new SigilError(code, `a P-256 public key is 64 bytes, got ${xy.length}`);
  try {
    return await subtle().importKey('raw', concatBytes(new Uint8Array([4]), xy) as Uint8Array<ArrayBuffer>, P256, false, ['verify']);
  } catch (error) {
    throw new SigilError(code, 'the public key is not a point on P-256', {}, { cause: error });
  }
}

/** The certificate's subject key, which must be P-256. */
export async function importCertificateKey(cert: x509.X509Certificate, code: string): Promise<CryptoKey> {
  try {
    return await subtle().importKey('spki', cert.publicKey.rawData, P256, false, ['verify']);
  } catch (error) {
    throw new SigilError(code, `the key of "${cert.subject}" is not an ECDSA P-256 key`, {}, { cause: error });
  }
}

export async function verifyP256(key: CryptoKey, signature: Uint8Array, data: Uint8Array): Promise<boolean> {
  if (signature.length !== 64) return false;
  return subtle().verify(VERIFY, key, signature as Uint8Array<ArrayBuffer>, data as Uint8Array<ArrayBuffer>);
}
