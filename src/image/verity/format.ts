/**
 * `veritysetup format` in TypeScript: the same hash file, byte for byte, and the same report.
 * Behaviours copied on purpose (checked against cryptsetup 2.6.1):
 * - the hash file is created (mode 0600) when missing and never truncated: with the tree appended
 *   to the data file (same path, --hash-offset) the data must survive;
 * - only the 512 superblock bytes and the tree blocks are written; bytes in between keep their value
 *   (but the file grows to the end of the superblock's 4 KiB page, as cryptsetup's blockwise write does);
 * - data blocks default to floor(data size / data block size), so a tail shorter than a block is
 *   not covered (reported as `uncoveredBytes`); no whole block is an error ("Hash area overflow");
 * - the default salt is 32 random bytes and the default UUID random (pass both for reproducible output).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import { dataSizeOf } from './open-params.ts';
import { VERITY_DEFAULTS, verityGeometry, type VerityGeometry, type VerityHash, type VerityParams } from './params.ts';
import { encodeSuperblock, uuidToBytes } from './superblock.ts';
import { buildTree, type BuildOptions } from './tree-builder.ts';

export interface FormatOptions extends BuildOptions {
  hash?: VerityHash;
  dataBlockSize?: number;
  hashBlockSize?: number;
  /** Default: floor(data file size / dataBlockSize). */
  dataBlocks?: number;
  /** Default: 32 random bytes; an empty array means no salt (veritysetup `--salt -`). */
  salt?: Uint8Array;
  /** Default true. */
  superblock?: boolean;
  hashOffset?: number;
  /** Default: random (superblock only). */
  uuid?: string;
}

export interface FormatResult {
  params: VerityParams;
  geometry: VerityGeometry;
  rootHash: Uint8Array;
  /** The superblock's UUID, or undefined without a superblock. */
  uuid: string | undefined;
  /** Bytes of the data file after the last covered block (not protected by the tree). */
  uncoveredBytes: number;
}

/** cryptsetup's crypt_getpagesize() on x86-64 and arm64 with 4 KiB pages. */
const PAGE_SIZE = 4096;

function sameFile(a: string, b: string): boolean {
  try {
    const sa = statSync(a);
    const sb = statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

export function paramsForData(dataSize: number, options: FormatOptions): VerityParams {
  const dataBlockSize = options.dataBlockSize ?? VERITY_DEFAULTS.blockSize;
  const params: VerityParams = {
    hash: options.hash ?? VERITY_DEFAULTS.hash,
    dataBlockSize,
    hashBlockSize: options.hashBlockSize ?? VERITY_DEFAULTS.blockSize,
    dataBlocks: options.dataBlocks ?? Math.floor(dataSize / dataBlockSize),
    salt: options.salt ?? new Uint8Array(randomBytes(VERITY_DEFAULTS.saltSize)),
    superblock: options.superblock ?? true,
    hashOffset: options.hashOffset ?? 0,
  };
  verityGeometry(params); // validates
  return params;
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}

export async function formatVerity(dataPath: string, hashPath: string, options: FormatOptions = {}): Promise<FormatResult> {
  const dataSize = dataSizeOf(dataPath);
  const params = paramsForData(dataSize, options);
  const uuid = params.superblock ? (options.uuid ?? randomUUID()) : undefined;
  if (uuid !== undefined) uuidToBytes(uuid); // refuse a malformed UUID before any work
  const dataEnd = params.dataBlocks * params.dataBlockSize;
  if (dataEnd > dataSize) throw new SigilError('verity.data_short', `the data file holds ${dataSize} bytes, fewer than ${params.dataBlocks} blocks`, { dataSize, dataEnd });
  if (sameFile(dataPath, hashPath) && params.hashOffset < dataEnd) {
    throw new SigilError('verity.hash_overlaps_data', 'data area overlaps with hash area', { hashOffset: params.hashOffset, dataEnd });
  }

  const tree = await buildTree(dataPath, params, options);
  let fd: number;
  try {
    fd = openSync(hashPath, constants.O_WRONLY | constants.O_CREAT, 0o600);
  } catch (error) {
    throw new SigilError('verity.io', `cannot create hash image ${hashPath} for writing`, { path: hashPath }, { cause: error });
  }
  try {
    if (!fstatSync(fd).isFile() && !fstatSync(fd).isBlockDevice()) throw new SigilError('verity.io', `${hashPath} is not a file or block device`, { path: hashPath });
    const { geometry } = tree;
    for (let i = 0; i < geometry.levels; i++) writeAll(fd, tree.levels[i], geometry.levelStart[i] * params.hashBlockSize);
    if (uuid !== undefined) {
      const superblock = encodeSuperblock({ hashType: 1, uuid, hash: params.hash, dataBlockSize: params.dataBlockSize, hashBlockSize: params.hashBlockSize, dataBlocks: params.dataBlocks, salt: params.salt });
      writeAll(fd, superblock, params.hashOffset);
      // cryptsetup writes the superblock with a read-modify-write of the whole page around it
      // (write_lseek_blockwise, page-sized blocks for regular files), so the file always reaches
      // the end of that page, even when no tree follows (a single data block).
      const pageEnd = Math.floor(params.hashOffset / PAGE_SIZE) * PAGE_SIZE + PAGE_SIZE;
      const stats = fstatSync(fd);
      if (stats.isFile() && stats.size < pageEnd) ftruncateSync(fd, pageEnd);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { params, geometry: tree.geometry, rootHash: tree.rootHash, uuid, uncoveredBytes: dataSize - dataEnd };
}

/** veritysetup's report (lib/setup.c `_verity_dump`), line for line, as printed by `format`. */
export function formatReport(hashPath: string, result: Pick<FormatResult, 'params' | 'geometry' | 'rootHash' | 'uuid'>): string {
  const { params, geometry } = result;
  const lines = [
    `VERITY header information for ${hashPath}`,
    `UUID:            \t${result.uuid ?? ''}`,
    'Hash type:       \t1',
    `Data blocks:     \t${params.dataBlocks}`,
    `Data block size: \t${params.dataBlockSize}`,
    `Hash blocks:     \t${geometry.hashBlocks}`,
    `Hash block size: \t${params.hashBlockSize}`,
    `Hash algorithm:  \t${params.hash}`,
    `Salt:            \t${params.salt.length ? toHex(params.salt) : '-'}`,
    `Root hash:      \t${toHex(result.rootHash)}`,
  ];
  // cryptsetup prints the device size only when the hash area starts at 0 ("we have no idea about offsets").
  if (params.hashOffset === 0) lines.push(`Hash device size: \t${geometry.hashFileEnd} [bytes]`);
  return `${lines.join('\n')}\n`;
}
