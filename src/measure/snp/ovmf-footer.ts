/**
 * The GUIDed table at the end of an OVMF/TDVF image (edk2 OvmfPkg/ResetVector, "OVMF table
 * footer"). QEMU reads it to find the SEV-ES reset block, the SEV hashes table, the SEV metadata
 * and the TDX metadata; so do we. Shared by the SNP and TDX predictors.
 *
 * Layout, read backwards from the end of the image:
 *   [size-32, size)      reset vector code (not ours)
 *   [size-48, size-32)   footer GUID 96b582de-1fb2-45f7-baea-a366c55a082d
 *   [size-50, size-48)   u16 LE: length of the whole table, including this 18-byte footer entry
 *   before that, entries walked from the end: data || u16 LE length (data + 18) || GUID
 */
import { SigilError } from '../../core/errors.ts';

export const OVMF_TABLE_FOOTER_GUID = '96b582de-1fb2-45f7-baea-a366c55a082d';
const ENTRY_HEADER = 18; // u16 length + 16-byte GUID
const BYTES_AFTER_FOOTER = 32;
/** A real table holds a handful of entries; this only stops a hostile walk early. */
const MAX_ENTRIES = 256;

/** EFI GUID text → its 16 bytes (first three fields little-endian, the rest as written). */
export function guidBytes(text: string): Uint8Array {
  const hex = text.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex) || text.split('-').length !== 5) {
    throw new SigilError('measure.guid_invalid', `"${text}" is not a GUID`, { guid: text });
  }
  const raw = Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.substr(i * 2, 2), 16));
  const out = raw.slice();
  out.set([raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6]], 0);
  return out;
}

/** 16 GUID bytes → lowercase EFI GUID text. */
export function guidText(bytes: Uint8Array): string {
  const h = (i: number) => bytes[i].toString(16).padStart(2, '0');
  const part = (idx: number[]) => idx.map(h).join('');
  return `${part([3, 2, 1, 0])}-${part([5, 4])}-${part([7, 6])}-${part([8, 9])}-${part([10, 11, 12, 13, 14, 15])}`;
}

function u16le(bytes: Uint8Array, at: number): number {
  return bytes[at] | (bytes[at + 1] << 8);
}

export function u32le(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}

function invalid(message: string, details: Record<string, unknown>): never {
  throw new SigilError('measure.ovmf_footer_invalid', `OVMF footer table: ${message}`, details);
}

/**
 * The footer table's entries by lowercase GUID text. An image without the footer GUID has no
 * table: the result is empty (as QEMU and sev-snp-measure treat it), and callers refuse when an
 * entry they need is missing. A table that is there but malformed is refused here.
 */
export function parseFooterTable(firmware: Uint8Array): Map<string, Uint8Array> {
  const entries = new Map<string, Uint8Array>();
  const footerEnd = firmware.length - BYTES_AFTER_FOOTER;
  if (footerEnd < ENTRY_HEADER) return entries;
  if (guidText(firmware.subarray(footerEnd - 16, footerEnd)) !== OVMF_TABLE_FOOTER_GUID) return entries;
  const tableLength = u16le(firmware, footerEnd - ENTRY_HEADER);
  if (tableLength < ENTRY_HEADER) invalid(`length ${tableLength} is shorter than its own footer entry`, { tableLength });
  const tableStart = footerEnd - tableLength;
  if (tableStart < 0) invalid(`length ${tableLength} runs past the start of the image`, { tableLength, size: firmware.length });
  let end = footerEnd - ENTRY_HEADER; // the footer entry itself carries no data
  while (end - tableStart >= ENTRY_HEADER) {
    if (entries.size >= MAX_ENTRIES) invalid(`more than ${MAX_ENTRIES} entries`, {});
    const guid = guidText(firmware.subarray(end - 16, end));
    const length = u16le(firmware, end - ENTRY_HEADER);
    if (length < ENTRY_HEADER) invalid(`entry ${guid} has length ${length}, below the 18-byte header`, { guid, length });
    if (length > end - tableStart) invalid(`entry ${guid} (${length} bytes) runs past the table start`, { guid, length });
    if (entries.has(guid)) invalid(`entry ${guid} appears twice`, { guid });
    entries.set(guid, firmware.slice(end - length, end - ENTRY_HEADER));
    end -= length;
  }
  return entries;
}

/** An entry's leading u32 (every entry QEMU reads starts with one: an address or an offset). */
export function entryU32(entries: Map<string, Uint8Array>, guid: string, what: string): number | undefined {
  const data = entries.get(guid);
  if (data === undefined) return undefined;
  if (data.length < 4) invalid(`${what} entry has ${data.length} bytes, needs 4`, { guid, length: data.length });
  return u32le(data, 0);
}
