/**
 * Full verification (`veritysetup verify`): rebuild the tree from the data with the parallel
 * builder and compare it with the stored one level by level, then the root. Reports the first
 * failure the way cryptsetup does: a digest mismatch at the position of the block it covers
 * (a data offset for level 0, a hash-file offset above), or spare area that is not zero.
 */
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import { dataSizeOf, openParams, readAt, type OpenedParams, type OpenOptions } from './open-params.ts';
import { buildTree, type BuildOptions } from './tree-builder.ts';

export interface VerifyResult extends OpenedParams {
  dataBlocks: number;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  // Compare 4 KiB at a time with Buffer.compare (native), then find the byte.
  const step = 4096;
  for (let start = 0; start < a.length; start += step) {
    const end = Math.min(a.length, start + step);
    if (Buffer.compare(a.subarray(start, end), b.subarray(start, end)) !== 0) {
      for (let i = start; i < end; i++) if (a[i] !== b[i]) return i;
    }
  }
  return -1;
}

export async function verifyVerity(dataPath: string, hashPath: string, root: string | Uint8Array, options: OpenOptions & BuildOptions = {}): Promise<VerifyResult> {
  const dataSize = dataSizeOf(dataPath);
  const opened = openParams(dataSize, hashPath, root, options);
  const { params, geometry } = opened;
  const tree = await buildTree(dataPath, params, options);
  const size = params.hashBlockSize;
  for (let level = 0; level < geometry.levels; level++) {
    const expected = tree.levels[level];
    const start = geometry.levelStart[level] * size;
    const stored = readAt(hashPath, start, expected.length);
    if (stored.length < expected.length) {
      throw new SigilError('verity.hash_short', `the hash file ends at ${start + stored.length}, inside level ${level} of the tree`, { level, end: start + stored.length, needed: start + expected.length });
    }
    const at = firstDifference(expected, stored);
    if (at < 0) continue;
    const slotInBlock = at % size;
    const slot = Math.floor(slotInBlock / geometry.digestSlot);
    const child = Math.floor(at / size) * geometry.hashPerBlock + slot;
    const children = level === 0 ? params.dataBlocks : geometry.levelBlocks[level - 1];
    const inDigest = slot < geometry.hashPerBlock && slotInBlock % geometry.digestSlot < geometry.digestSize && child < children;
    if (!inDigest) throw new SigilError('verity.verification_failed', `spare area is not zeroed at position ${start + at}`, { position: start + at, level, area: 'hash' });
    const position = level === 0 ? child * params.dataBlockSize : (geometry.levelStart[level - 1] + child) * size;
    throw new SigilError('verity.verification_failed', `verification failed at position ${position}`, { position, level, area: level === 0 ? 'data' : 'hash' });
  }
  if (Buffer.compare(Buffer.from(tree.rootHash), Buffer.from(opened.rootHash)) !== 0) {
    throw new SigilError('verity.root_mismatch', 'verification of root hash failed', { expected: toHex(opened.rootHash), actual: toHex(tree.rootHash) });
  }
  return { ...opened, dataBlocks: params.dataBlocks };
}
