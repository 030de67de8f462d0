import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { appendAudit, entryHash, verifyAuditChain } from '../../src/broker/audit.ts';
import { canonicalJson } from '../../src/broker/canonical-json.ts';
import { openDatabase, type BrokerDatabase } from '../../src/broker/store/database.ts';

const key = Buffer.alloc(32, 9);
let dir: string;
let database: BrokerDatabase;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-audit-'));
  database = await openDatabase({ dataDir: dir });
  const context = { dialect: database.dialect, macKey: key, now: () => 1_700_000_000_000 };
  // Concurrent appends: the head lock makes them a gapless chain.
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => database.db.transaction().execute((trx) => appendAudit(trx, context, { type: 'test', tenant: i % 2 ? 'a' : null, actor: `t${i}`, data: { i, nested: { z: 1, a: [i] } } }))),
  );
});
after(async () => {
  await database.close();
  rmSync(dir, { recursive: true, force: true });
});

test('canonical JSON sorts keys at every level and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [3, { y: 1, x: 2 }], c: undefined } }), '{"a":{"d":[3,{"x":2,"y":1}]},"b":1}');
});

test('concurrent appends form one chain 1..n; each hash is SHA-256(prev ‖ header ‖ data)', async () => {
  const result = await verifyAuditChain(database.db, key);
  assert.deepEqual(result, { ok: true, entries: 40, lastSeq: 40, headSeq: 40, macChecked: true, problems: [] });
  const row = await database.db.selectFrom('audit_log').selectAll().where('seq', '=', 1).executeTakeFirstOrThrow();
  const header = canonicalJson({ seq: 1, at: row.at, type: row.type, tenant: row.tenant, actor: row.actor });
  assert.equal(row.hash, createHash('sha256').update(`${'0'.repeat(64)}\n${header}\n${row.data}`).digest('hex'));
});

test('a chain rewritten without the master key fails its MACs', async () => {
  // The attacker edits entry 7 and recomputes every hash after it (but cannot make MACs).
  const rows = await database.db.selectFrom('audit_log').selectAll().where('seq', '>=', 7).orderBy('seq').execute();
  let prev = rows[0].prev_hash;
  for (const row of rows) {
    const data = row.seq === 7 ? row.data.replace('"t', '"x') : row.data;
    const hash = entryHash(prev, { seq: row.seq, at: row.at, type: row.type, tenant: row.tenant, actor: row.seq === 7 ? 'forged' : row.actor }, data);
    await database.db.updateTable('audit_log').set({ data, hash, prev_hash: prev, actor: row.seq === 7 ? 'forged' : row.actor }).where('seq', '=', row.seq).execute();
    prev = hash;
  }
  await database.db.updateTable('audit_head').set({ hash: prev }).where('id', '=', 1).execute();
  const withoutKey = await verifyAuditChain(database.db);
  assert.equal(withoutKey.ok, true, 'hashes alone cannot see a full rewrite');
  const withKey = await verifyAuditChain(database.db, key);
  assert.equal(withKey.ok, false);
  assert.ok(withKey.problems.some((p) => p.seq === 7 && /MAC/.test(p.problem)));
  assert.ok(withKey.problems.some((p) => /head MAC/.test(p.problem)));
});
