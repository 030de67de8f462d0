/**
 * Parameters for reading an existing verity device (verify, VerityReader, open): from the
 * superblock in the hash file, or, without one, from the caller (as `veritysetup verify
 * --no-superblock` takes them from its options). The root hash always comes from the caller.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { SigilError } from '../../core/errors.ts';
import { fromHex } from '../../core/hex.ts';
import { SUPERBLOCK_SIZE, VERITY_DEFAULTS, VERITY_HASHES, verityGeometry, type VerityGeometry, type VerityHash, type VerityParams } from './params.ts';
import { parseSuperblock } from './superblock.ts';

export interface OpenOptions {
  /** Default true: read the parameters from the superblock at `hashOffset`. */
  superblock?: boolean;
  hashOffset?: number;
  /** Without a superblock: the parameters used at format time. */
  hash?: VerityHash;
  dataBlockSize?: number;
  hashBlockSize?: number;
  dataBlocks?: number;
  salt?: Uint8Array;
}

export interface OpenedParams {
  params: VerityParams;
  geometry: VerityGeometry;
  rootHash: Uint8Array;
  uuid: string | undefined;
}

function readAt(path: string, position: number, length: number): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new SigilError('verity.io', `cannot open ${path}`, { path }, { cause: error });
  }
  try {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return out.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

/**
 * Bytes of a data file or block device. stat() gives 0 for a block device, so its size comes
 * from sysfs (/sys/dev/block/<major>:<minor>/size, in 512-byte sectors), as BLKGETSIZE64 would.
 */
export function dataSizeOf(path: string): number {
  let stats;
  try {
    stats = statSync(path, { bigint: true });
  } catch (error) {
    throw new SigilError('verity.io', `cannot read ${path}`, { path }, { cause: error });
  }
  if (stats.isFile()) return Number(stats.size);
  if (!stats.isBlockDevice()) throw new SigilError('verity.io', `${path} is neither a file nor a block device`, { path });
  const dev = stats.rdev; // glibc's dev_t encoding
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  try {
    return Number(readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'utf8').trim()) * 512;
  } catch (error) {
    throw new SigilError('verity.io', `cannot find the size of block device ${path}`, { path }, { cause: error });
  }
}

export function parseRootHash(root: string | Uint8Array, hash: VerityHash): Uint8Array {
  const bytes = typeof root === 'string' ? fromHex(root.trim()) : root;
  const expected = VERITY_HASHES[hash].digestSize;
  if (bytes.length !== expected) throw new SigilError('verity.root_hash_invalid', `a ${hash} root hash has ${expected} bytes, not ${bytes.length}`, { expected, length: bytes.length });
  return bytes;
}

export function openParams(dataSize: number, hashPath: string, root: string | Uint8Array, options: OpenOptions = {}): OpenedParams {
  const hashOffset = options.hashOffset ?? 0;
  let params: VerityParams;
  let uuid: string | undefined;
  if (options.superblock ?? true) {
    if (hashOffset % 512 !== 0) throw new SigilError('verity.params_invalid', `hash offset ${hashOffset} is not a multiple of 512`, { hashOffset });
    const sb = parseSuperblock(readAt(hashPath, hashOffset, SUPERBLOCK_SIZE));
    params = { hash: sb.hash, dataBlockSize: sb.dataBlockSize, hashBlockSize: sb.hashBlockSize, dataBlocks: sb.dataBlocks, salt: sb.salt, superblock: true, hashOffset };
    uuid = sb.uuid;
  } else {
    if (!options.salt) throw new SigilError('verity.params_invalid', 'without a superblock the salt must be given (an empty salt for none)');
    const dataBlockSize = options.dataBlockSize ?? VERITY_DEFAULTS.blockSize;
    params = {
      hash: options.hash ?? VERITY_DEFAULTS.hash,
      dataBlockSize,
      hashBlockSize: options.hashBlockSize ?? VERITY_DEFAULTS.blockSize,
      dataBlocks: options.dataBlocks ?? Math.floor(dataSize / dataBlockSize),
      salt: options.salt,
      superblock: false,
      hashOffset,
    };
  }
  const geometry = verityGeometry(params);
  if (params.dataBlocks * params.dataBlockSize > dataSize) {
    throw new SigilError('verity.data_short', `the data holds ${dataSize} bytes, fewer than the ${params.dataBlocks} blocks the tree covers`, { dataSize, dataBlocks: params.dataBlocks });
  }
  return { params, geometry, rootHash: parseRootHash(root, params.hash), uuid };
}

export { readAt };
