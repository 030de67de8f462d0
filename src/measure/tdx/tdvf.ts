/**
 * TDVF metadata (Intel "TDX Virtual Firmware Design Guide", section 11 "TDVF Metadata") and the
 * MRTD it produces. The OVMF footer entry e47a6535-… ends with a u32 LE offset from the end of the
 * image to the descriptor:
 *   0 'TDVF'   4 u32 length   8 u32 version (1)   12 u32 number of sections
 *   16 + 32*i  section: u32 DataOffset, u32 RawDataSize, u64 MemoryAddress, u64 MemoryDataSize,
 *              u32 Type, u32 Attributes (bit 0 MR.EXTEND, bit 1 PAGE.AUG)
 *
 * MRTD is SHA-384 over the TDX module's build-time log (TDX module ABI, TDH.MEM.PAGE.ADD and
 * TDH.MR.EXTEND): per added page a 128-byte record "MEM.PAGE.ADD" at 0 and the GPA (u64 LE) at
 * 16; per 256-byte chunk of a measured page a record "MR.EXTEND" + GPA, then the chunk itself.
 */
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { parseFooterTable, u32le } from '../snp/ovmf-footer.ts';

export const TDX_METADATA_OFFSET_GUID = 'e47a6535-984a-4798-865e-4685a7bf8ec2';
export const TDVF_SECTION = { BFV: 0, CFV: 1, TD_HOB: 2, TEMP_MEM: 3, PERM_MEM: 4, PAYLOAD: 5, PAYLOAD_PARAM: 6 } as const;
export const TDVF_SECTION_NAMES: Record<number, string> = { 0: 'BFV', 1: 'CFV', 2: 'TD_HOB', 3: 'TEMP_MEM', 4: 'PERM_MEM', 5: 'PAYLOAD', 6: 'PAYLOAD_PARAM' };
export const ATTRIBUTE_MR_EXTEND = 0x1;
export const ATTRIBUTE_PAGE_AUG = 0x2;
const PAGE = 0x1000;
const CHUNK = 0x100;
const MAX_SECTIONS = 64;

export interface TdvfSection {
  dataOffset: number;
  rawDataSize: number;
  memoryAddress: number;
  memoryDataSize: number;
  type: number;
  attributes: number;
}

export interface Tdvf {
  firmware: Uint8Array;
  sections: TdvfSection[];
}

/**
 * How the VMM adds pages. 'single-pass': each page is added then measured (KVM's
 * KVM_TDX_INIT_MEM_REGION with MEASURE, upstream QEMU; tdx-measure). 'two-pass': per section,
 * every page is added first, then the section's pages are measured (older TDX QEMU; dstack-mr).
 */
export type PageAddOrder = 'single-pass' | 'two-pass';

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('measure.tdvf_metadata_invalid', `TDVF metadata: ${message}`, details);
}

function u64le(bytes: Uint8Array, at: number): number {
  const value = u32le(bytes, at) + u32le(bytes, at + 4) * 0x1_0000_0000;
  if (!Number.isSafeInteger(value)) invalid(`a 64-bit field at ${at} exceeds 2^53`, { at });
  return value;
}

export function parseTdvf(firmware: Uint8Array): Tdvf {
  const table = parseFooterTable(firmware);
  const entry = table.get(TDX_METADATA_OFFSET_GUID);
  if (entry === undefined) throw new SigilError('measure.tdvf_metadata_missing', 'the firmware has no TDX metadata (not a TDVF/OVMF build with TDX support)');
  if (entry.length < 4) invalid(`the metadata offset entry has ${entry.length} bytes`);
  // The offset is the entry's last u32 (edk2 puts only that one there).
  const offsetFromEnd = u32le(entry, entry.length - 4);
  const start = firmware.length - offsetFromEnd;
  if (offsetFromEnd === 0 || start < 0 || start + 16 > firmware.length) invalid(`offset ${offsetFromEnd} from the end is outside the image`, { offsetFromEnd });
  const signature = String.fromCharCode(...firmware.subarray(start, start + 4));
  if (signature !== 'TDVF') invalid(`signature is ${JSON.stringify(signature)}, not "TDVF"`);
  const version = u32le(firmware, start + 8);
  if (version !== 1) invalid(`version ${version} is not 1`, { version });
  const count = u32le(firmware, start + 12);
  if (count > MAX_SECTIONS) invalid(`${count} sections exceed the maximum ${MAX_SECTIONS}`, { count });
  if (start + 16 + 32 * count > firmware.length) invalid(`${count} sections run past the end of the image`, { count });
  const sections: TdvfSection[] = [];
  for (let i = 0; i < count; i++) {
    const at = start + 16 + 32 * i;
    const s: TdvfSection = {
      dataOffset: u32le(firmware, at),
      rawDataSize: u32le(firmware, at + 4),
      memoryAddress: u64le(firmware, at + 8),
      memoryDataSize: u64le(firmware, at + 16),
      type: u32le(firmware, at + 24),
      attributes: u32le(firmware, at + 28),
    };
    const where = { section: i, ...s };
    if (s.memoryAddress % PAGE !== 0) invalid(`section ${i}: memory address is not page aligned`, where);
    if (s.memoryDataSize % PAGE !== 0) invalid(`section ${i}: memory size is not whole pages`, where);
    if (s.memoryDataSize < s.rawDataSize) invalid(`section ${i}: memory size is smaller than the raw data`, where);
    // MR.EXTEND reads memoryDataSize bytes of the image from dataOffset; others read rawDataSize.
    const read = s.attributes & ATTRIBUTE_MR_EXTEND ? s.memoryDataSize : s.rawDataSize;
    if (s.dataOffset + read > firmware.length) invalid(`section ${i}: data ${s.dataOffset}+${read} is outside the ${firmware.length}-byte image`, where);
    if (s.memoryDataSize > 0x1_0000_0000) invalid(`section ${i}: ${s.memoryDataSize} bytes of memory is more than any TDVF section`, where);
    sections.push(s);
  }
  return { firmware, sections };
}

function pageAddRecord(kind: 'MEM.PAGE.ADD' | 'MR.EXTEND', gpa: number): Uint8Array {
  const record = new Uint8Array(128);
  for (let i = 0; i < kind.length; i++) record[i] = kind.charCodeAt(i);
  new DataView(record.buffer).setBigUint64(16, BigInt(gpa), true);
  return record;
}

/** The MRTD the TDX module reports for this firmware, given how the VMM adds its pages. */
export async function mrtd(tdvf: Tdvf, order: PageAddOrder = 'single-pass'): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const add = (s: TdvfSection, page: number) => {
    if (!(s.attributes & ATTRIBUTE_PAGE_AUG)) parts.push(pageAddRecord('MEM.PAGE.ADD', s.memoryAddress + page * PAGE));
  };
  const extend = (s: TdvfSection, page: number) => {
    if (!(s.attributes & ATTRIBUTE_MR_EXTEND)) return;
    for (let chunk = 0; chunk < PAGE; chunk += CHUNK) {
      parts.push(pageAddRecord('MR.EXTEND', s.memoryAddress + page * PAGE + chunk));
      const at = s.dataOffset + page * PAGE + chunk;
      parts.push(tdvf.firmware.subarray(at, at + CHUNK));
    }
  };
  for (const s of tdvf.sections) {
    const pages = s.memoryDataSize / PAGE;
    if (order === 'two-pass') {
      for (let p = 0; p < pages; p++) add(s, p);
      for (let p = 0; p < pages; p++) extend(s, p);
    } else {
      for (let p = 0; p < pages; p++) {
        add(s, p);
        extend(s, p);
      }
    }
  }
  return digest('SHA-384', ...parts);
}
