import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';
import { SigilError } from '../../core/errors.ts';
import { hashAlg } from '../algorithms.ts';

/**
 * The TPM's key derivation functions (Part 1, 11.4.10) and its CFB parameter cipher. Node-only:
 * sessions run them on every command, so they use node:crypto rather than async WebCrypto.
 */

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Labels are ASCII and always followed by one zero byte in the KDF input. */
function labelBytes(label: string): Buffer {
  return Buffer.concat([Buffer.from(label, 'ascii'), Buffer.alloc(1)]);
}

/** KDFa: SP 800-108 counter mode with HMAC (Part 1, 11.4.10.2). */
export function kdfa(hash: number, key: Uint8Array, label: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Uint8Array {
  const info = hashAlg(hash);
  const bytes = Math.ceil(bits / 8);
  const blocks: Buffer[] = [];
  let produced = 0;
  for (let counter = 1; produced < bytes; counter++) {
    const mac = createHmac(info.node, key)
      .update(u32be(counter))
      .update(labelBytes(label))
      .update(contextU)
      .update(contextV)
      .update(u32be(bits))
      .digest();
    blocks.push(mac);
    produced += mac.length;
  }
  const out = new Uint8Array(Buffer.concat(blocks).subarray(0, bytes));
  // A bit count that is not a whole number of bytes masks the unused top bits of the first byte.
  if (bits % 8) out[0] &= 0xff >> (8 - (bits % 8));
  return out;
}

/** KDFe: the SP 800-56A concatenation KDF used after ECDH (Part 1, 11.4.10.3). */
export function kdfe(hash: number, z: Uint8Array, label: string, partyU: Uint8Array, partyV: Uint8Array, bits: number): Uint8Array {
  const info = hashAlg(hash);
  const bytes = Math.ceil(bits / 8);
  const blocks: Buffer[] = [];
  let produced = 0;
  for (let counter = 1; produced < bytes; counter++) {
    const d = createHash(info.node).update(u32be(counter)).update(z).update(labelBytes(label)).update(partyU).update(partyV).digest();
    blocks.push(d);
    produced += d.length;
  }
  return new Uint8Array(Buffer.concat(blocks).subarray(0, bytes));
}

function cfbCipherName(keyBits: number): string {
  if (keyBits !== 128 && keyBits !== 192 && keyBits !== 256) {
    throw new SigilError('tpm.symmetric_unsupported', `AES-${keyBits} is not supported`, { keyBits });
  }
  return `aes-${keyBits}-cfb`;
}

/** AES in full-block CFB mode, as the TPM uses for parameter encryption and credential blobs. */
export function aesCfbEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const cipher = createCipheriv(cfbCipherName(key.length * 8), key, iv);
  return new Uint8Array(Buffer.concat([cipher.update(data), cipher.final()]));
}

export function aesCfbDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const decipher = createDecipheriv(cfbCipherName(key.length * 8), key, iv);
  return new Uint8Array(Buffer.concat([decipher.update(data), decipher.final()]));
}

export function hmacBytes(hash: number, key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const mac = createHmac(hashAlg(hash).node, key);
  for (const p of parts) mac.update(p);
  return new Uint8Array(mac.digest());
}

export function hashBytes(hash: number, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash(hashAlg(hash).node);
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}
