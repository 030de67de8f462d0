/**
 * Verity-protected squashfs layers in stacker/atomfs's layout, so stacker and atomfs can mount
 * ours and we theirs: [squashfs image, padded to 4 KiB][verity superblock][hash tree], SHA-256,
 * 4 KiB blocks, format 1, the tree's offset = the padded squashfs size (found again from the
 * squashfs superblock's bytes_used), and the root hash in the descriptor annotation
 * `io.stackeroci.stacker.atomfs_verity_root_hash`.
 *
 * Reproducible: the salt defaults to SHA-256 of the squashfs bytes and the superblock UUID is
 * derived from the salt, so rebuilding the same tree gives the same blob digest and root hash.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat, truncate } from 'node:fs/promises';
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import { formatVerity } from '../verity/format.ts';
import { readAt } from '../verity/open-params.ts';
import { VerityReader } from '../verity/reader.ts';
import { uuidFromBytes } from '../verity/superblock.ts';
import { verifyVerity } from '../verity/verify.ts';
import { mksquashfs, parseSquashfsSuperblock, SQUASHFS_SUPERBLOCK_SIZE, type SquashfsCompression } from './squashfs.ts';

import { squashfsMediaType, VERITY_ROOT_HASH_ANNOTATION } from './media-types.ts';

export { squashfsMediaType, VERITY_ROOT_HASH_ANNOTATION } from './media-types.ts';

const BLOCK = 4096;

export interface LayerOptions {
  compression?: SquashfsCompression;
  /** Default: SHA-256 of the squashfs image. */
  salt?: Uint8Array;
  threads?: number;
}

export interface Layer {
  path: string;
  mediaType: string;
  /** `sha256:<hex>` of the whole blob (squashfs + verity). */
  digest: string;
  size: number;
  /** Where the verity area starts (the padded squashfs size). */
  hashOffset: number;
  rootHash: string;
  salt: string;
  annotations: Record<string, string>;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** UUID bytes from the salt, with RFC 9562 version 8 (custom) and variant bits. */
function derivedUuid(salt: Uint8Array): string {
  const bytes = createHash('sha256').update('sigil verity layer uuid').update(salt).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x80;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  return uuidFromBytes(bytes);
}

/** Build a layer blob at `outPath` from the tree at `sourceDir`. */
export async function buildLayer(sourceDir: string, outPath: string, options: LayerOptions = {}): Promise<Layer> {
  const compression = options.compression ?? 'zstd';
  const partial = `${outPath}.partial`;
  await rm(partial, { force: true });
  try {
    await mksquashfs(sourceDir, partial, compression);
    const squashfsSize = (await stat(partial)).size;
    const hashOffset = Math.ceil(squashfsSize / BLOCK) * BLOCK;
    if (hashOffset !== squashfsSize) await truncate(partial, hashOffset); // mksquashfs pads; make sure
    const salt = options.salt ?? Buffer.from((await sha256File(partial)).slice('sha256:'.length), 'hex');
    const result = await formatVerity(partial, partial, {
      hash: 'sha256',
      dataBlockSize: BLOCK,
      hashBlockSize: BLOCK,
      dataBlocks: hashOffset / BLOCK,
      hashOffset,
      salt,
      uuid: derivedUuid(salt),
      threads: options.threads,
    });
    const digest = await sha256File(partial);
    const size = (await stat(partial)).size;
    await rename(partial, outPath);
    const rootHash = toHex(result.rootHash);
    return { path: outPath, mediaType: squashfsMediaType(compression), digest, size, hashOffset, rootHash, salt: toHex(salt), annotations: { [VERITY_ROOT_HASH_ANNOTATION]: rootHash } };
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
}

/** The verity area's offset in a layer blob: the squashfs size rounded up to 4 KiB (as atomfs finds it). */
export function layerHashOffset(layerPath: string): number {
  const info = parseSquashfsSuperblock(readAt(layerPath, 0, SQUASHFS_SUPERBLOCK_SIZE));
  return Math.ceil(info.bytesUsed / BLOCK) * BLOCK;
}

/** Open a layer blob for verified reads against its root hash (hex, from the annotation). */
export async function openLayer(layerPath: string, rootHash: string): Promise<VerityReader> {
  const hashOffset = layerHashOffset(layerPath);
  const reader = await VerityReader.open(layerPath, layerPath, rootHash, { hashOffset });
  if (reader.size !== hashOffset) {
    await reader.close();
    throw new SigilError('layer.verity_mismatch', `the verity superblock covers ${reader.size} bytes but the squashfs image takes ${hashOffset}`, { covered: reader.size, hashOffset });
  }
  return reader;
}

/** Full verification of a layer blob: every data and tree block against the root hash. */
export async function verifyLayer(layerPath: string, rootHash: string, threads?: number): Promise<void> {
  const hashOffset = layerHashOffset(layerPath);
  const result = await verifyVerity(layerPath, layerPath, rootHash, { hashOffset, threads });
  if (result.params.dataBlocks * result.params.dataBlockSize !== hashOffset) {
    throw new SigilError('layer.verity_mismatch', 'the verity tree does not cover the whole squashfs image', { hashOffset, dataBlocks: result.params.dataBlocks });
  }
}

/** Write the verified squashfs part of a layer to `outPath` (0600), reading through the VerityReader. */
export async function copyVerifiedSquashfs(layerPath: string, rootHash: string, outPath: string, onProgress?: (done: number, total: number) => void): Promise<void> {
  const reader = await openLayer(layerPath, rootHash);
  const out = await open(outPath, 'wx', 0o600);
  try {
    await reader.copyTo(async (chunk) => {
      await out.write(chunk);
    }, 1 << 20, onProgress);
  } finally {
    await out.close();
    await reader.close();
  }
}
