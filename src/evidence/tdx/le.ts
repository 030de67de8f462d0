import type { Reader } from '../../core/bytes.ts';

/** Intel's quote structures are little-endian: the Reader's bounds-checked little-endian reads. */
export function u16le(reader: Reader): number {
  return reader.u16le();
}

export function u32le(reader: Reader): number {
  return reader.u32le();
}

/** A little-endian u32 inside bytes already read (e.g. MISCSELECT). */
export function u32leAt(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

export function u64leAt(bytes: Uint8Array, offset: number): bigint {
  let value = 0n;
  for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(bytes[offset + i]);
  return value;
}
