import { SigilError } from './errors.ts';

/** Hash names as WebCrypto spells them; isomorphic code hashes only through these. */
export type HashName = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';

export const HASH_SIZES: Record<HashName, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

export async function digest(hash: HashName, ...parts: Uint8Array[]): Promise<Uint8Array> {
  let data: Uint8Array;
  if (parts.length === 1) data = parts[0];
  else {
    let length = 0;
    for (const p of parts) length += p.length;
    data = new Uint8Array(length);
    let o = 0;
    for (const p of parts) {
      data.set(p, o);
      o += p.length;
    }
  }
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new SigilError('core.no_webcrypto', 'WebCrypto is not available in this runtime');
  return new Uint8Array(await subtle.digest(hash, data as Uint8Array<ArrayBuffer>));
}

export async function hmac(hash: HashName, key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array> {
  const subtle = globalThis.crypto.subtle;
  // WebCrypto refuses zero-length HMAC keys; HMAC pads short keys with zeros anyway, so one zero
  // byte gives the same MAC as the empty key.
  const k = key.length === 0 ? new Uint8Array(1) : key;
  const cryptoKey = await subtle.importKey('raw', k as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash }, false, ['sign']);
  let length = 0;
  for (const p of parts) length += p.length;
  const data = new Uint8Array(length);
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return new Uint8Array(await subtle.sign('HMAC', cryptoKey, data));
}
