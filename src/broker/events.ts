import { createHmac } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from './logger.ts';
import { decryptEnvelope, type MasterKey } from './master-key.ts';
import type { Database } from './store/schema.ts';

/**
 * Notifications (revocations, …) to SSE subscribers and webhooks on every replica within 2 s.
 * An event is a row written in the same transaction as the change. The replica that made it
 * delivers it at once after commit (SSE + webhooks); every replica polls the table every
 * `pollMs` (default 500 ms) for rows it has not seen, which reaches SSE clients connected to
 * other replicas. Polling reads a time window and de-duplicates by id, because PostgreSQL
 * sequence values can commit out of order.
 */
export interface BrokerEvent {
  id: number;
  tenant: string;
  type: string;
  data: Record<string, unknown>;
  createdAt: number;
}

type Listener = (event: BrokerEvent) => void;

const WINDOW_MS = 10_000;

export class EventBus {
  readonly #db: Kysely<Database>;
  readonly #master: MasterKey;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #pollMs: number;
  readonly #listeners = new Set<{ tenant?: string; listener: Listener }>();
  readonly #seen = new Map<number, number>();
  #timer?: NodeJS.Timeout;
  #polling = false;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(options: { db: Kysely<Database>; master: MasterKey; logger: Logger; now: () => number; pollMs: number }) {
    this.#db = options.db;
    this.#master = options.master;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#pollMs = options.pollMs;
  }

  start(): void {
    this.#timer = setInterval(() => void this.#poll(), this.#pollMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#listeners.clear();
    await Promise.allSettled([...this.#pending]);
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  /** Only events of `tenant` (or all, for admin and auditor streams). */
  subscribe(tenant: string | undefined, listener: Listener): () => void {
    const entry = { tenant, listener };
    this.#listeners.add(entry);
    return () => this.#listeners.delete(entry);
  }

  /** Write the event inside the caller's transaction; call deliver() with the result after commit. */
  async record(trx: Transaction<Database>, tenant: string, type: string, data: Record<string, unknown>): Promise<BrokerEvent> {
    const createdAt = this.#now();
    const row = await trx.insertInto('events').values({ tenant, type, data: JSON.stringify(data), created_at: createdAt }).returning('id').executeTakeFirstOrThrow();
    return { id: Number(row.id), tenant, type, data, createdAt };
  }

  /** After commit, on the replica that made the change: SSE here now, webhooks from here. */
  deliver(event: BrokerEvent): void {
    if (!this.#markSeen(event)) return;
    this.#fanOut(event);
    const sending = this.#sendWebhooks(event).catch((error) => this.#logger.warn('webhook delivery failed', { event: event.id, error: String(error) }));
    this.#pending.add(sending);
    void sending.finally(() => this.#pending.delete(sending));
  }

  #markSeen(event: BrokerEvent): boolean {
    if (this.#seen.has(event.id)) return false;
    this.#seen.set(event.id, event.createdAt);
    return true;
  }

  #fanOut(event: BrokerEvent): void {
    for (const { tenant, listener } of this.#listeners) {
      if (tenant !== undefined && tenant !== event.tenant) continue;
      try {
        listener(event);
      } catch (error) {
        this.#logger.warn('event listener failed', { error: String(error) });
      }
    }
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const since = this.#now() - WINDOW_MS;
      const rows = await this.#db.selectFrom('events').selectAll().where('created_at', '>=', since).orderBy('id').execute();
      for (const row of rows) {
        const event: BrokerEvent = { id: Number(row.id), tenant: row.tenant, type: row.type, data: JSON.parse(row.data), createdAt: Number(row.created_at) };
        if (this.#markSeen(event)) this.#fanOut(event);
      }
      for (const [id, at] of this.#seen) if (at < since - WINDOW_MS) this.#seen.delete(id);
    } catch (error) {
      this.#logger.warn('event poll failed', { error: String(error) });
    } finally {
      this.#polling = false;
    }
  }

  /**
   * POST the event as JSON to the tenant's webhooks and the global ones (tenant "*"), signed:
   * Sigil-Signature: t=<unix ms>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>. Three tries.
   */
  async #sendWebhooks(event: BrokerEvent): Promise<void> {
    const hooks = await this.#db.selectFrom('webhooks').selectAll().where('tenant', 'in', [event.tenant, '*']).execute();
    const body = JSON.stringify({ id: event.id, type: event.type, tenant: event.tenant, createdAt: new Date(event.createdAt).toISOString(), data: event.data });
    await Promise.all(
      hooks.map(async (hook) => {
        const secret = decryptEnvelope(this.#master, hook.secret_envelope, `webhook|${hook.tenant}|${hook.id}`);
        for (let attempt = 0; attempt < 3; attempt++) {
          const t = Date.now();
          const signature = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
          try {
            const response = await fetch(hook.url, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'sigil-signature': `t=${t},v1=${signature}`, 'sigil-event': event.type },
              body,
              signal: AbortSignal.timeout(2000),
            });
            await response.body?.cancel();
            if (response.ok) return;
          } catch {
            // retried below
          }
          await new Promise((resolve) => setTimeout(resolve, 250 * 4 ** attempt));
        }
        this.#logger.warn('webhook gave up', { tenant: hook.tenant, webhook: hook.id, event: event.id });
      }),
    );
  }
}
