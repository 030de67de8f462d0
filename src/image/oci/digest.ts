/**
 * OCI content digests (image-spec descriptor.md "Digests"): `algorithm:encoded`, where Sigil
 * produces sha256 and accepts sha256 and sha512 (the two registered algorithms), lower-case hex.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { SigilError } from '../../core/errors.ts';

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST.test(value);
}

export function checkDigest(value: unknown, what = 'digest'): string {
  if (!isDigest(value)) throw new SigilError('oci.digest_invalid', `${what} is not a sha256 or sha512 digest`, { value: typeof value === 'string' ? value.slice(0, 80) : typeof value });
  return value;
}

export function digestParts(digest: string): { algorithm: 'sha256' | 'sha512'; hex: string } {
  checkDigest(digest);
  const [algorithm, hex] = digest.split(':');
  return { algorithm: algorithm as 'sha256' | 'sha512', hex };
}

export function digestBytes(bytes: Uint8Array, algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export async function digestFile(path: string, algorithm: 'sha256' | 'sha512' = 'sha256'): Promise<{ digest: string; size: number }> {
  const h = createHash(algorithm);
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `${algorithm}:${h.digest('hex')}`, size };
}

/** Throw oci.digest_mismatch unless `bytes` has `expected` digest (and size, when given). */
export function verifyContent(bytes: Uint8Array, expected: string, size?: number, what = 'blob'): void {
  const { algorithm } = digestParts(expected);
  if (size !== undefined && bytes.length !== size) {
    throw new SigilError('oci.digest_mismatch', `${what} ${expected} has ${bytes.length} bytes, the descriptor says ${size}`, { expected, size, actualSize: bytes.length });
  }
  const actual = digestBytes(bytes, algorithm);
  if (actual !== expected) throw new SigilError('oci.digest_mismatch', `${what} content does not match its digest ${expected}`, { expected, actual });
}
