import type { Reader } from '../../core/bytes.ts';

/**
 * Intel's quote structures are little-endian while core's Reader reads big-endian; these read the
 * same bounds-checked bytes and assemble them in Intel's order.
 */
export function u16le(reader: Reader): number {
  const b = reader.take(2);
  return b[0] | (b[1] << 8);
}

export function u32le(reader: Reader): number {
  const b = reader.take(4);
  return (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;
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
