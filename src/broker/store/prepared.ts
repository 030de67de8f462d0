import { createHash } from 'node:crypto';
import { CompiledQuery, type Compilable, type Kysely } from 'kysely';
import type pg from 'pg';
import { SigilError } from '../../core/errors.ts';
import type { Database } from './schema.ts';

/**
 * Queries on the attestation hot path, compiled once per dialect. kysely builds an operation
 * tree, freezes it and compiles it to SQL on every call — measured at 20-40 µs a query, more than
 * SQLite takes to run most of them — so a flow's dozen queries spent more in kysely than in the
 * database. A prepared query is written with kysely as usual (so types and quoting stay kysely's)
 * against marker parameters, compiled on first use, and then run as the compiled SQL with the
 * call's values. The SQLite adapter also caches the prepared statement by its text.
 *
 *   const tenantById = prepared<{ id: string }, TenantRow>((db, p) => db.selectFrom('tenants').selectAll().where('id', '=', p.id));
 *   const rows = await tenantById(ctx.db, { id });
 */
type Slot = { param: string } | { constant: unknown };

/**
 * PostgreSQL pools by their kysely instance. A prepared query run outside a transaction goes to
 * the pool as a *named* statement: each connection parses and plans it once, then only binds and
 * executes (kysely sends every query unnamed, so the server parses and plans it every time).
 * Inside a transaction the query runs on the transaction's connection through kysely.
 */
const pools = new WeakMap<object, pg.Pool>();

export function registerPostgresPool(db: Kysely<Database>, pool: pg.Pool): void {
  pools.set(db, pool);
}

const MARK = '\u0000sigil-param:';

export type PreparedQuery<P, Row> = (db: Kysely<Database>, params: P) => Promise<Row[]>;

export function prepared<P extends Record<string, unknown>, Row>(build: (db: Kysely<Database>, params: P) => Compilable<Row>): PreparedQuery<P, Row> {
  // Per dialect adapter: a transaction shares its database's adapter, and so its SQL.
  const compiled = new WeakMap<object, { sql: string; slots: Slot[]; name: string }>();
  const compile = (db: Kysely<Database>) => {
    const markers = new Proxy({}, { get: (_target, name) => `${MARK}${String(name)}` }) as P;
    const query = build(db, markers).compile();
    const slots = query.parameters.map((value): Slot => (typeof value === 'string' && value.startsWith(MARK) ? { param: value.slice(MARK.length) } : { constant: value }));
    return { sql: query.sql, slots, name: `sigil_${createHash('sha256').update(query.sql).digest('hex').slice(0, 24)}` };
  };
  return async (db, params) => {
    const adapter = db.getExecutor().adapter;
    let entry = compiled.get(adapter);
    if (!entry) compiled.set(adapter, (entry = compile(db)));
    const values = entry.slots.map((slot) => {
      if ('constant' in slot) return slot.constant;
      if (!(slot.param in params)) throw new SigilError('broker.query_parameter_missing', `prepared query parameter "${slot.param}" was not given`);
      return params[slot.param];
    });
    const pool = db.isTransaction ? undefined : pools.get(db);
    if (pool) return (await pool.query<Row & pg.QueryResultRow>({ name: entry.name, text: entry.sql, values })).rows;
    const result = await db.executeQuery<Row>(CompiledQuery.raw(entry.sql, values));
    return result.rows;
  };
}
