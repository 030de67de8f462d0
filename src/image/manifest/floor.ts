/**
 * Where the anti-rollback floor (the lowest release this device accepts) lives: the TPM NV
 * counter from the device keyset (../../device/release-floor.ts) on a provisioned device, or a
 * JSON file on a machine without a TPM.
 *
 * The file (`{"format":"sigil.release-floor.v1","floor":N}`, mode 0600) only ever rises: it is
 * replaced by write-to-temporary, fsync, rename, fsync of the folder, so a crash leaves the old
 * or the new floor, never a torn one. It protects against a stale or replayed manifest, not
 * against root on the device (who can edit it): that is what the TPM counter is for. A missing
 * file is an error, never "floor 1" — deleting it must not reopen old releases.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { SigilError } from '../../core/errors.ts';
import { advanceReleaseFloor, checkRelease, readReleaseFloor } from '../../device/release-floor.ts';
import type { Tpm } from '../../tpm/tpm.ts';

export const FLOOR_FILE_FORMAT = 'sigil.release-floor.v1';

export interface ReleaseFloor {
  readonly kind: 'tpm' | 'file';
  /** Where: the NV index or the file path (for status output). */
  readonly location: string;
  read(): Promise<number>;
  /** Raise the floor to `release` (never lower it); returns the floor now. */
  advance(release: number): Promise<number>;
}

export function tpmReleaseFloor(tpm: Tpm): ReleaseFloor {
  return {
    kind: 'tpm',
    location: 'TPM NV 0x01500101',
    read: () => readReleaseFloor(tpm),
    advance: (release) => advanceReleaseFloor(tpm, release),
  };
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeFloorFile(path: string, floor: number, exclusive: boolean): void {
  const body = `${JSON.stringify({ format: FLOOR_FILE_FORMAT, floor })}\n`;
  const temporary = exclusive ? path : `${path}.${randomBytes(6).toString('hex')}.tmp`;
  let fd: number;
  try {
    fd = openSync(temporary, exclusive ? 'wx' : 'w', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new SigilError('manifest.floor_exists', `the release floor file ${path} already exists`, { path });
    throw new SigilError('manifest.floor_io', `cannot write the release floor file ${path}`, { path }, { cause: error });
  }
  try {
    writeSync(fd, body);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (!exclusive) {
    try {
      renameSync(temporary, path);
    } catch (error) {
      rmSync(temporary, { force: true });
      throw new SigilError('manifest.floor_io', `cannot replace the release floor file ${path}`, { path }, { cause: error });
    }
  }
  fsyncDir(dirname(path));
}

function readFloorFile(path: string): number {
  let text: string;
  try {
    const info = statSync(path);
    // Anyone but the owner able to write it could roll the device back.
    if ((info.mode & 0o022) !== 0) throw new SigilError('manifest.floor_invalid', `the release floor file ${path} is writable by others (mode ${(info.mode & 0o777).toString(8)})`, { path });
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof SigilError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new SigilError('manifest.floor_missing', `the release floor file ${path} does not exist (create it with the device's initial release)`, { path });
    throw new SigilError('manifest.floor_io', `cannot read the release floor file ${path}`, { path }, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  const doc = value as { format?: unknown; floor?: unknown } | undefined;
  if (typeof doc !== 'object' || doc === null || doc.format !== FLOOR_FILE_FORMAT) throw new SigilError('manifest.floor_invalid', `${path} is not a release floor file (${FLOOR_FILE_FORMAT})`, { path });
  return checkRelease(doc.floor, 'manifest.floor_invalid');
}

/** Create the floor file (exclusively) at the device's initial release. */
export function initFileReleaseFloor(path: string, release = 1): ReleaseFloor {
  checkRelease(release);
  writeFloorFile(path, release, true);
  return fileReleaseFloor(path);
}

export function fileReleaseFloor(path: string): ReleaseFloor {
  return {
    kind: 'file',
    location: path,
    read: async () => readFloorFile(path),
    advance: async (release) => {
      checkRelease(release);
      const floor = readFloorFile(path);
      if (release < floor) throw new SigilError('manifest.rolled_back', `release ${release} is older than this device's lowest accepted release ${floor}`, { release, floor });
      if (release > floor) writeFloorFile(path, release, false);
      return Math.max(floor, release);
    },
  };
}
