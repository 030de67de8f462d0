/**
 * dm-verity parameters and the tree geometry that follows from them, computed exactly as
 * cryptsetup does (lib/verity/verity_hash.c `hash_levels`, lib/verity/verity.c
 * `VERITY_hash_offset_block`), so our hash file is byte-identical to `veritysetup format`:
 *
 * - a hash block holds `2^floor(log2(hashBlockSize / digestSize))` digests, each in a slot of
 *   `2^ceil(log2(digestSize))` bytes; unused bytes are zero;
 * - level 0 holds the digests of the data blocks, level i+1 those of level i's hash blocks; the
 *   number of levels is the smallest n with (dataBlocks - 1) >> (n * bits) == 0;
 * - in the hash file the top level comes first, level 0 last;
 * - the tree starts at hash block `ceil((hashOffset + 512) / hashBlockSize)` after a superblock at
 *   `hashOffset`, or at `floor(hashOffset / hashBlockSize)` without one;
 * - format 1 hashes `H(salt ‖ block)`; the root hash is the digest of the single top-level block
 *   (or of the only data block when there is just one).
 */
import { SigilError } from '../../core/errors.ts';

export type VerityHash = 'sha256' | 'sha512';

export const VERITY_HASHES: Record<VerityHash, { digestSize: number }> = {
  sha256: { digestSize: 32 },
  sha512: { digestSize: 64 },
};

/** veritysetup's compiled-in defaults (`veritysetup --help`). */
export const VERITY_DEFAULTS = { hash: 'sha256' as VerityHash, blockSize: 4096, saltSize: 32 };

export const SUPERBLOCK_SIZE = 512;
export const MAX_SALT_SIZE = 256;

export interface VerityParams {
  hash: VerityHash;
  dataBlockSize: number;
  hashBlockSize: number;
  /** Data blocks covered; the data file may be longer (its tail is then not protected). */
  dataBlocks: number;
  salt: Uint8Array;
  /** Write or read a superblock at `hashOffset` in the hash file. */
  superblock: boolean;
  /** Byte offset in the hash file of the superblock (or of the tree, without a superblock). */
  hashOffset: number;
}

export interface VerityGeometry {
  digestSize: number;
  /** Bytes one digest occupies in a hash block (the next power of two). */
  digestSlot: number;
  hashPerBlock: number;
  levels: number;
  /** levelStart[i]: absolute hash-block index in the hash file of level i's first block. */
  levelStart: number[];
  /** levelBlocks[i]: hash blocks in level i. */
  levelBlocks: number[];
  /** Absolute hash-block index of the tree's first block. */
  treeStart: number;
  /** Hash blocks in the tree (veritysetup's "Hash blocks"). */
  hashBlocks: number;
  /** Bytes from the start of the hash file to the end of the tree. */
  hashFileEnd: number;
}

export function isVerityHash(name: string): name is VerityHash {
  return Object.hasOwn(VERITY_HASHES, name);
}

function fail(message: string, details: Record<string, unknown>): never {
  throw new SigilError('verity.params_invalid', message, details);
}

/** cryptsetup's VERITY_BLOCK_SIZE_OK: a power of two from 512 bytes to 512 KiB. */
export function checkBlockSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 512 || size > 512 * 1024 || (size & (size - 1)) !== 0) {
    fail(`${what} ${size} is not a power of two from 512 to 524288 bytes`, { [what]: size });
  }
}

export function validateParams(params: VerityParams): void {
  if (!isVerityHash(params.hash)) fail(`hash "${params.hash}" is not supported (sha256, sha512)`, { hash: params.hash });
  checkBlockSize(params.dataBlockSize, 'dataBlockSize');
  checkBlockSize(params.hashBlockSize, 'hashBlockSize');
  if (params.salt.length > MAX_SALT_SIZE) fail(`salt of ${params.salt.length} bytes exceeds ${MAX_SALT_SIZE}`, { saltSize: params.salt.length });
  if (!Number.isSafeInteger(params.hashOffset) || params.hashOffset < 0 || params.hashOffset % 512 !== 0) {
    fail(`hash offset ${params.hashOffset} is not a multiple of 512`, { hashOffset: params.hashOffset });
  }
  if (!Number.isSafeInteger(params.dataBlocks) || params.dataBlocks < 1) {
    throw new SigilError('verity.data_too_small', 'the data holds no whole data block (veritysetup: "Hash area overflow")', { dataBlocks: params.dataBlocks, dataBlockSize: params.dataBlockSize });
  }
  if (params.dataBlocks * params.dataBlockSize > Number.MAX_SAFE_INTEGER) fail('data size overflows', { dataBlocks: params.dataBlocks });
}

function bitsDown(value: number): number {
  let bits = 0;
  while (value >> (bits + 1) >= 1 && bits < 31) bits++;
  return bits;
}

function nextPowerOfTwo(value: number): number {
  let p = 1;
  while (p < value) p *= 2;
  return p;
}

/** Exact integer ceil(dataBlocks / 2^shift) without 32-bit shifts (dataBlocks can exceed 2^31). */
function ceilShift(value: number, shift: number): number {
  const divisor = 2 ** shift;
  return Math.ceil(value / divisor);
}

export function verityGeometry(params: VerityParams): VerityGeometry {
  validateParams(params);
  const digestSize = VERITY_HASHES[params.hash].digestSize;
  const digestSlot = nextPowerOfTwo(digestSize);
  const bits = bitsDown(params.hashBlockSize / digestSize);
  const hashPerBlock = 2 ** bits;
  let levels = 0;
  while (bits * levels < 64 && Math.floor((params.dataBlocks - 1) / 2 ** (bits * levels)) > 0) levels++;
  const treeStart = params.superblock
    ? Math.ceil((params.hashOffset + SUPERBLOCK_SIZE) / params.hashBlockSize)
    : Math.floor(params.hashOffset / params.hashBlockSize);
  const levelStart = new Array<number>(levels);
  const levelBlocks = new Array<number>(levels);
  let position = treeStart;
  for (let i = levels - 1; i >= 0; i--) {
    levelStart[i] = position;
    levelBlocks[i] = ceilShift(params.dataBlocks, (i + 1) * bits);
    position += levelBlocks[i];
  }
  const hashBlocks = position - treeStart;
  return { digestSize, digestSlot, hashPerBlock, levels, levelStart, levelBlocks, treeStart, hashBlocks, hashFileEnd: position * params.hashBlockSize };
}

/** Byte offset, within level `level`'s area, of the digest of child `index` (data block or lower hash block). */
export function digestOffsetInLevel(geometry: VerityGeometry, hashBlockSize: number, index: number): number {
  return Math.floor(index / geometry.hashPerBlock) * hashBlockSize + (index % geometry.hashPerBlock) * geometry.digestSlot;
}
