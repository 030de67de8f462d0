import { createHash, createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { canonicalJson } from './canonical-json.ts';
import { SigilError } from '../core/errors.ts';
import { auditHead, auditHeadForUpdate, updateAuditHead } from './store/queries.ts';
import type { Database } from './store/schema.ts';

/**
 * The audit log: every attestation, release and admin change, appended in the same transaction as
 * the change itself, in one hash chain shared by all replicas.
 *
 *   head     = SHA-256(prev_hash ‖ "\n" ‖ canonical{seq, at, type, tenant, actor} ‖ "\n" ‖ data)
 *   mac      = HMAC-SHA256(K_audit, hash)          K_audit = HKDF(master key, "sigil audit-mac v1")
 *   audit_head row = {seq, hash, mac = HMAC(K_audit, "head|seq|hash")}
 *
 * Appends lock the head row (SELECT … FOR UPDATE on PostgreSQL; SQLite serialises writers), so
 * sequence numbers have no gaps and every entry links to the one before. Editing an entry breaks
 * its hash; deleting one breaks the sequence and the next entry's link; rewriting the chain
 * needs K_audit; cutting the tail breaks the head's MAC.
 */
export interface AuditInput {
  type: string;
  tenant?: string | null;
  actor: string;
  data: Record<string, unknown>;
}

export interface AuditContext {
  dialect: 'sqlite' | 'postgres';
  macKey: Buffer;
  now(): number;
}

export const GENESIS_HASH = '0'.repeat(64);

export function entryHash(prevHash: string, entry: { seq: number; at: number; type: string; tenant: string | null; actor: string }, dataText: string): string {
  const header = canonicalJson({ seq: entry.seq, at: entry.at, type: entry.type, tenant: entry.tenant, actor: entry.actor });
  return createHash('sha256').update(`${prevHash}\n${header}\n${dataText}`).digest('hex');
}

/** HMAC keys as KeyObjects, made once: createHmac with a raw key builds one per call (5x the cost). */
const macKeys = new WeakMap<Buffer, KeyObject>();

function mac(key: Buffer, text: string): string {
  let keyObject = macKeys.get(key);
  if (!keyObject) macKeys.set(key, (keyObject = createSecretKey(key)));
  return createHmac('sha256', keyObject).update(text).digest('hex');
}

/** Rows per INSERT: nine columns each, far below either engine's parameter limit. */
const INSERT_CHUNK = 100;

/**
 * Append entries in order under one lock of the head: one read of the head, the entries
 * inserted in multi-row statements, one update of the head. The chain is the same as appending
 * them one by one (what `sigil audit verify` checks); the work per entry is only its hash and MAC.
 */
export async function appendAuditEntries(trx: Transaction<Database>, context: AuditContext, inputs: AuditInput[]): Promise<number> {
  const [head] = await (context.dialect === 'postgres' ? auditHeadForUpdate : auditHead)(trx, {});
  if (!head) throw new SigilError('broker.audit_head_missing', 'the audit chain head record is missing');
  let seq = Number(head.seq);
  let prev = head.hash;
  const rows: Database['audit_log'][] = [];
  for (const input of inputs) {
    seq += 1;
    const at = context.now();
    const tenant = input.tenant ?? null;
    const dataText = canonicalJson(input.data);
    const hash = entryHash(prev, { seq, at, type: input.type, tenant, actor: input.actor }, dataText);
    rows.push({ seq, at, type: input.type, tenant, actor: input.actor, data: dataText, prev_hash: prev, hash, mac: mac(context.macKey, hash) });
    prev = hash;
  }
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) await trx.insertInto('audit_log').values(rows.slice(i, i + INSERT_CHUNK)).execute();
  await updateAuditHead(trx, { seq, hash: prev, mac: mac(context.macKey, `head|${seq}|${prev}`) });
  return seq;
}

export async function appendAudit(trx: Transaction<Database>, context: AuditContext, input: AuditInput): Promise<number> {
  return appendAuditEntries(trx, context, [input]);
}

export interface AuditProblem {
  seq: number;
  problem: string;
}

export interface AuditVerification {
  ok: boolean;
  entries: number;
  lastSeq: number;
  headSeq: number;
  macChecked: boolean;
  problems: AuditProblem[];
}

function sameHex(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** Walk the whole chain in seq order (pages of 1,000) and report every break found. */
export async function verifyAuditChain(db: Kysely<Database>, macKey?: Buffer): Promise<AuditVerification> {
  const problems: AuditProblem[] = [];
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let entries = 0;
  let lastSeq = 0;
  for (;;) {
    const page = await db.selectFrom('audit_log').selectAll().where('seq', '>=', expectedSeq).orderBy('seq').limit(1000).execute();
    if (page.length === 0) break;
    for (const row of page) {
      const seq = Number(row.seq);
      if (seq !== expectedSeq) {
        problems.push({ seq: expectedSeq, problem: `entries ${expectedSeq}..${seq - 1} are missing (deleted)` });
        prevHash = row.prev_hash; // resynchronise so later entries are still checked
      }
      if (!sameHex(row.prev_hash, prevHash)) problems.push({ seq, problem: 'does not link to the entry before it (an entry before it was edited or removed)' });
      const hash = entryHash(row.prev_hash, { seq, at: Number(row.at), type: row.type, tenant: row.tenant, actor: row.actor }, row.data);
      if (!sameHex(hash, row.hash)) problems.push({ seq, problem: 'its content does not match its hash (edited)' });
      else if (macKey && !sameHex(mac(macKey, row.hash), row.mac)) problems.push({ seq, problem: 'its MAC does not verify (rewritten without the master key)' });
      prevHash = row.hash;
      expectedSeq = seq + 1;
      lastSeq = seq;
      entries++;
    }
  }
  const head = await db.selectFrom('audit_head').selectAll().where('id', '=', 1).executeTakeFirst();
  const headSeq = head ? Number(head.seq) : -1;
  if (!head) problems.push({ seq: 0, problem: 'the chain head record is missing' });
  else {
    if (headSeq !== lastSeq) problems.push({ seq: lastSeq, problem: `the head says ${headSeq} entries but the last entry is ${lastSeq} (entries cut from the end)` });
    else if (headSeq > 0 && !sameHex(head.hash, prevHash)) problems.push({ seq: lastSeq, problem: 'the head does not name the last entry' });
    if (macKey && headSeq > 0 && !sameHex(mac(macKey, `head|${headSeq}|${head.hash}`), head.mac)) problems.push({ seq: headSeq, problem: 'the head MAC does not verify' });
  }
  return { ok: problems.length === 0, entries, lastSeq, headSeq, macChecked: macKey !== undefined, problems };
}
