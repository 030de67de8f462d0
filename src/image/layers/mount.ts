/**
 * Mounting a layer where the kernel can check it: `veritysetup open` (which attaches loop devices
 * for image files by itself) maps the layer to /dev/mapper/<name> with the tree at the layer's
 * hash offset and the root hash from the manifest, then a read-only squashfs mount. Needs root
 * and device-mapper (/dev/mapper/control); elsewhere use `extractLayer` (VerityReader).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { SigilError } from '../../core/errors.ts';
import { layerHashOffset } from './layer.ts';

const execFileAsync = promisify(execFile);

/** Why mounting cannot work here, or undefined when it can. */
export function mountUnavailableReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'mounting needs root';
  if (!existsSync('/dev/mapper/control')) return 'no device-mapper (/dev/mapper/control is missing)';
  return undefined;
}

async function run(command: string, args: string[]): Promise<void> {
  try {
    await execFileAsync(command, args);
  } catch (error) {
    const e = error as { code?: string | number; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new SigilError('env.tool_missing', `${command} is not installed`, { command });
    throw new SigilError('layer.mount_failed', `${command} ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`, { command, args });
  }
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/.test(name)) throw new SigilError('layer.mount_name_invalid', `"${name}" is not a usable device-mapper name`, { name });
}

/** Map a layer through dm-verity; returns /dev/mapper/<name>. */
export async function openVerityLayer(layerPath: string, rootHash: string, name: string): Promise<string> {
  checkName(name);
  const reason = mountUnavailableReason();
  if (reason) throw new SigilError('env.device_mapper_unavailable', reason);
  if (!/^[0-9a-f]{64}$/.test(rootHash)) throw new SigilError('verity.root_hash_invalid', 'the root hash is not 64 hex digits');
  const hashOffset = layerHashOffset(layerPath);
  await run('veritysetup', ['open', layerPath, name, layerPath, rootHash, `--hash-offset=${hashOffset}`]);
  return `/dev/mapper/${name}`;
}

export async function closeVerityLayer(name: string): Promise<void> {
  checkName(name);
  await run('veritysetup', ['close', name]);
}

/** Open and mount read-only at `mountpoint`; undo with `unmountLayer(name, mountpoint)`. */
export async function mountLayer(layerPath: string, rootHash: string, name: string, mountpoint: string): Promise<void> {
  const device = await openVerityLayer(layerPath, rootHash, name);
  try {
    await run('mount', ['-t', 'squashfs', '-o', 'ro', device, mountpoint]);
  } catch (error) {
    await closeVerityLayer(name).catch(() => undefined);
    throw error;
  }
}

export async function unmountLayer(name: string, mountpoint: string): Promise<void> {
  await run('umount', [mountpoint]);
  await closeVerityLayer(name);
}
