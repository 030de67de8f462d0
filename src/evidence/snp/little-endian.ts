import type { Reader } from '../../core/bytes.ts';

/** SEV-SNP structures are little-endian: the Reader's bounds-checked little-endian reads. */
export function u8(reader: Reader): number {
  return reader.u8();
}

export function u32le(reader: Reader): number {
  return reader.u32le();
}

export function u64le(reader: Reader): bigint {
  return reader.u64le();
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
