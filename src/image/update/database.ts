/**
 * The device's update database (SQLite, node:sqlite DatabaseSync, `<state>/update.db`): the
 * configuration, the releases on the device and their states, and a journal of update
 * operations whose phase says how far each one got — what recovery reads after a crash.
 *
 * Synchronous on purpose: every state change is one short transaction between two filesystem
 * steps of the engine, and a crash between them must leave either the old or the new row. WAL
 * with synchronous=FULL: a committed transaction survives a power cut, not only a killed process.
 */
import { DatabaseSync } from 'node:sqlite';
import { SigilError } from '../../core/errors.ts';

export const SCHEMA_VERSION = 1;

export type ReleaseState = 'installed' | 'current' | 'previous' | 'rolled-back' | 'retired';
export type OperationKind = 'apply' | 'rollback' | 'commit';
/** download → verify → switching → switched → done; or failed / interrupted. */
export type OperationPhase = 'download' | 'verify' | 'switching' | 'switched' | 'done' | 'failed' | 'interrupted';
export const ACTIVE_PHASES: readonly OperationPhase[] = ['download', 'verify', 'switching', 'switched'];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS releases (
  id TEXT PRIMARY KEY,
  product_id TEXT NOT NULL,
  release INTEGER NOT NULL,
  document_digest TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  document BLOB NOT NULL,
  signature BLOB NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('installed', 'current', 'previous', 'rolled-back', 'retired')),
  installed_at TEXT NOT NULL,
  activated_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS releases_one_current ON releases (state) WHERE state = 'current';
CREATE UNIQUE INDEX IF NOT EXISTS releases_one_previous ON releases (state) WHERE state = 'previous';
CREATE TABLE IF NOT EXISTS targets (
  release_id TEXT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  version TEXT NOT NULL,
  digest TEXT NOT NULL,
  PRIMARY KEY (release_id, name)
);
CREATE TABLE IF NOT EXISTS operations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL CHECK (kind IN ('apply', 'rollback', 'commit')),
  phase TEXT NOT NULL CHECK (phase IN ('download', 'verify', 'switching', 'switched', 'done', 'failed', 'interrupted')),
  release INTEGER,
  document_digest TEXT,
  staging TEXT,
  from_release TEXT,
  to_release TEXT,
  decision TEXT,
  error TEXT,
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS operations_one_active ON operations ((1)) WHERE phase IN ('download', 'verify', 'switching', 'switched');
`;

export interface ReleaseRow {
  id: string;
  productId: string;
  release: number;
  documentDigest: string;
  source: string;
  document: Uint8Array;
  signature: Uint8Array;
  state: ReleaseState;
  installedAt: string;
  activatedAt: string | null;
}

export interface TargetRow {
  name: string;
  type: string;
  version: string;
  digest: string;
}

export interface OperationRow {
  id: number;
  kind: OperationKind;
  phase: OperationPhase;
  release: number | null;
  documentDigest: string | null;
  staging: string | null;
  fromRelease: string | null;
  toRelease: string | null;
  decision: string | null;
  error: string | null;
  startedAt: string;
  updatedAt: string;
}

type Row = Record<string, unknown>;

function releaseRow(row: Row): ReleaseRow {
  return {
    id: row.id as string,
    productId: row.product_id as string,
    release: row.release as number,
    documentDigest: row.document_digest as string,
    source: row.source as string,
    document: row.document as Uint8Array,
    signature: row.signature as Uint8Array,
    state: row.state as ReleaseState,
    installedAt: row.installed_at as string,
    activatedAt: (row.activated_at as string | null) ?? null,
  };
}

function operationRow(row: Row): OperationRow {
  return {
    id: row.id as number,
    kind: row.kind as OperationKind,
    phase: row.phase as OperationPhase,
    release: (row.release as number | null) ?? null,
    documentDigest: (row.document_digest as string | null) ?? null,
    staging: (row.staging as string | null) ?? null,
    fromRelease: (row.from_release as string | null) ?? null,
    toRelease: (row.to_release as string | null) ?? null,
    decision: (row.decision as string | null) ?? null,
    error: (row.error as string | null) ?? null,
    startedAt: row.started_at as string,
    updatedAt: row.updated_at as string,
  };
}

const now = () => new Date().toISOString();

export class UpdateDatabase {
  readonly path: string;
  private readonly db: DatabaseSync;

  private constructor(path: string, db: DatabaseSync) {
    this.path = path;
    this.db = db;
  }

  static open(path: string): UpdateDatabase {
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
      db.exec(SCHEMA);
    } catch (error) {
      throw new SigilError('update.database_error', `cannot open the update database ${path}: ${(error as Error).message}`, { path }, { cause: error });
    }
    const database = new UpdateDatabase(path, db);
    const version = database.meta('schema');
    if (version === undefined) database.setMeta('schema', String(SCHEMA_VERSION));
    else if (version !== String(SCHEMA_VERSION)) throw new SigilError('update.database_error', `the update database ${path} has schema ${version}, this Sigil knows ${SCHEMA_VERSION}`, { path, version });
    return database;
  }

  close(): void {
    if (this.db.isOpen) this.db.close();
  }

  /** Run `work` in one IMMEDIATE transaction: all of it is committed or none. */
  transaction<T>(work: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      this.db.exec('ROLLBACK');
      throw error;
    }
  }

  private meta(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as Row | undefined)?.value as string | undefined;
  }

  private setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  settings(): Record<string, string> {
    const rows = this.db.prepare('SELECT key, value FROM settings ORDER BY key').all() as Row[];
    return Object.fromEntries(rows.map((r) => [r.key as string, r.value as string]));
  }

  /** Replace the given settings; `undefined` removes a key. */
  setSettings(values: Record<string, string | undefined>): void {
    this.transaction(() => {
      for (const [key, value] of Object.entries(values)) {
        if (value === undefined) this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
        else this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
      }
    });
  }

  release(id: string): ReleaseRow | undefined {
    const row = this.db.prepare('SELECT * FROM releases WHERE id = ?').get(id) as Row | undefined;
    return row ? releaseRow(row) : undefined;
  }

  releaseInState(state: 'current' | 'previous'): ReleaseRow | undefined {
    const row = this.db.prepare('SELECT * FROM releases WHERE state = ?').get(state) as Row | undefined;
    return row ? releaseRow(row) : undefined;
  }

  releases(): ReleaseRow[] {
    return (this.db.prepare('SELECT * FROM releases ORDER BY release DESC, installed_at DESC').all() as Row[]).map(releaseRow);
  }

  targets(releaseId: string): TargetRow[] {
    return (this.db.prepare('SELECT name, type, version, digest FROM targets WHERE release_id = ? ORDER BY name').all(releaseId) as Row[]).map((r) => ({
      name: r.name as string,
      type: r.type as string,
      version: r.version as string,
      digest: r.digest as string,
    }));
  }

  /** Record a verified release (state `installed`), or reinstate one seen before. */
  putRelease(row: Omit<ReleaseRow, 'state' | 'installedAt' | 'activatedAt'>, targets: TargetRow[]): void {
    this.db
      .prepare(
        `INSERT INTO releases (id, product_id, release, document_digest, source, document, signature, state, installed_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'installed', ?)
         ON CONFLICT (id) DO UPDATE SET product_id = excluded.product_id, release = excluded.release, document_digest = excluded.document_digest,
           source = excluded.source, document = excluded.document, signature = excluded.signature, state = 'installed', installed_at = excluded.installed_at, activated_at = NULL`,
      )
      .run(row.id, row.productId, row.release, row.documentDigest, row.source, row.document, row.signature, now());
    this.db.prepare('DELETE FROM targets WHERE release_id = ?').run(row.id);
    for (const t of targets) this.db.prepare('INSERT INTO targets (release_id, name, type, version, digest) VALUES (?, ?, ?, ?, ?)').run(row.id, t.name, t.type, t.version, t.digest);
  }

  setReleaseState(id: string, state: ReleaseState): void {
    const activated = state === 'current' ? now() : null;
    this.db.prepare(`UPDATE releases SET state = ?, activated_at = COALESCE(?, activated_at) WHERE id = ?`).run(state, activated, id);
  }

  deleteRelease(id: string): void {
    this.db.prepare('DELETE FROM releases WHERE id = ?').run(id);
  }

  activeOperation(): OperationRow | undefined {
    const row = this.db.prepare(`SELECT * FROM operations WHERE phase IN ('download', 'verify', 'switching', 'switched')`).get() as Row | undefined;
    return row ? operationRow(row) : undefined;
  }

  operation(id: number): OperationRow | undefined {
    const row = this.db.prepare('SELECT * FROM operations WHERE id = ?').get(id) as Row | undefined;
    return row ? operationRow(row) : undefined;
  }

  lastOperation(): OperationRow | undefined {
    const row = this.db.prepare('SELECT * FROM operations ORDER BY id DESC LIMIT 1').get() as Row | undefined;
    return row ? operationRow(row) : undefined;
  }

  operations(limit = 20): OperationRow[] {
    return (this.db.prepare('SELECT * FROM operations ORDER BY id DESC LIMIT ?').all(limit) as Row[]).map(operationRow);
  }

  startOperation(op: { kind: OperationKind; phase: OperationPhase; release?: number; documentDigest?: string; staging?: string; fromRelease?: string | null; toRelease?: string | null }): number {
    const at = now();
    try {
      const result = this.db
        .prepare('INSERT INTO operations (kind, phase, release, document_digest, staging, from_release, to_release, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(op.kind, op.phase, op.release ?? null, op.documentDigest ?? null, op.staging ?? null, op.fromRelease ?? null, op.toRelease ?? null, at, at);
      return Number(result.lastInsertRowid);
    } catch (error) {
      if (/UNIQUE constraint failed: index 'operations_one_active'/.test((error as Error).message)) {
        throw new SigilError('update.busy', 'another update operation is in progress');
      }
      throw error;
    }
  }

  updateOperation(id: number, changes: { phase?: OperationPhase; toRelease?: string | null; fromRelease?: string | null; decision?: string; error?: string }): void {
    const sets: string[] = ['updated_at = ?'];
    const values: (string | number | null)[] = [now()];
    const columns: Record<string, string> = { phase: 'phase', toRelease: 'to_release', fromRelease: 'from_release', decision: 'decision', error: 'error' };
    for (const [key, column] of Object.entries(columns)) {
      const value = (changes as Record<string, string | null | undefined>)[key];
      if (value !== undefined) {
        sets.push(`${column} = ?`);
        values.push(value);
      }
    }
    this.db.prepare(`UPDATE operations SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
  }
}
