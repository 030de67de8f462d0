/**
 * The 512-byte verity superblock cryptsetup writes at the start of the hash area
 * (lib/verity/verity.c `struct verity_sb`; https://gitlab.com/cryptsetup/cryptsetup/wikis/DMVerity).
 * Little-endian:
 *   0  signature[8]   "verity\0\0"
 *   8  version u32    1
 *  12  hash_type u32  0 = Chrome OS, 1 = normal
 *  16  uuid[16]
 *  32  algorithm[32]  NUL-padded hash name ("sha256")
 *  64  data_block_size u32
 *  68  hash_block_size u32
 *  72  data_blocks u64
 *  80  salt_size u16
 *  82  _pad1[6]
 *  88  salt[256]
 * 344  _pad2[168]
 */
import { SigilError } from '../../core/errors.ts';
import { fromHex, toHex } from '../../core/hex.ts';
import { checkBlockSize, isVerityHash, MAX_SALT_SIZE, SUPERBLOCK_SIZE, type VerityHash } from './params.ts';

const SIGNATURE = [0x76, 0x65, 0x72, 0x69, 0x74, 0x79, 0, 0]; // "verity\0\0"

export interface VeritySuperblock {
  hashType: number;
  uuid: string;
  hash: VerityHash;
  dataBlockSize: number;
  hashBlockSize: number;
  dataBlocks: number;
  salt: Uint8Array;
}

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('verity.superblock_invalid', `verity superblock: ${message}`, details);
}

/** "12345678-1234-1234-1234-123456789abc" → 16 bytes (libuuid's uuid_parse accepts only this form). */
export function uuidToBytes(uuid: string): Uint8Array {
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(uuid)) {
    throw new SigilError('verity.uuid_invalid', `"${uuid}" is not a UUID (8-4-4-4-12 hex digits)`, { uuid });
  }
  return fromHex(uuid.replace(/-/g, ''));
}

export function uuidFromBytes(bytes: Uint8Array): string {
  const hex = toHex(bytes);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function encodeSuperblock(sb: VeritySuperblock): Uint8Array {
  if (sb.salt.length > MAX_SALT_SIZE) invalid(`salt of ${sb.salt.length} bytes exceeds ${MAX_SALT_SIZE}`);
  const out = new Uint8Array(SUPERBLOCK_SIZE);
  const view = new DataView(out.buffer);
  out.set(SIGNATURE, 0);
  view.setUint32(8, 1, true);
  view.setUint32(12, sb.hashType, true);
  out.set(uuidToBytes(sb.uuid), 16);
  out.set(new TextEncoder().encode(sb.hash), 32);
  view.setUint32(64, sb.dataBlockSize, true);
  view.setUint32(68, sb.hashBlockSize, true);
  view.setBigUint64(72, BigInt(sb.dataBlocks), true);
  view.setUint16(80, sb.salt.length, true);
  out.set(sb.salt, 88);
  return out;
}

/** Parse untrusted superblock bytes; anything malformed is a SigilError('verity.superblock_invalid'). */
export function parseSuperblock(bytes: Uint8Array): VeritySuperblock {
  if (bytes.length < SUPERBLOCK_SIZE) invalid(`needs ${SUPERBLOCK_SIZE} bytes, has ${bytes.length}`, { length: bytes.length });
  const view = new DataView(bytes.buffer, bytes.byteOffset, SUPERBLOCK_SIZE);
  for (let i = 0; i < SIGNATURE.length; i++) if (bytes[i] !== SIGNATURE[i]) invalid('no "verity" signature (not a verity hash device, or wrong --hash-offset)');
  const version = view.getUint32(8, true);
  if (version !== 1) invalid(`unsupported version ${version}`, { version });
  const hashType = view.getUint32(12, true);
  if (hashType !== 1) invalid(`hash type ${hashType} is not supported (only format 1)`, { hashType });
  const nameBytes = bytes.subarray(32, 64);
  const end = nameBytes.indexOf(0);
  const name = String.fromCharCode(...nameBytes.subarray(0, end === -1 ? 32 : end));
  if (!isVerityHash(name)) invalid(`hash algorithm "${name}" is not supported`, { algorithm: name });
  const dataBlockSize = view.getUint32(64, true);
  const hashBlockSize = view.getUint32(68, true);
  try {
    checkBlockSize(dataBlockSize, 'dataBlockSize');
    checkBlockSize(hashBlockSize, 'hashBlockSize');
  } catch (error) {
    invalid((error as Error).message, { dataBlockSize, hashBlockSize });
  }
  const dataBlocksBig = view.getBigUint64(72, true);
  if (dataBlocksBig === 0n || dataBlocksBig * BigInt(dataBlockSize) > BigInt(Number.MAX_SAFE_INTEGER)) invalid(`data block count ${dataBlocksBig} is out of range`, { dataBlocks: String(dataBlocksBig) });
  const saltSize = view.getUint16(80, true);
  if (saltSize > MAX_SALT_SIZE) invalid(`salt size ${saltSize} exceeds ${MAX_SALT_SIZE}`, { saltSize });
  return {
    hashType,
    uuid: uuidFromBytes(bytes.subarray(16, 32)),
    hash: name,
    dataBlockSize,
    hashBlockSize,
    dataBlocks: Number(dataBlocksBig),
    salt: bytes.slice(88, 88 + saltSize),
  };
}
