import type { Reader } from '../../core/bytes.ts';

/**
 * SEV-SNP structures are little-endian while core's Reader reads big-endian; these read through
 * `reader.take(n)` so every read stays bounds-checked with the reader's own error code.
 */
export function u8(reader: Reader): number {
  return reader.u8();
}

export function u32le(reader: Reader): number {
  const b = reader.take(4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

export function u64le(reader: Reader): bigint {
  const b = reader.take(8);
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

/** A little-endian unsigned integer of any width → big-endian bytes of `size`, or null when it does not fit. */
export function littleToBigEndian(little: Uint8Array, size: number): Uint8Array | null {
  for (let i = size; i < little.length; i++) if (little[i] !== 0) return null;
  const out = new Uint8Array(size);
  for (let i = 0; i < size && i < little.length; i++) out[size - 1 - i] = little[i];
  return out;
}

/** The u64 as 16 lowercase hex digits, most significant first (how AMD tools print TCB values). */
export function u64Hex(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}
