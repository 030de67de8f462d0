/**
 * The update engine's state folder (mode 0700):
 *
 *   update.db            configuration, releases, operation journal (database.ts)
 *   lock.db              held in an EXCLUSIVE SQLite transaction while an engine runs
 *   floor.json           the anti-rollback floor when the device has no TPM (../manifest/floor.ts)
 *   staging/<digest>/    a release being downloaded and verified (named by its document digest)
 *   releases/<id>/       verified releases: manifest.json, manifest.jws, layout/ (OCI layout)
 *   current -> releases/<id>   the running release: a symlink replaced by rename(2), atomic
 *   decision.json        the last switch's decision, as handed to the hook
 *
 * The lock is an SQLite EXCLUSIVE lock (POSIX advisory locks underneath), not a PID file: the
 * kernel drops it when the holder dies, even by SIGKILL, so a crashed update never leaves the
 * device locked and two engines can never both believe they hold it.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { SigilError } from '../../core/errors.ts';

const LINK_TARGET = /^releases\/([0-9]{1,10}-[0-9a-f]{12})$/;

export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsync every file and folder under `dir` (before a switch: the release must survive a power cut). */
export function syncTree(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) syncTree(path);
    else if (entry.isFile()) fsyncPath(path);
  }
  fsyncPath(dir);
}

export class StateDir {
  readonly root: string;
  private lockDb: DatabaseSync | undefined;

  constructor(root: string) {
    this.root = root;
  }

  get databasePath(): string {
    return join(this.root, 'update.db');
  }

  get defaultFloorFile(): string {
    return join(this.root, 'floor.json');
  }

  get decisionPath(): string {
    return join(this.root, 'decision.json');
  }

  get currentLink(): string {
    return join(this.root, 'current');
  }

  ensure(): void {
    for (const dir of [this.root, join(this.root, 'staging'), join(this.root, 'releases')]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  stagingDir(documentDigest: string): string {
    return join(this.root, 'staging', documentDigest.replace(':', '-'));
  }

  releaseDir(id: string): string {
    return join(this.root, 'releases', id);
  }

  /** Take the engine lock or refuse with update.busy. */
  lock(): void {
    const db = new DatabaseSync(join(this.root, 'lock.db'));
    try {
      db.exec('PRAGMA busy_timeout = 0; PRAGMA journal_mode = DELETE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
      db.exec('BEGIN EXCLUSIVE');
      db.prepare('DELETE FROM holder').run();
      db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
    } catch (error) {
      db.close();
      if (/locked|busy/i.test((error as Error).message)) throw new SigilError('update.busy', `another sigil update is running on ${this.root}`, { stateDir: this.root });
      throw new SigilError('update.state_invalid', `cannot lock ${this.root}: ${(error as Error).message}`, { stateDir: this.root }, { cause: error });
    }
    this.lockDb = db;
  }

  unlock(): void {
    if (this.lockDb?.isOpen) {
      this.lockDb.exec('ROLLBACK');
      this.lockDb.close();
    }
    this.lockDb = undefined;
  }

  /** The release id `current` points at, or undefined when there is none. */
  currentId(): string | undefined {
    let target: string;
    try {
      target = readlinkSync(this.currentLink);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SigilError('update.state_invalid', `${this.currentLink} is not a symlink`, { path: this.currentLink }, { cause: error });
    }
    const m = LINK_TARGET.exec(target);
    if (!m) throw new SigilError('update.state_invalid', `${this.currentLink} points at ${target}, not at a release`, { target });
    return m[1];
  }

  /** Point `current` at release `id`: a new symlink renamed over the old one, then the folder synced. */
  switchCurrent(id: string): void {
    if (!existsSync(this.releaseDir(id))) throw new SigilError('update.state_invalid', `release folder ${id} is missing`, { id });
    const temporary = join(this.root, `.current.${randomBytes(6).toString('hex')}`);
    symlinkSync(`releases/${id}`, temporary);
    try {
      renameSync(temporary, this.currentLink);
    } catch (error) {
      rmSync(temporary, { force: true });
      throw error;
    }
    fsyncPath(this.root);
  }

  /** Leftovers of a crash: half-made symlinks and partial blob downloads. */
  cleanTemporaries(stagingDir?: string): void {
    for (const name of readdirSync(this.root)) if (name.startsWith('.current.') || name.endsWith('.tmp')) rmSync(join(this.root, name), { force: true });
    if (stagingDir && existsSync(stagingDir)) {
      for (const name of readdirSync(stagingDir)) if (name.endsWith('.tmp')) rmSync(join(stagingDir, name), { force: true });
    }
    if (stagingDir && existsSync(join(stagingDir, 'layout', 'blobs'))) {
      for (const algorithm of readdirSync(join(stagingDir, 'layout', 'blobs'))) {
        const dir = join(stagingDir, 'layout', 'blobs', algorithm);
        for (const name of readdirSync(dir)) if (name.endsWith('.partial') || name.endsWith('.tmp')) rmSync(join(dir, name), { force: true });
      }
    }
  }

  /** Staging folders other than `keep`. */
  stagingDirs(): string[] {
    return readdirSync(join(this.root, 'staging')).map((name) => join(this.root, 'staging', name));
  }
}

/**
 * Hard-link the blobs of the running release into a staging layout, so layers that did not change
 * are not downloaded again (the pull re-hashes every present blob before trusting it).
 */
export function seedBlobs(fromLayout: string, toLayout: string): number {
  let linked = 0;
  const from = join(fromLayout, 'blobs', 'sha256');
  const to = join(toLayout, 'blobs', 'sha256');
  if (!existsSync(from)) return 0;
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from)) {
    if (!/^[0-9a-f]{64}$/.test(name) || existsSync(join(to, name)) || !statSync(join(from, name)).isFile()) continue;
    try {
      linkSync(join(from, name), join(to, name));
      linked++;
    } catch {
      // another filesystem or no link support: the blob is simply downloaded
    }
  }
  return linked;
}
