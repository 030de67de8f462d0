import { Reader } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { readGuid, u16le, u32le, u64le, utf16le } from './le.ts';

/**
 * UEFI variable measurements (TCG PC Client PFP 1.06, 10.2.6 UEFI_VARIABLE_DATA):
 *   0  VariableName        EFI_GUID (16)
 *  16  UnicodeNameLength   u64 (CHAR16 units, no NUL)
 *  24  VariableDataLength  u64
 *  32  UnicodeName[UnicodeNameLength] CHAR16, then VariableData[VariableDataLength]
 *
 * Secure Boot databases hold EFI_SIGNATURE_LISTs (UEFI 2.10, 32.4.1):
 *   0  SignatureType GUID | 16  SignatureListSize u32 | 20  SignatureHeaderSize u32
 *  24  SignatureSize u32  | 28  SignatureHeader[SignatureHeaderSize]
 *   .  Signatures[]: EFI_SIGNATURE_DATA { SignatureOwner GUID, SignatureData[SignatureSize-16] }
 *
 * Boot#### variables hold an EFI_LOAD_OPTION (UEFI 2.10, 3.1.3):
 *   0  Attributes u32 | 4  FilePathListLength u16 | 6  Description CHAR16[] NUL-terminated
 *   .  FilePathList[FilePathListLength] | OptionalData[]
 */
export const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
export const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
export const SHIM_LOCK_GUID = '605dab50-e046-4300-abb6-3dd810dd8b23';

export const EFI_CERT_TYPES: Record<string, { name: string; size?: number }> = {
  'c1c41626-504c-4092-aca9-41f936934328': { name: 'sha256', size: 32 },
  '826ca512-cf10-4ac9-b187-be01496631bd': { name: 'sha1', size: 20 },
  '0b6e5233-a65c-44c9-9407-d9ab83bfc8bd': { name: 'sha224', size: 28 },
  'ff3e5307-9fd0-48c9-85f1-8ad56c701e01': { name: 'sha384', size: 48 },
  '093e0fae-a6c4-4f50-9f1b-d41e2b89c19a': { name: 'sha512', size: 64 },
  'a5c059a1-94e4-4aa7-87b5-ab155c2bf072': { name: 'x509' },
  '3c5766e8-269c-4e34-aa14-ed776e85b3b6': { name: 'rsa2048', size: 256 },
  '3bd2a492-96c0-4079-b420-fcf98ef103ed': { name: 'x509-sha256', size: 48 },
  '7076876e-80c2-4ee6-aad2-28b349a6865b': { name: 'x509-sha384', size: 64 },
  '446dbf63-2502-4cda-bcfa-2465d2b0fe9d': { name: 'x509-sha512', size: 80 },
};

export interface UefiVariableData {
  guid: string;
  name: string;
  data: Uint8Array;
  /** Bytes after the structure (only shim's padded authority events have any; see quirks.ts). */
  trailing: number;
}

const CODE = 'eventlog.efi_variable_invalid';

export function parseUefiVariableData(bytes: Uint8Array): UefiVariableData {
  const r = new Reader(bytes, { errorCode: CODE, what: 'UEFI_VARIABLE_DATA' });
  const guid = readGuid(r);
  const nameLength = u64le(r);
  const dataLength = u64le(r);
  if (nameLength * 2n + dataLength > BigInt(r.remaining)) r.fail(`name and data lengths exceed the event (${r.remaining} bytes left)`);
  const name = utf16le(r.borrow(Number(nameLength) * 2));
  // A view, not a copy: the event data it lies in was already copied out of the log when parsed.
  const data = r.borrow(Number(dataLength));
  return { guid, name, data, trailing: r.remaining };
}

export interface SignatureEntry {
  owner: string;
  type: string;
  data: Uint8Array;
}

export interface SignatureList {
  type: string;
  typeGuid: string;
  entries: SignatureEntry[];
}

/**
 * Bounded by the variable size: each list and entry consumes at least 16 bytes. Entry data are
 * views of `bytes` (variable data inside an already-copied event), not copies.
 */
export function parseSignatureLists(bytes: Uint8Array): SignatureList[] {
  const r = new Reader(bytes, { errorCode: 'eventlog.signature_list_invalid', what: 'EFI_SIGNATURE_LIST' });
  const lists: SignatureList[] = [];
  while (r.remaining > 0) {
    const typeGuid = readGuid(r);
    const listSize = u32le(r);
    const headerSize = u32le(r);
    const signatureSize = u32le(r);
    if (listSize < 28 || listSize - 28 > r.remaining) r.fail(`list size ${listSize} does not fit`, { listSize });
    if (signatureSize < 16) r.fail(`signature size ${signatureSize} is smaller than its owner GUID`, { signatureSize });
    const body = listSize - 28;
    if (headerSize > body || (body - headerSize) % signatureSize !== 0) r.fail('the signatures do not fill the list', { headerSize, signatureSize, listSize });
    r.skip(headerSize);
    const known = EFI_CERT_TYPES[typeGuid];
    const type = known?.name ?? typeGuid;
    if (known?.size !== undefined && signatureSize - 16 !== known.size) r.fail(`${type} signatures must be ${known.size} bytes, not ${signatureSize - 16}`);
    const entries: SignatureEntry[] = [];
    for (let i = 0; i < (body - headerSize) / signatureSize; i++) entries.push({ owner: readGuid(r), type, data: r.borrow(signatureSize - 16) });
    lists.push({ type, typeGuid, entries });
  }
  return lists;
}

export interface LoadOption {
  attributes: number;
  description: string;
  filePathList: Uint8Array;
  optionalData: Uint8Array;
}

export function parseLoadOption(bytes: Uint8Array): LoadOption {
  const r = new Reader(bytes, { errorCode: 'eventlog.load_option_invalid', what: 'EFI_LOAD_OPTION' });
  const attributes = u32le(r);
  const pathLength = u16le(r);
  let description = '';
  for (;;) {
    const unit = u16le(r);
    if (unit === 0) break;
    description += String.fromCharCode(unit);
  }
  const filePathList = r.take(pathLength);
  return { attributes, description, filePathList, optionalData: r.take(r.remaining) };
}

/** BootOrder: an array of u16 option numbers. */
export function parseBootOrder(bytes: Uint8Array): number[] {
  if (bytes.length % 2 !== 0) throw new SigilError('eventlog.boot_order_invalid', `BootOrder has an odd length ${bytes.length}`);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 2) out.push(bytes[i] | (bytes[i + 1] << 8));
  return out;
}
