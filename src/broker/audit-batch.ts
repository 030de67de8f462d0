import type { Kysely, Transaction } from 'kysely';
import { appendAuditEntries, type AuditContext, type AuditInput } from './audit.ts';
import type { Database } from './store/schema.ts';

/**
 * Group commit for the hot path's writes: decisions (attestations, releases) with their audit
 * entries, and the nonce rows of challenges and attestations. Callers queue their work and wait;
 * one transaction at a time runs everything queued so far in order, then appends the audit
 * entries under one lock of the chain's head. Each caller resumes only after its batch committed,
 * so no nonce is handed out before it is stored, no nonce is used twice (the delete that returns
 * the row owns it, on any replica), and no decision is answered before it is recorded. A commit
 * per batch instead of one per write is what lets SQLite and PostgreSQL keep up under load. A
 * failing batch is retried one item at a time, so one bad item fails only its own caller.
 */
interface Pending {
  entry?: AuditInput;
  work?: (trx: Transaction<Database>) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  result?: unknown;
}

const MAX_BATCH = 200;

export class AuditBatcher {
  readonly #db: Kysely<Database>;
  readonly #context: AuditContext;
  #queue: Pending[] = [];
  #flushing?: Promise<void>;

  constructor(db: Kysely<Database>, context: AuditContext) {
    this.#db = db;
    this.#context = context;
  }

  /** Record a decision: its audit entry, and the rows that go with it, in one commit. */
  record(entry: AuditInput, work?: (trx: Transaction<Database>) => Promise<void>): Promise<void> {
    return this.#enqueue({ entry, work }) as Promise<void>;
  }

  /** A write with no audit entry of its own (nonces), committed with the next batch. */
  write<T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.#enqueue({ work }) as Promise<T>;
  }

  #enqueue(item: Omit<Pending, 'resolve' | 'reject'>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...item, resolve, reject });
      this.#flushing ??= this.#drain();
    });
  }

  /** Wait for everything queued so far (shutdown). */
  async settle(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #drain(): Promise<void> {
    // Let the requests that arrived in this turn of the event loop queue their writes first:
    // node:sqlite runs a whole transaction synchronously, so without this pause every batch
    // would hold one item (PostgreSQL batches by itself while a commit is in flight).
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        try {
          await this.#commit(batch);
          for (const p of batch) p.resolve(p.result);
        } catch {
          for (const p of batch) {
            await this.#commit([p]).then(() => p.resolve(p.result), p.reject);
          }
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #commit(batch: Pending[]): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      for (const p of batch) p.result = await p.work?.(trx);
      const entries = batch.filter((p) => p.entry !== undefined).map((p) => p.entry!);
      if (entries.length > 0) await appendAuditEntries(trx, this.#context, entries);
    });
  }
}
