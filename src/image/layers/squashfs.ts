/**
 * Reproducible squashfs images with mksquashfs (squashfs-tools 4.5): the same input tree gives
 * the same bytes, whatever the files' times, owners or the order they were created in:
 * `-all-root` (uid/gid 0), `-all-time 0` and `-mkfs-time 0` (no clock), `-no-xattrs` (no
 * host labels), `-noappend` (never merge into a stale image), and mksquashfs's own sorted
 * directory order and `-reproducible` default (parallel compression written in order).
 *
 * Also the few squashfs superblock fields Sigil reads (squashfs 4.0 on-disk format, little-endian;
 * linux fs/squashfs/squashfs_fs.h `struct squashfs_super_block`): magic "hsqs" at 0, block_size
 * at 12, compression id at 20, bytes_used (u64) at 40. The superblock is 96 bytes.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SigilError } from '../../core/errors.ts';

const execFileAsync = promisify(execFile);

export type SquashfsCompression = 'gzip' | 'zstd' | 'xz' | 'lz4' | 'lzo';
export const SQUASHFS_COMPRESSIONS: readonly SquashfsCompression[] = ['gzip', 'zstd', 'xz', 'lz4', 'lzo'];
/** squashfs_fs.h compression ids. */
const COMPRESSION_IDS: Record<number, SquashfsCompression | 'lzma'> = { 1: 'gzip', 2: 'lzma', 3: 'lzo', 4: 'xz', 5: 'lz4', 6: 'zstd' };

export const SQUASHFS_SUPERBLOCK_SIZE = 96;
const SQUASHFS_MAGIC = 0x73717368;

export interface SquashfsInfo {
  blockSize: number;
  compression: string;
  /** Bytes the filesystem uses (mksquashfs then pads the file to 4 KiB). */
  bytesUsed: number;
  inodes: number;
}

export function parseSquashfsSuperblock(bytes: Uint8Array): SquashfsInfo {
  if (bytes.length < SQUASHFS_SUPERBLOCK_SIZE) throw new SigilError('layer.squashfs_invalid', `a squashfs superblock needs ${SQUASHFS_SUPERBLOCK_SIZE} bytes, got ${bytes.length}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, SQUASHFS_SUPERBLOCK_SIZE);
  if (view.getUint32(0, true) !== SQUASHFS_MAGIC) throw new SigilError('layer.squashfs_invalid', 'not a squashfs image (no "hsqs" magic)');
  const major = view.getUint16(28, true);
  if (major !== 4) throw new SigilError('layer.squashfs_invalid', `squashfs version ${major} is not supported (4 only)`, { major });
  const bytesUsed = view.getBigUint64(40, true);
  if (bytesUsed < BigInt(SQUASHFS_SUPERBLOCK_SIZE) || bytesUsed > BigInt(Number.MAX_SAFE_INTEGER)) throw new SigilError('layer.squashfs_invalid', `squashfs size ${bytesUsed} is out of range`);
  const id = view.getUint16(20, true);
  return { blockSize: view.getUint32(12, true), compression: COMPRESSION_IDS[id] ?? `unknown(${id})`, bytesUsed: Number(bytesUsed), inodes: view.getUint32(4, true) };
}

async function tool(command: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { code?: string | number; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new SigilError('env.tool_missing', `${command} is not installed (Debian package squashfs-tools)`, { command });
    throw new SigilError('layer.tool_failed', `${command} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' ')}`, { command, args });
  }
}

/** Build `outPath` from the tree at `sourceDir`, reproducibly. */
export async function mksquashfs(sourceDir: string, outPath: string, compression: SquashfsCompression = 'zstd'): Promise<void> {
  if (!SQUASHFS_COMPRESSIONS.includes(compression)) throw new SigilError('layer.compression_invalid', `compression "${compression}" is not one of ${SQUASHFS_COMPRESSIONS.join(', ')}`);
  await tool('mksquashfs', [sourceDir, outPath, '-noappend', '-all-root', '-no-xattrs', '-mkfs-time', '0', '-all-time', '0', '-reproducible', '-comp', compression, '-quiet', '-no-progress']);
}

/** Unpack `imagePath` into `destDir` (which must not exist unless `force`). */
export async function unsquashfs(imagePath: string, destDir: string, options: { paths?: string[]; force?: boolean } = {}): Promise<void> {
  const args = ['-no-progress', '-no-xattrs', ...(options.force ? ['-f'] : []), '-d', destDir, imagePath, ...(options.paths ?? [])];
  await tool('unsquashfs', args);
}
