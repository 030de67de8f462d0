import type { Kysely, Transaction } from 'kysely';
import { appendAudit, type AuditInput } from './audit.ts';
import type { AuditBatcher } from './audit-batch.ts';
import type { EventBus } from './events.ts';
import type { Logger } from './logger.ts';
import type { MasterKey } from './master-key.ts';
import type { Metrics } from './metrics.ts';
import type { SigningKeys } from './signing-keys.ts';
import type { BrokerDatabase } from './store/database.ts';
import type { Database } from './store/schema.ts';
import type { EarAlgorithm } from '../policy/ear.ts';
import { SigilError } from '../core/errors.ts';
import type { EvidenceKindEntry } from '../evidence/registry.ts';
import type { IssuedEars } from './ear-jws.ts';

/** Everything a request handler needs, made once per broker process. */
export interface BrokerConfig {
  /** EAR lifetime; the lease on every secret released with it. */
  earTtlSeconds: number;
  nonceTtlSeconds: number;
  earAlg: EarAlgorithm;
  /** How often each replica looks for events (revocations) other replicas wrote. */
  eventPollMs: number;
  /** Keep attestation records (evidence, trace) this long, for dry runs and forensics. */
  attestationRetentionMs: number;
}

export interface BrokerContext {
  database: BrokerDatabase;
  db: Kysely<Database>;
  master: MasterKey;
  keys: SigningKeys;
  events: EventBus;
  /** Decisions (attestations, releases) are recorded through here: group commit. */
  audit: AuditBatcher;
  logger: Logger;
  metrics: Metrics;
  config: BrokerConfig;
  /** EARs this process signed (ear-jws.ts): their release skips a signature verification. */
  issuedEars: IssuedEars;
  /** This broker's evidence kinds (src/evidence/kinds.ts), bound to its collateral provider. */
  kinds: ReadonlyMap<string, EvidenceKindEntry>;
  now(): number;
  replicaId: string;
}

/** The evidence kind by name, or broker.invalid_request naming the kinds this broker supports. */
export function kindOf(ctx: Pick<BrokerContext, 'kinds'>, kind: string): EvidenceKindEntry {
  const entry = ctx.kinds.get(kind);
  if (!entry) throw new SigilError('evidence.kind_unknown', `evidence kind "${kind}" is not supported here`, { kind, supported: [...ctx.kinds.keys()] });
  return entry;
}

/** Run `work` and its audit entry in one transaction: the change and its record commit together. */
export async function transact<T>(ctx: BrokerContext, audit: AuditInput | ((result: T) => AuditInput) | undefined, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return ctx.db.transaction().execute(async (trx) => {
    const result = await work(trx);
    if (audit) {
      const entry = typeof audit === 'function' ? audit(result) : audit;
      await appendAudit(trx, { dialect: ctx.database.dialect, macKey: ctx.master.derive('audit-mac'), now: ctx.now }, entry);
    }
    return result;
  });
}
