import { concatBytes } from './bytes.ts';
import { SigilError } from './errors.ts';
import { nodeCrypto } from './node-builtins.ts';

/** Hash names as WebCrypto spells them; isomorphic code hashes only through these. */
export type HashName = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';

export const HASH_SIZES: Record<HashName, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

/**
 * On Node, hashing is synchronous through node:crypto (node-builtins.ts); in browsers it goes
 * through WebCrypto, which only has an asynchronous digest. Code that hashes many small values
 * (an event-log replay: two extends per event and bank) can test `hasDigestSync` and call
 * `digestSync` in its loop, skipping an await per hash, and await `digest` otherwise.
 */
export const NODE_HASH_NAMES: Record<HashName, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

export const hasDigestSync = nodeCrypto !== undefined;

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new SigilError('core.no_webcrypto', 'WebCrypto is not available in this runtime');
  return s;
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return concatBytes(...parts) as Uint8Array<ArrayBuffer>;
}

/**
 * Digest bytes from node's latin1 output (one character per byte). Node hands a digest back as a
 * string three times faster than as a node buffer, about 0.3 µs against 1.1 µs, since each buffer
 * is a new backing store; that is most of the cost of a 64-byte hash. The result is also a plain
 * Uint8Array, as isomorphic code must hand out.
 */
function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Reused for joining a few small parts before a one-shot hash (cheaper than a Hash object). */
let scratch = new Uint8Array(512);

/** Synchronous digest; only where `hasDigestSync` (Node), else it throws core.no_sync_digest. */
export function digestSync(hash: HashName, ...parts: Uint8Array[]): Uint8Array {
  const node = nodeCrypto;
  if (!node) throw new SigilError('core.no_sync_digest', 'synchronous hashing needs node:crypto; use digest()');
  const name = NODE_HASH_NAMES[hash];
  if (node.hash) {
    if (parts.length === 1) return latin1Bytes(node.hash(name, parts[0], 'latin1'));
    let length = 0;
    for (const p of parts) length += p.length;
    if (length <= 4096) {
      if (length > scratch.length) scratch = new Uint8Array(4096);
      let offset = 0;
      for (const p of parts) {
        scratch.set(p, offset);
        offset += p.length;
      }
      return latin1Bytes(node.hash(name, scratch.subarray(0, length), 'latin1'));
    }
  }
  const h = node.createHash(name);
  for (const p of parts) h.update(p);
  return latin1Bytes(h.digest('latin1'));
}

export async function digest(hash: HashName, ...parts: Uint8Array[]): Promise<Uint8Array> {
  if (hasDigestSync) return digestSync(hash, ...parts);
  return new Uint8Array(await subtle().digest(hash, concat(parts)));
}

export async function hmac(hash: HashName, key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array> {
  if (nodeCrypto) {
    const h = nodeCrypto.createHmac(NODE_HASH_NAMES[hash], key);
    for (const p of parts) h.update(p);
    return latin1Bytes(h.digest('latin1'));
  }
  // WebCrypto refuses zero-length HMAC keys; HMAC pads short keys with zeros anyway, so one zero
  // byte gives the same MAC as the empty key.
  const k = key.length === 0 ? new Uint8Array(1) : key;
  const cryptoKey = await subtle().importKey('raw', k as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', cryptoKey, concat(parts)));
}
