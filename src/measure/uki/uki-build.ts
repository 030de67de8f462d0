import { concatBytes, utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { parsePe, peChecksum, putU16, putU32, SECTION_HEADER_SIZE, u32, type PeFile } from '../pe/pe-file.ts';

/**
 * Build a UKI the way systemd's ukify does (src/ukify/ukify.py, pe_add_sections): every payload
 * is appended as a new PE section after the stub's last one —
 *   header     in the free space after the section table (must fit before SizeOfHeaders);
 *   file data  at the end of the file rounded up to FileAlignment, SizeOfRawData rounded up too;
 *   memory     VirtualAddress = previous section's VirtualAddress + VirtualSize rounded up to
 *              SectionAlignment, VirtualSize = exact payload length;
 *   flags      MEM_READ plus CNT_CODE for .linux, CNT_INITIALIZED_DATA otherwise;
 * then SizeOfImage is recomputed and the PE checksum written. Nothing depends on the clock or the
 * machine (the stub's own TimeDateStamp is kept), so the same inputs give the same bytes.
 * ukify's order is kept: .osrel .cmdline .dtb .uname .splash .pcrpkey .initrd, then .linux last
 * ("to leave breathing room for decompression"), then .pcrsig.
 */

export interface UkiInputs {
  stub: Uint8Array;
  linux: Uint8Array;
  initrd?: Uint8Array;
  /** Kernel command line, written as given (UTF-8, no NUL added). */
  cmdline?: string;
  osRelease?: Uint8Array | string;
  uname?: string;
  splash?: Uint8Array;
  dtb?: Uint8Array;
  pcrpkey?: Uint8Array | string;
  pcrsig?: Uint8Array | string;
  /** Further sections, appended before .linux in the given order. */
  extra?: { name: string; data: Uint8Array }[];
}

const IMAGE_SCN_CNT_CODE = 0x00000020;
const IMAGE_SCN_CNT_INITIALIZED_DATA = 0x00000040;
const IMAGE_SCN_MEM_READ = 0x40000000;

function fail(code: string, message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(`uki.${code}`, `UKI build: ${message}`, details);
}

const roundUp = (value: number, alignment: number): number => Math.ceil(value / alignment) * alignment;

function bytesOf(value: Uint8Array | string | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? utf8.encode(value) : value;
}

/** The sections in the order ukify writes them; absent or empty inputs are left out. */
export function ukiSectionList(inputs: UkiInputs): { name: string; data: Uint8Array }[] {
  const ordered: [string, Uint8Array | undefined][] = [
    ['.osrel', bytesOf(inputs.osRelease)],
    ['.cmdline', bytesOf(inputs.cmdline)],
    ['.dtb', inputs.dtb],
    ['.uname', bytesOf(inputs.uname)],
    ['.splash', inputs.splash],
    ['.pcrpkey', bytesOf(inputs.pcrpkey)],
    ['.initrd', inputs.initrd],
    ...(inputs.extra ?? []).map((s): [string, Uint8Array] => [s.name, s.data]),
    ['.linux', inputs.linux],
    ['.pcrsig', bytesOf(inputs.pcrsig)],
  ];
  return ordered.filter((entry): entry is [string, Uint8Array] => entry[1] !== undefined && entry[1].length > 0).map(([name, data]) => ({ name, data }));
}

function checkStub(stub: PeFile): void {
  if (stub.certificateTable.size !== 0) fail('stub_signed', 'the stub is signed; a signature would not cover the added sections (sign the UKI instead)');
  if (stub.sections.length === 0) fail('stub_invalid', 'the stub has no sections');
  const { fileAlignment, sectionAlignment } = stub;
  const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (!isPowerOfTwo(fileAlignment) || !isPowerOfTwo(sectionAlignment) || fileAlignment > 0x10000 || sectionAlignment > 0x200000) {
    fail('stub_invalid', 'the stub has invalid alignments', { fileAlignment, sectionAlignment });
  }
  for (const s of stub.sections) {
    if (s.sizeOfRawData > 0 && (s.pointerToRawData % fileAlignment !== 0 || s.sizeOfRawData % fileAlignment !== 0)) {
      // ukify re-pads such (stripped) stubs; Sigil asks for a well-formed stub instead.
      fail('stub_unaligned', `stub section ${JSON.stringify(s.name)} is not aligned to FileAlignment`, { section: s.name });
    }
    if (s.pointerToRawData + s.sizeOfRawData > stub.bytes.length) fail('stub_invalid', `stub section ${JSON.stringify(s.name)} lies outside the file`);
  }
}

export function buildUki(inputs: UkiInputs): Uint8Array {
  const stub = parsePe(inputs.stub);
  checkStub(stub);
  const sections = ukiSectionList(inputs);
  const names = new Set(stub.sections.map((s) => s.name));
  for (const { name } of sections) {
    if (!/^\.[\x21-\x7e]{1,7}$/.test(name)) fail('section_name_invalid', `section name ${JSON.stringify(name)} must be ".", then 1-7 printable ASCII characters`);
    if (names.has(name)) fail('section_exists', `section ${name} is already present (in the stub or twice in the inputs)`, { section: name });
    names.add(name);
  }

  let body = inputs.stub;
  // Drop a COFF symbol table left at the very end of an unstripped stub, as ukify does.
  const coff = stub.peOffset + 4;
  const symbolTable = u32(body, coff + 8);
  if (symbolTable !== 0) {
    const symbolsSize = 18 * u32(body, coff + 12);
    const stringsSize = symbolTable + symbolsSize + 4 <= body.length ? u32(body, symbolTable + symbolsSize) : 0;
    if (symbolTable + symbolsSize + stringsSize === body.length) body = body.subarray(0, symbolTable);
  }

  const { fileAlignment, sectionAlignment } = stub;
  const firstData = Math.min(...stub.sections.filter((s) => s.sizeOfRawData > 0).map((s) => s.pointerToRawData), body.length);
  const sizeOfHeaders = Math.min(roundUp(stub.sizeOfHeaders, fileAlignment), firstData);
  const tableEnd = stub.sectionTableOffset + (stub.sections.length + sections.length) * SECTION_HEADER_SIZE;
  if (tableEnd > sizeOfHeaders) {
    fail('header_space', `the stub's headers have room for ${Math.floor((sizeOfHeaders - stub.sectionTableOffset) / SECTION_HEADER_SIZE) - stub.sections.length} more section(s), ${sections.length} needed`, { sizeOfHeaders, needed: tableEnd });
  }

  const last = stub.sections[stub.sections.length - 1];
  let virtualEnd = last.virtualAddress + last.virtualSize;
  let fileEnd = body.length;
  let initializedData = u32(body, stub.optionalHeaderOffset + 8);
  const headers: Uint8Array[] = [];
  const payload: Uint8Array[] = [];
  for (const { name, data } of sections) {
    const pointerToRawData = roundUp(fileEnd, fileAlignment);
    const sizeOfRawData = roundUp(data.length, fileAlignment);
    const virtualAddress = roundUp(virtualEnd, sectionAlignment);
    const header = new Uint8Array(SECTION_HEADER_SIZE);
    for (let i = 0; i < name.length; i++) header[i] = name.charCodeAt(i);
    putU32(header, 8, data.length);
    putU32(header, 12, virtualAddress);
    putU32(header, 16, sizeOfRawData);
    putU32(header, 20, pointerToRawData);
    putU32(header, 36, IMAGE_SCN_MEM_READ | (name === '.linux' ? IMAGE_SCN_CNT_CODE : IMAGE_SCN_CNT_INITIALIZED_DATA));
    headers.push(header);
    payload.push(new Uint8Array(pointerToRawData - fileEnd), data, new Uint8Array(sizeOfRawData - data.length));
    fileEnd = pointerToRawData + sizeOfRawData;
    virtualEnd = virtualAddress + data.length;
    initializedData = (initializedData + data.length) >>> 0;
    if (virtualEnd > 0xffffffff || fileEnd > 0xffffffff) fail('too_large', 'the UKI would exceed the 4 GiB PE limit');
  }

  const out = concatBytes(body, ...payload);
  out.set(concatBytes(...headers), stub.sectionTableOffset + stub.sections.length * SECTION_HEADER_SIZE);
  putU16(out, coff + 2, stub.sections.length + sections.length);
  if (symbolTable !== 0 && body.length !== inputs.stub.length) {
    putU32(out, coff + 8, 0);
    putU32(out, coff + 12, 0);
  }
  const oh = stub.optionalHeaderOffset;
  putU32(out, oh + 8, initializedData);
  putU32(out, oh + 56, roundUp(virtualEnd, sectionAlignment));
  putU32(out, oh + 60, sizeOfHeaders);
  putU32(out, stub.checksumOffset, 0);
  putU32(out, stub.checksumOffset, peChecksum(out, stub.checksumOffset));
  return out;
}
