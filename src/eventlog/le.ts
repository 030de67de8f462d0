import type { Reader } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';

/**
 * Little-endian helpers over the bounds-checked core Reader. TCG PC Client event logs, UEFI
 * structures and the IMA binary list are little-endian (the TPM's own structures are big-endian),
 * so these use the Reader's little-endian reads, which keep every bounds check in one place.
 */
export function u16le(r: Reader): number {
  return r.u16le();
}

export function u32le(r: Reader): number {
  return r.u32le();
}

export function u64le(r: Reader): bigint {
  return r.u64le();
}

export function leU16(value: number): Uint8Array {
  return new Uint8Array([value & 0xff, (value >>> 8) & 0xff]);
}

export function leU32(value: number): Uint8Array {
  return new Uint8Array([value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff]);
}

export function leU64(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, true);
  return out;
}

/** Read `n` bytes at the reader's position without consuming them (n must fit). */
export function peek(r: Reader, n: number): Uint8Array {
  return r.bytes.subarray(r.offset, r.offset + Math.min(n, r.remaining));
}

/** UTF-16LE code units → string; stops at the first NUL (UEFI strings are NUL-terminated). */
export function utf16le(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    const unit = bytes[i] | (bytes[i + 1] << 8);
    if (unit === 0) break;
    out += String.fromCharCode(unit);
  }
  return out;
}

export function toUtf16le(text: string, nul = false): Uint8Array {
  const out = new Uint8Array((text.length + (nul ? 1 : 0)) * 2);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out[2 * i] = unit & 0xff;
    out[2 * i + 1] = unit >>> 8;
  }
  return out;
}

/** ASCII/UTF-8 text without its trailing NULs (GRUB and firmware strings end in one). */
export function asciiz(bytes: Uint8Array): string {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, end));
}

/** A value that must fit a budget, so hostile length fields fail early with a named error. */
export function checkedLength(code: string, what: string, value: number, max: number): number {
  if (value > max) throw new SigilError(code, `${what} of ${value} exceeds the maximum ${max}`, { value, max });
  return value;
}

/** EFI_GUID (UEFI 2.10, Appendix A): Data1 u32 LE, Data2 u16 LE, Data3 u16 LE, Data4 8 bytes. */
export function readGuid(r: Reader): string {
  return formatGuid(r.borrow(16));
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function formatGuid(b: Uint8Array): string {
  const h = (i: number) => HEX[b[i]];
  return `${h(3)}${h(2)}${h(1)}${h(0)}-${h(5)}${h(4)}-${h(7)}${h(6)}-${h(8)}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`;
}

export function guidBytes(guid: string): Uint8Array {
  const clean = guid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(clean)) throw new SigilError('eventlog.guid_invalid', `not a GUID: ${guid}`);
  const raw = Uint8Array.from({ length: 16 }, (_, i) => parseInt(clean.substr(i * 2, 2), 16));
  const out = raw.slice();
  out.set(raw.subarray(0, 4).reverse(), 0);
  out.set(raw.subarray(4, 6).reverse(), 4);
  out.set(raw.subarray(6, 8).reverse(), 6);
  return out;
}
