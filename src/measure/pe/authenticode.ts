import { SigilError } from '../../core/errors.ts';
import { digest, type HashName } from '../../core/hash.ts';
import { DIRECTORY_SECURITY, parsePe, u16, u32, type PeFile } from './pe-file.ts';

/**
 * The Authenticode PE image hash exactly as UEFI firmware measures an image into PCR 4 (EDK2
 * SecurityPkg Tcg2Dxe MeasurePeImageAndExtend, and DxeImageVerificationLib HashPeImage, which
 * follow the Microsoft "Windows Authenticode Portable Executable Signature Format" steps):
 *   1. hash the headers from 0 to the CheckSum field, skip its 4 bytes;
 *   2. hash on to the Certificate Table entry, skip its 8 bytes (when NumberOfRvaAndSizes has no
 *      such entry, hash straight on), then to SizeOfHeaders;
 *   3. SUM_OF_BYTES_HASHED := SizeOfHeaders; hash every section with SizeOfRawData != 0 in order of
 *      PointerToRawData (a stable sort), adding SizeOfRawData each time;
 *   4. if the file is longer than SUM_OF_BYTES_HASHED, hash the "extra data" from file offset
 *      SUM_OF_BYTES_HASHED up to (file size − Certificate Table size); a file shorter than that
 *      sum is refused, as EDK2 refuses it.
 * No zero padding to a multiple of 8: that is what sbsign and go-uefi do before signing
 * (`padTo8`), not what firmware does to an unsigned file.
 */

export interface AuthenticodeOptions {
  /** Append zero bytes to a multiple of 8 first (sbsign/go-uefi signing convention). Default false. */
  padTo8?: boolean;
  /**
   * Check the attribute certificate table (bounds, WIN_CERTIFICATE lengths) and refuse a malformed
   * one with pe.certificate_*. Default true. Firmware's measurement does not look inside the table;
   * pass false to hash exactly what it would hash even then.
   */
  verifyCertificateTable?: boolean;
}

/** File byte ranges [start, end) that are hashed, in order. */
export type ByteRange = [number, number];

export interface WinCertificate {
  offset: number;
  length: number;
  revision: number;
  certificateType: number;
  /** bCertificate: the PKCS#7 SignedData for WIN_CERT_TYPE_PKCS_SIGNED_DATA (0x0002). */
  certificate: Uint8Array;
}

function fail(code: string, message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(`pe.${code}`, `PE image: ${message}`, details);
}

/**
 * The entries of the attribute certificate table (PE spec "The Attribute Certificate Table"): each
 * WIN_CERTIFICATE is dwLength (u32, including its 8-byte header), wRevision, wCertificateType,
 * bCertificate; entries start on 8-byte boundaries.
 */
export function certificateTable(pe: PeFile): WinCertificate[] {
  const { offset, size } = pe.certificateTable;
  if (size === 0) return [];
  const fileSize = pe.bytes.length;
  if (offset < pe.sizeOfHeaders || offset > fileSize || size > fileSize - offset) {
    fail('certificate_table_out_of_bounds', 'the certificate table lies outside the file', { offset, size, fileSize });
  }
  if (size % 8 !== 0 || offset % 8 !== 0) fail('certificate_table_invalid', 'the certificate table is not 8-byte aligned', { offset, size });
  const out: WinCertificate[] = [];
  let at = offset;
  const end = offset + size;
  while (at < end) {
    if (end - at < 8) fail('certificate_invalid', 'a WIN_CERTIFICATE header is cut short', { at });
    const length = u32(pe.bytes, at);
    if (length < 8 || length > end - at) fail('certificate_invalid', `WIN_CERTIFICATE dwLength ${length} does not fit the table`, { at, length });
    out.push({ offset: at, length, revision: u16(pe.bytes, at + 4), certificateType: u16(pe.bytes, at + 6), certificate: pe.bytes.subarray(at + 8, at + length) });
    at += (length + 7) & ~7;
  }
  return out;
}

/** The byte ranges the Authenticode hash covers (pure: no hashing). */
export function authenticodeRanges(pe: PeFile, options: AuthenticodeOptions = {}): ByteRange[] {
  const fileSize = pe.bytes.length;
  const ranges: ByteRange[] = [[0, pe.checksumOffset]];
  const hasSecurityEntry = pe.numberOfRvaAndSizes > DIRECTORY_SECURITY && pe.securityDirectoryOffset !== undefined;
  if (hasSecurityEntry) {
    ranges.push([pe.checksumOffset + 4, pe.securityDirectoryOffset!]);
    ranges.push([pe.securityDirectoryOffset! + 8, pe.sizeOfHeaders]);
  } else {
    ranges.push([pe.checksumOffset + 4, pe.sizeOfHeaders]);
  }
  let sumOfBytesHashed = pe.sizeOfHeaders;
  // Array.prototype.sort is stable, like EDK2's insertion sort: equal pointers keep table order.
  const sorted = [...pe.sections].sort((a, b) => a.pointerToRawData - b.pointerToRawData);
  for (const section of sorted) {
    if (section.sizeOfRawData === 0) continue;
    const start = section.pointerToRawData;
    const end = start + section.sizeOfRawData;
    if (end > fileSize) {
      fail('section_out_of_bounds', `section ${JSON.stringify(section.name)} raw data lies outside the file`, { pointerToRawData: start, sizeOfRawData: section.sizeOfRawData, fileSize });
    }
    ranges.push([start, end]);
    sumOfBytesHashed += section.sizeOfRawData;
  }
  if (options.verifyCertificateTable !== false && hasSecurityEntry) certificateTable(pe);
  const certificateSize = hasSecurityEntry ? pe.certificateTable.size : 0;
  if (fileSize > sumOfBytesHashed) {
    if (fileSize > certificateSize + sumOfBytesHashed) ranges.push([sumOfBytesHashed, fileSize - certificateSize]);
    else if (fileSize < certificateSize + sumOfBytesHashed) {
      fail('certificate_table_out_of_bounds', 'sections and certificate table together exceed the file', { sumOfBytesHashed, certificateSize, fileSize });
    }
  }
  return ranges;
}

function parts(pe: PeFile, options: AuthenticodeOptions): Uint8Array[] {
  const out = authenticodeRanges(pe, options).map(([start, end]) => pe.bytes.subarray(start, end));
  if (options.padTo8 && pe.bytes.length % 8 !== 0) out.push(new Uint8Array(8 - (pe.bytes.length % 8)));
  return out;
}

function asPe(image: Uint8Array | PeFile): PeFile {
  return image instanceof Uint8Array ? parsePe(image) : image;
}

export async function authenticodeDigest(image: Uint8Array | PeFile, hash: HashName, options: AuthenticodeOptions = {}): Promise<Uint8Array> {
  return digest(hash, ...parts(asPe(image), options));
}

/** Several banks at once, parsing the file once. */
export async function authenticodeDigests<H extends HashName>(image: Uint8Array | PeFile, hashes: readonly H[], options: AuthenticodeOptions = {}): Promise<Record<H, Uint8Array>> {
  const pe = asPe(image);
  const pieces = parts(pe, options);
  const out = {} as Record<H, Uint8Array>;
  for (const hash of hashes) out[hash] = await digest(hash, ...pieces);
  return out;
}
