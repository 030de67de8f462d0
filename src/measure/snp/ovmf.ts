/**
 * What an AMD SEV launch needs from an OVMF (or Coconut SVSM) image: where it is mapped, the
 * SEV-ES reset block (AP entry point), the SEV hashes table address (measured direct boot), and
 * the SEV metadata sections that SNP_LAUNCH_UPDATE measures without contents.
 *
 * SEV metadata (edk2 OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm), located by the footer entry
 * dc886566-… whose data starts with a u32 LE offset from the end of the image:
 *   0  'ASEV'   4  u32 size (header + descriptors)   8  u32 version (1)   12  u32 item count
 *   16 + 12*i   descriptor: u32 gpa, u32 size, u32 section type
 */
import { SigilError } from '../../core/errors.ts';
import { entryU32, parseFooterTable, u32le } from './ovmf-footer.ts';

export const SEV_HASH_TABLE_RV_GUID = '7255371f-3a3b-4b04-927b-1da6efa8d454';
export const SEV_ES_RESET_BLOCK_GUID = '00f771de-1a7e-4fcb-890e-68c77e2fb44e';
export const OVMF_SEV_METADATA_GUID = 'dc886566-984a-4798-a75e-5585a7bf67cc';
export const SVSM_INFO_GUID = 'a789a612-0597-4c4b-a49f-cbb1fe9d1ddd';

/** Section types of the SEV metadata (OvmfSevMetadata.asm, QEMU's OvmfSevMetadataDesc). */
export const SEV_SECTION = { SNP_SEC_MEM: 1, SNP_SECRETS: 2, CPUID: 3, SVSM_CAA: 4, SNP_KERNEL_HASHES: 0x10 } as const;
export const SEV_SECTION_NAMES: Record<number, string> = { 1: 'SNP_SEC_MEM', 2: 'SNP_SECRETS', 3: 'CPUID', 4: 'SVSM_CAA', 0x10: 'SNP_KERNEL_HASHES' };

export const FOUR_GIB = 0x1_0000_0000;
const MAX_SECTIONS = 64;

export interface SevMetadataSection {
  gpa: number;
  size: number;
  type: number;
}

export interface SevFirmware {
  /** The image bytes; absent when only a precomputed OVMF hash and the size are known. */
  data?: Uint8Array;
  size: number;
  /** Guest physical address of the first byte: the image ends at `endAt` (4 GiB for OVMF). */
  gpa: number;
  /** SEV-ES reset block: the AP reset EIP (undefined when the image has none). */
  sevEsResetEip?: number;
  /** SEV hashes table GPA; 0 or undefined means no measured direct boot support. */
  sevHashesTableGpa?: number;
  /** SVSM_INFO entry (Coconut SVSM images): offset of the SVSM entry point from the image start. */
  svsmEntryOffset?: number;
  sections: SevMetadataSection[];
}

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('measure.ovmf_metadata_invalid', `OVMF SEV metadata: ${message}`, details);
}

function parseSevMetadata(data: Uint8Array, offsetFromEnd: number): SevMetadataSection[] {
  const start = data.length - offsetFromEnd;
  if (offsetFromEnd === 0 || start < 0 || start + 16 > data.length) invalid(`offset ${offsetFromEnd} from the end is outside the image`, { offsetFromEnd, size: data.length });
  const signature = String.fromCharCode(...data.subarray(start, start + 4));
  if (signature !== 'ASEV') invalid(`signature is ${JSON.stringify(signature)}, not "ASEV"`);
  const size = u32le(data, start + 4);
  const version = u32le(data, start + 8);
  const count = u32le(data, start + 12);
  if (version !== 1) invalid(`version ${version} is not 1`, { version });
  if (count > MAX_SECTIONS) invalid(`${count} sections exceed the maximum ${MAX_SECTIONS}`, { count });
  const needed = 16 + 12 * count;
  // Leniency (documented, tested): a header whose size field is 0 is read by its item count, as
  // dstack's parser does; sev-snp-measure would refuse it. Any other size must cover the items.
  if (size !== 0 && size < needed) invalid(`size ${size} is too small for ${count} sections`, { size, count });
  if (start + needed > data.length) invalid(`${count} sections run past the end of the image`, { count });
  const sections: SevMetadataSection[] = [];
  for (let i = 0; i < count; i++) {
    const at = start + 16 + 12 * i;
    sections.push({ gpa: u32le(data, at), size: u32le(data, at + 4), type: u32le(data, at + 8) });
  }
  return sections;
}

/**
 * Parse an OVMF (or SVSM) image for SEV measurement. `endAt` is where the image's last byte + 1
 * is mapped: 4 GiB for OVMF; for an SVSM image, the OVMF GPA minus the OVMF variable store size.
 */
export function parseSevFirmware(data: Uint8Array, options: { endAt?: number } = {}): SevFirmware {
  const endAt = options.endAt ?? FOUR_GIB;
  if (data.length === 0 || data.length % 4096 !== 0) {
    throw new SigilError('measure.ovmf_size_invalid', `the firmware image is ${data.length} bytes, not a whole number of 4 KiB pages`, { size: data.length });
  }
  if (data.length > endAt) throw new SigilError('measure.ovmf_size_invalid', `the firmware image (${data.length} bytes) does not fit below ${endAt}`, { size: data.length, endAt });
  const table = parseFooterTable(data);
  const metadataOffset = entryU32(table, OVMF_SEV_METADATA_GUID, 'SEV metadata');
  return {
    data,
    size: data.length,
    gpa: endAt - data.length,
    sevEsResetEip: entryU32(table, SEV_ES_RESET_BLOCK_GUID, 'SEV-ES reset block'),
    sevHashesTableGpa: entryU32(table, SEV_HASH_TABLE_RV_GUID, 'SEV hashes table'),
    svsmEntryOffset: entryU32(table, SVSM_INFO_GUID, 'SVSM info'),
    sections: metadataOffset === undefined ? [] : parseSevMetadata(data, metadataOffset),
  };
}

export function hasSection(firmware: SevFirmware, type: number): boolean {
  return firmware.sections.some((s) => s.type === type);
}
