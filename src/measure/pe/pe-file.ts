import { SigilError } from '../../core/errors.ts';

/**
 * PE/COFF headers as UEFI firmware reads them, from untrusted bytes. Offsets are from the Microsoft
 * PE format specification ("PE Format", sections "MS-DOS stub", "COFF File Header", "Optional
 * Header", "Section Table"); all fields little-endian. Every offset is checked against the file
 * before it is read, so a hostile file ends in SigilError('pe.*') and nothing else.
 */

export const PE32_MAGIC = 0x10b;
export const PE32_PLUS_MAGIC = 0x20b;
/** Index of the Certificate Table ("security directory") in the data directories. */
export const DIRECTORY_SECURITY = 4;
export const SECTION_HEADER_SIZE = 40;
export const COFF_HEADER_SIZE = 20;
/** Largest zero-filled section Sigil will materialise (a hostile VirtualSize must not exhaust memory). */
const MAX_ZERO_FILLED = 64 * 1024 * 1024;

export interface PeSection {
  /** Name as the stub compares it: up to 8 bytes, cut at the first NUL (ASCII). */
  name: string;
  /** The raw 8 name bytes. */
  nameBytes: Uint8Array;
  virtualSize: number;
  virtualAddress: number;
  sizeOfRawData: number;
  pointerToRawData: number;
  characteristics: number;
  /** File offset of this section's 40-byte header. */
  headerOffset: number;
}

export interface PeFile {
  bytes: Uint8Array;
  format: 'PE32' | 'PE32+';
  machine: number;
  timeDateStamp: number;
  /** File offset of the "PE\0\0" signature (e_lfanew). */
  peOffset: number;
  optionalHeaderOffset: number;
  sizeOfOptionalHeader: number;
  majorImageVersion: number;
  sectionAlignment: number;
  fileAlignment: number;
  sizeOfImage: number;
  sizeOfHeaders: number;
  checksum: number;
  subsystem: number;
  /** File offset of the 4-byte CheckSum field. */
  checksumOffset: number;
  numberOfRvaAndSizes: number;
  /** File offset of the 8-byte Certificate Table entry, when the directory array has one. */
  securityDirectoryOffset?: number;
  /** The Certificate Table entry: a file offset (not an RVA) and a size; zero when unsigned. */
  certificateTable: { offset: number; size: number };
  sectionTableOffset: number;
  sections: PeSection[];
}

export function u16(bytes: Uint8Array, offset: number): number {
  return bytes[offset] | (bytes[offset + 1] << 8);
}

export function u32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] | (bytes[offset + 1] << 8) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 24)) >>> 0;
}

export function putU16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff;
  bytes[offset + 1] = (value >>> 8) & 0xff;
}

export function putU32(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff;
  bytes[offset + 1] = (value >>> 8) & 0xff;
  bytes[offset + 2] = (value >>> 16) & 0xff;
  bytes[offset + 3] = (value >>> 24) & 0xff;
}

function fail(code: string, message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(`pe.${code}`, `PE image: ${message}`, details);
}

function need(bytes: Uint8Array, offset: number, length: number, what: string): void {
  if (offset < 0 || length < 0 || offset + length > bytes.length) {
    fail('truncated', `${what} lies outside the file`, { offset, length, fileSize: bytes.length });
  }
}

function sectionName(raw: Uint8Array): string {
  let end = raw.indexOf(0);
  if (end < 0) end = raw.length;
  let name = '';
  for (let i = 0; i < end; i++) name += String.fromCharCode(raw[i]);
  return name;
}

/** Parse the headers and section table. Section contents are not touched. */
export function parsePe(bytes: Uint8Array): PeFile {
  need(bytes, 0, 0x40, 'MS-DOS header');
  if (bytes[0] !== 0x4d || bytes[1] !== 0x5a) fail('not_pe', 'no "MZ" signature');
  const peOffset = u32(bytes, 0x3c);
  need(bytes, peOffset, 4 + COFF_HEADER_SIZE, 'PE signature and COFF header');
  if (u32(bytes, peOffset) !== 0x00004550) fail('not_pe', 'no "PE\\0\\0" signature', { peOffset });
  const coff = peOffset + 4;
  const machine = u16(bytes, coff);
  const numberOfSections = u16(bytes, coff + 2);
  const timeDateStamp = u32(bytes, coff + 4);
  const sizeOfOptionalHeader = u16(bytes, coff + 16);
  const optionalHeaderOffset = coff + COFF_HEADER_SIZE;
  need(bytes, optionalHeaderOffset, sizeOfOptionalHeader, 'optional header');
  if (sizeOfOptionalHeader < 2) fail('optional_header_invalid', 'optional header too small', { sizeOfOptionalHeader });
  const magic = u16(bytes, optionalHeaderOffset);
  if (magic !== PE32_MAGIC && magic !== PE32_PLUS_MAGIC) fail('optional_header_invalid', `unknown optional header magic 0x${magic.toString(16)}`);
  const plus = magic === PE32_PLUS_MAGIC;
  // Fixed part: 96 bytes (PE32) or 112 bytes (PE32+) up to and including NumberOfRvaAndSizes.
  const fixed = plus ? 112 : 96;
  if (sizeOfOptionalHeader < fixed) fail('optional_header_invalid', 'optional header shorter than its fixed fields', { sizeOfOptionalHeader, fixed });
  const oh = optionalHeaderOffset;
  const numberOfRvaAndSizes = u32(bytes, oh + fixed - 4);
  const directories = oh + fixed;
  // Only the entries that fit in SizeOfOptionalHeader exist, whatever NumberOfRvaAndSizes claims.
  const directoriesFitting = Math.floor((sizeOfOptionalHeader - fixed) / 8);
  if (numberOfRvaAndSizes > 16 || numberOfRvaAndSizes > directoriesFitting) {
    fail('optional_header_invalid', 'NumberOfRvaAndSizes exceeds the optional header', { numberOfRvaAndSizes, directoriesFitting });
  }
  let securityDirectoryOffset: number | undefined;
  let certificateTable = { offset: 0, size: 0 };
  if (numberOfRvaAndSizes > DIRECTORY_SECURITY) {
    securityDirectoryOffset = directories + DIRECTORY_SECURITY * 8;
    certificateTable = { offset: u32(bytes, securityDirectoryOffset), size: u32(bytes, securityDirectoryOffset + 4) };
  }
  const sizeOfHeaders = u32(bytes, oh + 60);
  const sectionTableOffset = optionalHeaderOffset + sizeOfOptionalHeader;
  need(bytes, sectionTableOffset, numberOfSections * SECTION_HEADER_SIZE, 'section table');
  if (sizeOfHeaders > bytes.length) fail('headers_invalid', 'SizeOfHeaders exceeds the file', { sizeOfHeaders, fileSize: bytes.length });
  // The fields Authenticode skips must lie inside the hashed header range.
  const checksumOffset = oh + 64;
  const headerEnd = Math.max(checksumOffset + 4, securityDirectoryOffset !== undefined ? securityDirectoryOffset + 8 : 0);
  if (headerEnd > sizeOfHeaders) fail('headers_invalid', 'SizeOfHeaders ends before the optional header fields', { sizeOfHeaders, headerEnd });

  const sections: PeSection[] = [];
  for (let i = 0; i < numberOfSections; i++) {
    const at = sectionTableOffset + i * SECTION_HEADER_SIZE;
    const nameBytes = bytes.slice(at, at + 8);
    sections.push({
      name: sectionName(nameBytes),
      nameBytes,
      virtualSize: u32(bytes, at + 8),
      virtualAddress: u32(bytes, at + 12),
      sizeOfRawData: u32(bytes, at + 16),
      pointerToRawData: u32(bytes, at + 20),
      characteristics: u32(bytes, at + 36),
      headerOffset: at,
    });
  }
  return {
    bytes,
    format: plus ? 'PE32+' : 'PE32',
    machine,
    timeDateStamp,
    peOffset,
    optionalHeaderOffset,
    sizeOfOptionalHeader,
    majorImageVersion: u16(bytes, oh + 44),
    sectionAlignment: u32(bytes, oh + 32),
    fileAlignment: u32(bytes, oh + 36),
    sizeOfImage: u32(bytes, oh + 56),
    sizeOfHeaders,
    checksum: u32(bytes, checksumOffset),
    subsystem: u16(bytes, oh + 68),
    checksumOffset,
    numberOfRvaAndSizes,
    securityDirectoryOffset,
    certificateTable,
    sectionTableOffset,
    sections,
  };
}

/**
 * A section's bytes as the loader maps them: SizeOfRawData bytes from the file, cut or zero-filled
 * to VirtualSize (PE spec: "If this value is greater than SizeOfRawData, the section is
 * zero-padded"). This is what systemd-stub hashes, since it reads sections from the loaded image.
 */
export function sectionMemory(pe: PeFile, section: PeSection): Uint8Array {
  const fromFile = Math.min(section.virtualSize, section.sizeOfRawData);
  need(pe.bytes, section.pointerToRawData, fromFile, `section ${JSON.stringify(section.name)}`);
  const raw = pe.bytes.subarray(section.pointerToRawData, section.pointerToRawData + fromFile);
  if (fromFile === section.virtualSize) return raw;
  if (section.virtualSize - fromFile > MAX_ZERO_FILLED) fail('section_invalid', `section ${JSON.stringify(section.name)} would need over 64 MiB of zero fill past its file data`, { virtualSize: section.virtualSize });
  const out = new Uint8Array(section.virtualSize);
  out.set(raw);
  return out;
}

/** The standard PE image checksum (the one `imagehlp!CheckSumMappedFile` computes). */
export function peChecksum(bytes: Uint8Array, checksumOffset: number): number {
  let sum = 0;
  const words = bytes.length >>> 1;
  for (let i = 0; i < words; i++) {
    const at = i * 2;
    if (at === checksumOffset || at === checksumOffset + 2) continue;
    sum += bytes[at] | (bytes[at + 1] << 8);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (bytes.length & 1) {
    sum += bytes[bytes.length - 1];
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum + bytes.length) >>> 0;
}
