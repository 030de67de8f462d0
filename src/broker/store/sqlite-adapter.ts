import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/**
 * node:sqlite (Node 24 built-in) behind kysely's SqliteDialect, which was written for
 * better-sqlite3: node:sqlite statements take spread parameters rather than an array and have no
 * `.reader`, so it is derived from the statement's result columns (a DELETE … RETURNING reads).
 * Prepared statements are cached by SQL text: kysely prepares on every query.
 */
const CACHE_LIMIT = 500;

function toSqliteValue(value: unknown): unknown {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value === undefined) return null;
  return value;
}

class NodeSqliteStatement implements SqliteStatement {
  readonly reader: boolean;
  readonly #statement: StatementSync;

  constructor(statement: StatementSync) {
    this.#statement = statement;
    this.reader = statement.columns().length > 0;
  }

  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.#statement.all(...(parameters.map(toSqliteValue) as never[]));
  }

  run(parameters: ReadonlyArray<unknown>): { changes: number | bigint; lastInsertRowid: number | bigint } {
    return this.#statement.run(...(parameters.map(toSqliteValue) as never[]));
  }

  iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    return this.#statement.iterate(...(parameters.map(toSqliteValue) as never[])) as IterableIterator<unknown>;
  }
}

export class NodeSqliteDatabase implements SqliteDatabase {
  readonly #db: DatabaseSync;
  readonly #cache = new Map<string, NodeSqliteStatement>();

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    // WAL: readers do not block the writer; NORMAL sync survives a process kill (not a power cut
    // between checkpoints, which FULL would cover at a cost per commit). busy_timeout covers a
    // second process (`sigil audit verify`) reading while the broker writes.
    this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
  }

  prepare(text: string): SqliteStatement {
    // kysely opens transactions with a plain "begin" (deferred): a transaction that reads and then
    // writes can then fail with SQLITE_BUSY when another process (a second worker, `sigil audit
    // verify`) wrote in between. "begin immediate" takes the write lock up front, so writers queue
    // on busy_timeout instead. Every broker transaction writes, so nothing is lost.
    const sql = text === 'begin' ? 'begin immediate' : text;
    let statement = this.#cache.get(sql);
    if (!statement) {
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.delete(this.#cache.keys().next().value!);
      statement = new NodeSqliteStatement(this.#db.prepare(sql));
      this.#cache.set(sql, statement);
    }
    return statement;
  }

  close(): void {
    this.#cache.clear();
    if (this.#db.isOpen) this.#db.close();
  }
}
