/**
 * Read a verity-protected device the way the kernel's dm-verity does, without device-mapper:
 * every data block a read touches is hashed and checked against its level-0 digest; that hash
 * block is checked against its parent, and so on up to the root hash. Hash blocks, once verified,
 * are kept (as dm-bufio keeps them), so a read costs one hash per data block plus the tree blocks
 * not yet seen. A mismatch fails exactly the read that touched the block: nothing is cached from
 * a failed check, and other reads go on working. Data blocks are verified on every read unless
 * `checkAtMostOnce` (the kernel's `check_at_most_once`) is set.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import { blockDigest } from './leaf-hasher.ts';
import { dataSizeOf, openParams, type OpenOptions } from './open-params.ts';
import type { VerityGeometry, VerityParams } from './params.ts';

export interface ReaderOptions extends OpenOptions {
  checkAtMostOnce?: boolean;
  /** Verified hash blocks kept at most (default 4096: 16 MiB of 4 KiB blocks). */
  cacheBlocks?: number;
}

function corrupt(message: string, details: Record<string, unknown>): SigilError {
  return new SigilError('verity.block_corrupt', message, details);
}

async function readFully(handle: FileHandle, length: number, position: number, what: string): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) throw new SigilError('verity.io', `${what} ends at ${position + done}, before ${position + length}`, { position: position + done });
    done += bytesRead;
  }
  return out;
}

export class VerityReader {
  readonly params: VerityParams;
  readonly geometry: VerityGeometry;
  readonly rootHash: Uint8Array;
  /** Bytes of verified data (dataBlocks × dataBlockSize). */
  readonly size: number;
  private readonly data: FileHandle;
  private readonly hashFile: FileHandle;
  private readonly verifiedHashBlocks = new Map<number, Buffer>();
  private readonly verifiedDataBlocks: Uint8Array | undefined;
  private readonly cacheBlocks: number;

  private constructor(data: FileHandle, hashFile: FileHandle, params: VerityParams, geometry: VerityGeometry, rootHash: Uint8Array, options: ReaderOptions) {
    this.data = data;
    this.hashFile = hashFile;
    this.params = params;
    this.geometry = geometry;
    this.rootHash = rootHash;
    this.size = params.dataBlocks * params.dataBlockSize;
    this.cacheBlocks = options.cacheBlocks ?? 4096;
    this.verifiedDataBlocks = options.checkAtMostOnce ? new Uint8Array(Math.ceil(params.dataBlocks / 8)) : undefined;
  }

  static async open(dataPath: string, hashPath: string, root: string | Uint8Array, options: ReaderOptions = {}): Promise<VerityReader> {
    const dataSize = dataSizeOf(dataPath);
    const opened = openParams(dataSize, hashPath, root, options);
    const data = await open(dataPath, 'r');
    try {
      const hashFile = await open(hashPath, 'r');
      return new VerityReader(data, hashFile, opened.params, opened.geometry, opened.rootHash, options);
    } catch (error) {
      await data.close();
      throw error;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.data.close(), this.hashFile.close()]);
  }

  /** Read `length` verified bytes at `position`; a read past the end returns fewer bytes. */
  async read(position: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(position) || !Number.isSafeInteger(length) || position < 0 || length < 0) {
      throw new SigilError('verity.read_invalid', `cannot read ${length} bytes at ${position}`, { position, length });
    }
    const end = Math.min(this.size, position + length);
    if (end <= position) return new Uint8Array(0);
    const blockSize = this.params.dataBlockSize;
    const first = Math.floor(position / blockSize);
    const last = Math.floor((end - 1) / blockSize);
    const blocks = await readFully(this.data, (last - first + 1) * blockSize, first * blockSize, 'the data file');
    for (let block = first; block <= last; block++) {
      await this.checkDataBlock(block, blocks.subarray((block - first) * blockSize, (block - first + 1) * blockSize));
    }
    return new Uint8Array(blocks.buffer, blocks.byteOffset + (position - first * blockSize), end - position);
  }

  private async checkDataBlock(block: number, bytes: Uint8Array): Promise<void> {
    const seen = this.verifiedDataBlocks;
    if (seen && seen[block >> 3] & (1 << (block & 7))) return;
    const digest = blockDigest(this.params.hash, this.params.salt, bytes);
    const expected = await this.expectedDigest(0, block);
    if (Buffer.compare(digest, expected) !== 0) {
      throw corrupt(`data block ${block} (bytes ${block * this.params.dataBlockSize}..) does not match the hash tree`, { block, position: block * this.params.dataBlockSize, area: 'data' });
    }
    if (seen) seen[block >> 3] |= 1 << (block & 7);
  }

  /** The verified digest of child `index` stored in `level` (the root hash above the top level). */
  private async expectedDigest(level: number, index: number): Promise<Buffer> {
    const { geometry } = this;
    if (level === geometry.levels) return Buffer.from(this.rootHash);
    const hashBlock = await this.verifiedHashBlock(level, Math.floor(index / geometry.hashPerBlock));
    const at = (index % geometry.hashPerBlock) * geometry.digestSlot;
    return hashBlock.subarray(at, at + geometry.digestSize);
  }

  private async verifiedHashBlock(level: number, index: number): Promise<Buffer> {
    const { geometry, params } = this;
    const absolute = geometry.levelStart[level] + index;
    const cached = this.verifiedHashBlocks.get(absolute);
    if (cached) return cached;
    const bytes = await readFully(this.hashFile, params.hashBlockSize, absolute * params.hashBlockSize, 'the hash file');
    const expected = await this.expectedDigest(level + 1, index);
    if (Buffer.compare(blockDigest(params.hash, params.salt, bytes), expected) !== 0) {
      throw corrupt(`hash block ${index} of level ${level} (hash file bytes ${absolute * params.hashBlockSize}..) does not match ${level + 1 === geometry.levels ? 'the root hash' : 'its parent'}`, {
        level,
        hashBlock: index,
        position: absolute * params.hashBlockSize,
        area: 'hash',
        ...(level + 1 === geometry.levels ? { root: toHex(this.rootHash) } : {}),
      });
    }
    if (this.verifiedHashBlocks.size >= this.cacheBlocks) {
      // Drop the oldest; upper levels are re-read (and re-verified) when needed again.
      const oldest = this.verifiedHashBlocks.keys().next().value;
      if (oldest !== undefined) this.verifiedHashBlocks.delete(oldest);
    }
    this.verifiedHashBlocks.set(absolute, bytes);
    return bytes;
  }

  /** Copy every verified byte to `write` in chunks (for extraction); fails on the first bad block. */
  async copyTo(write: (chunk: Uint8Array) => Promise<void> | void, chunkBytes = 1 << 20, onProgress?: (done: number, total: number) => void): Promise<void> {
    const chunk = Math.max(this.params.dataBlockSize, chunkBytes - (chunkBytes % this.params.dataBlockSize));
    for (let position = 0; position < this.size; position += chunk) {
      await write(await this.read(position, chunk));
      onProgress?.(Math.min(this.size, position + chunk), this.size);
    }
  }
}
