import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { SigilError } from '../../core/errors.ts';
import { migrations } from './migrations.ts';
import { registerPostgresPool } from './prepared.ts';
import type { Database } from './schema.ts';
import { NodeSqliteDatabase } from './sqlite-adapter.ts';

/**
 * One schema, two engines: embedded SQLite (node:sqlite, a file in the data directory) by default,
 * PostgreSQL for several replicas. The PostgreSQL pool is fixed and bounded per process.
 */
export interface BrokerDatabase {
  db: Kysely<Database>;
  dialect: 'sqlite' | 'postgres';
  /** Where it lives, without credentials (for logs). */
  location: string;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres://… or postgresql://…; a file path or sqlite:path for SQLite; default DATA/sigil.db. */
  url?: string;
  dataDir: string;
  poolSize?: number;
}

const INT8_OID = 20;

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable)';
  }
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<BrokerDatabase> {
  const url = options.url;
  let result: BrokerDatabase;
  if (url && /^postgres(ql)?:\/\//.test(url)) {
    const pool = new pg.Pool({
      connectionString: url,
      max: options.poolSize ?? 10,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 5_000,
      // int8 columns hold millisecond times and sequence numbers: numbers, not strings.
      types: { getTypeParser: ((oid: number, format?: string) => (oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser },
    });
    // A connection dropped by the server (restart, failover) must not crash the process.
    pool.on('error', () => undefined);
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    registerPostgresPool(db, pool);
    result = { db, dialect: 'postgres', location: redact(url), close: () => db.destroy() };
  } else {
    const file = url ? url.replace(/^sqlite:/, '') : path.join(options.dataDir, 'sigil.db');
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
    const sqlite = new NodeSqliteDatabase(file);
    const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
    result = { db, dialect: 'sqlite', location: file, close: () => db.destroy() };
  }
  try {
    await migrate(result);
  } catch (error) {
    await result.close().catch(() => undefined);
    if (error instanceof SigilError) throw error;
    throw new SigilError('env.database_unavailable', `cannot open the database at ${result.location}: ${(error as Error).message}`, { location: result.location }, { cause: error });
  }
  return result;
}

async function migrate(database: BrokerDatabase): Promise<void> {
  const migrator = new Migrator({
    db: database.db,
    provider: { getMigrations: async () => migrations(database.dialect) },
    migrationTableName: 'sigil_migrations',
    migrationLockTableName: 'sigil_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new SigilError('env.database_migration_failed', `database migration ${failed ?? ''} failed: ${(error as Error).message}`, { failed }, { cause: error });
  }
}

/** Readiness probe: one round trip. */
export async function ping(database: BrokerDatabase): Promise<void> {
  await sql`select 1`.execute(database.db);
}

/** Unique-constraint violations on either engine (a nonce reused, a name taken). */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; errcode?: string; message?: string };
  return e?.code === '23505' || e?.errcode === '2067' || /UNIQUE constraint failed|duplicate key/i.test(e?.message ?? '');
}
