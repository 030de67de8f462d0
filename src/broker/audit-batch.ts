import type { Kysely, Transaction } from 'kysely';
import { appendAudit, type AuditContext, type AuditInput } from './audit.ts';
import type { Database } from './store/schema.ts';

/**
 * Group commit for decisions (attestations, releases): callers queue an audit entry, optionally
 * with the rows that go with it, and wait; one transaction at a time appends everything queued
 * so far, taking the chain's head lock once per batch instead of once per decision. Each caller
 * resumes only after its batch committed, so no decision is answered before it is recorded. A
 * failing batch is retried one entry at a time, so one bad entry fails only its own caller.
 */
interface Pending {
  entry: AuditInput;
  work?: (trx: Transaction<Database>) => Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
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

  record(entry: AuditInput, work?: (trx: Transaction<Database>) => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ entry, work, resolve, reject });
      this.#flushing ??= this.#drain();
    });
  }

  /** Wait for everything queued so far (shutdown). */
  async settle(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        try {
          await this.#commit(batch);
          for (const p of batch) p.resolve();
        } catch {
          for (const p of batch) {
            await this.#commit([p]).then(p.resolve, p.reject);
          }
        }
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #commit(batch: Pending[]): Promise<void> {
    await this.#db.transaction().execute(async (trx) => {
      for (const p of batch) {
        await p.work?.(trx);
        await appendAudit(trx, this.#context, p.entry);
      }
    });
  }
}
