/**
 * `sigil image extract` without device-mapper: read the layer's squashfs part through the
 * VerityReader (every block checked against the root hash) into a private temporary file, then
 * unpack that with unsquashfs.
 *
 * Why not parse squashfs ourselves and read files straight through the reader: squashfs has five
 * compressors, fragments, metadata blocks, extended inodes and directory indexes; unsquashfs
 * already handles them and is installed wherever layers are built. The temporary copy is made
 * only from verified blocks, in a 0700 directory only we can write, so what unsquashfs reads is
 * exactly what the root hash covers; the cost is one extra sequential write of the image.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyVerifiedSquashfs } from './layer.ts';
import { unsquashfs } from './squashfs.ts';

export interface ExtractOptions {
  /** Only these paths inside the image (unsquashfs semantics). */
  paths?: string[];
  /** Overwrite files already in `destDir` (stacking several layers). */
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export async function extractLayer(layerPath: string, rootHash: string, destDir: string, options: ExtractOptions = {}): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'sigil-extract-'));
  try {
    const image = join(work, 'verified.sqfs');
    await copyVerifiedSquashfs(layerPath, rootHash, image, options.onProgress);
    await unsquashfs(image, destDir, { paths: options.paths, force: options.force });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
