import type { SnpProduct } from './product.ts';
import { u64Hex } from './little-endian.ts';

/**
 * TCB_VERSION: a u64 of per-component security patch levels (SPLs). The byte layout depends on
 * the product (SEV-SNP Firmware ABI 1.58, chapter 2.2):
 *   Milan, Genoa (table 3): byte 0 BOOT_LOADER, 1 TEE, 2-5 reserved, 6 SNP, 7 MICROCODE
 *   Turin and later (table 4): byte 0 FMC, 1 BOOT_LOADER, 2 TEE, 3 SNP, 4-6 reserved, 7 MICROCODE
 * Bytes are numbered from the least significant byte of the little-endian u64.
 */
export interface TcbVersion {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin and later only. */
  fmc?: number;
  /** The u64 as 16 hex digits, most significant first (e.g. "4405000000000002"). */
  hex: string;
}

export type TcbComponent = 'bootloader' | 'tee' | 'snp' | 'microcode' | 'fmc';

export function tcbComponents(product: SnpProduct): TcbComponent[] {
  return product === 'Turin' ? ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] : ['bootloader', 'tee', 'snp', 'microcode'];
}

function byteOf(value: bigint, index: number): number {
  return Number((value >> BigInt(index * 8)) & 0xffn);
}

export function decodeTcb(value: bigint, product: SnpProduct): TcbVersion {
  if (product === 'Turin') {
    return { fmc: byteOf(value, 0), bootloader: byteOf(value, 1), tee: byteOf(value, 2), snp: byteOf(value, 3), microcode: byteOf(value, 7), hex: u64Hex(value) };
  }
  return { bootloader: byteOf(value, 0), tee: byteOf(value, 1), snp: byteOf(value, 6), microcode: byteOf(value, 7), hex: u64Hex(value) };
}

export function encodeTcb(parts: Omit<TcbVersion, 'hex'>, product: SnpProduct): bigint {
  const at = (v: number | undefined, index: number) => BigInt((v ?? 0) & 0xff) << BigInt(index * 8);
  if (product === 'Turin') return at(parts.fmc, 0) | at(parts.bootloader, 1) | at(parts.tee, 2) | at(parts.snp, 3) | at(parts.microcode, 7);
  return at(parts.bootloader, 0) | at(parts.tee, 1) | at(parts.snp, 6) | at(parts.microcode, 7);
}

/** Components of `actual` below `minimum` (a partial floor: absent components are not checked). */
export function tcbBelow(actual: TcbVersion, minimum: Partial<Record<TcbComponent, number>>): TcbComponent[] {
  const low: TcbComponent[] = [];
  for (const key of ['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const) {
    const floor = minimum[key];
    if (floor !== undefined && (actual[key] ?? 0) < floor) low.push(key);
  }
  return low;
}

/** True when every component of `a` is ≤ the same component of `b`. */
export function tcbAtMost(a: TcbVersion, b: TcbVersion): boolean {
  return (['fmc', 'bootloader', 'tee', 'snp', 'microcode'] as const).every((k) => (a[k] ?? 0) <= (b[k] ?? 0));
}
