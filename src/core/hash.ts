import { concatBytes } from './bytes.ts';
import { SigilError } from './errors.ts';

/** Hash names as WebCrypto spells them; isomorphic code hashes only through these. */
export type HashName = 'SHA-1' | 'SHA-256' | 'SHA-384' | 'SHA-512';

export const HASH_SIZES: Record<HashName, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 };

interface NodeHashing {
  createHash(name: string): { update(data: Uint8Array): unknown; digest(): Uint8Array };
  createHmac(name: string, key: Uint8Array): { update(data: Uint8Array): unknown; digest(): Uint8Array };
}

/**
 * On Node, hash synchronously through node:crypto, found at run time with
 * process.getBuiltinModule, so this file still imports nothing Node-specific and runs unchanged
 * in browsers. WebCrypto's digest runs on a thread pool: each call costs a hop (tens of µs), which
 * dominates the many small hashes TPM policies and event-log replays make.
 */
const nodeHashing = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:crypto') as NodeHashing | undefined;
const NODE_NAMES: Record<HashName, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new SigilError('core.no_webcrypto', 'WebCrypto is not available in this runtime');
  return s;
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  return concatBytes(...parts) as Uint8Array<ArrayBuffer>;
}

export async function digest(hash: HashName, ...parts: Uint8Array[]): Promise<Uint8Array> {
  if (nodeHashing) {
    const h = nodeHashing.createHash(NODE_NAMES[hash]);
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  }
  return new Uint8Array(await subtle().digest(hash, concat(parts)));
}

export async function hmac(hash: HashName, key: Uint8Array, ...parts: Uint8Array[]): Promise<Uint8Array> {
  if (nodeHashing) {
    const h = nodeHashing.createHmac(NODE_NAMES[hash], key);
    for (const p of parts) h.update(p);
    return new Uint8Array(h.digest());
  }
  // WebCrypto refuses zero-length HMAC keys; HMAC pads short keys with zeros anyway, so one zero
  // byte gives the same MAC as the empty key.
  const k = key.length === 0 ? new Uint8Array(1) : key;
  const cryptoKey = await subtle().importKey('raw', k as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash }, false, ['sign']);
  return new Uint8Array(await subtle().sign('HMAC', cryptoKey, concat(parts)));
}
