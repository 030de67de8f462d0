import type { Kysely } from 'kysely';
import { prepared } from './prepared.ts';
import type { Database } from './schema.ts';

/**
 * The queries every attestation and release runs (prepared.ts): one definition each, shared by
 * SQLite and PostgreSQL. Everything else in the broker builds its queries with kysely as usual.
 */
type Row<T extends keyof Database> = Database[T];

export const tenantById = prepared<{ id: string }, Row<'tenants'>>((db, p) => db.selectFrom('tenants').selectAll().where('id', '=', p.id));

export const insertNonce = prepared<Row<'nonces'>, never>((db, p) =>
  db.insertInto('nonces').values({ nonce: p.nonce, tenant: p.tenant, kind: p.kind, device_id: p.device_id, expires_at: p.expires_at }),
);

/** Whoever deletes the row owns the nonce, on any replica. */
export const takeNonce = prepared<{ nonce: string }, Row<'nonces'>>((db, p) => db.deleteFrom('nonces').where('nonce', '=', p.nonce).returningAll());

export const deviceById = prepared<{ tenant: string; id: string }, Row<'devices'>>((db, p) => db.selectFrom('devices').selectAll().where('tenant', '=', p.tenant).where('id', '=', p.id));

export const akRevocation = prepared<{ tenant: string; ak: string }, { id: string }>((db, p) =>
  db.selectFrom('revocations').select('id').where('tenant', '=', p.tenant).where('subject_type', '=', 'ak').where('subject', '=', p.ak).limit(1),
);

export const policyById = prepared<{ tenant: string; id: string }, Row<'policies'>>((db, p) => db.selectFrom('policies').selectAll().where('tenant', '=', p.tenant).where('id', '=', p.id));

export const policiesByKind = prepared<{ tenant: string; kind: string }, Row<'policies'>>((db, p) => db.selectFrom('policies').selectAll().where('tenant', '=', p.tenant).where('kind', '=', p.kind));

export const referenceSet = prepared<{ tenant: string; name: string }, Row<'reference_values'>>((db, p) =>
  db.selectFrom('reference_values').selectAll().where('tenant', '=', p.tenant).where('name', '=', p.name),
);

export const resourceByPath = prepared<{ tenant: string; path: string }, Row<'resources'>>((db, p) => db.selectFrom('resources').selectAll().where('tenant', '=', p.tenant).where('path', '=', p.path));

export const insertAttestation = prepared<Row<'attestations'>, never>((db, p) =>
  db.insertInto('attestations').values({
    id: p.id,
    tenant: p.tenant,
    kind: p.kind,
    device_id: p.device_id,
    policy_id: p.policy_id,
    status: p.status,
    evidence: p.evidence,
    nonce: p.nonce,
    runtime_jkt: p.runtime_jkt,
    trace: p.trace,
    at: p.at,
  }),
);

export const tokenByHash = prepared<{ hash: string }, Row<'admin_tokens'>>((db, p) => db.selectFrom('admin_tokens').selectAll().where('token_hash', '=', p.hash));

type RevocationRow = Pick<Row<'revocations'>, 'subject_type' | 'subject' | 'reason' | 'revoked_at'>;

/** The first revocation at or after `issuedAt` of the tenant, and of the device and/or AK when given. */
const revocationQuery = (device: boolean, ak: boolean) =>
  prepared<{ tenant: string; issuedAt: number; device?: string; ak?: string }, RevocationRow>((db, p) =>
    db
      .selectFrom('revocations')
      .select(['subject_type', 'subject', 'reason', 'revoked_at'])
      .where('tenant', '=', p.tenant)
      .where('revoked_at', '>=', p.issuedAt)
      .where((eb) =>
        eb.or([
          eb('subject_type', '=', 'tenant'),
          ...(device ? [eb.and([eb('subject_type', '=', 'device'), eb('subject', '=', p.device!)])] : []),
          ...(ak ? [eb.and([eb('subject_type', '=', 'ak'), eb('subject', '=', p.ak!)])] : []),
        ]),
      )
      .orderBy('revoked_at')
      .limit(1),
  );

const revocationQueries = [revocationQuery(false, false), revocationQuery(false, true), revocationQuery(true, false), revocationQuery(true, true)];

export function revocationSince(db: Kysely<Database>, params: { tenant: string; issuedAt: number; device?: string; ak?: string }): Promise<RevocationRow[]> {
  return revocationQueries[(params.device ? 2 : 0) + (params.ak ? 1 : 0)](db, params);
}

export const auditHead = prepared<Record<string, never>, { seq: number; hash: string }>((db) => db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1));
export const auditHeadForUpdate = prepared<Record<string, never>, { seq: number; hash: string }>((db) => db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).forUpdate());
export const updateAuditHead = prepared<{ seq: number; hash: string; mac: string }, never>((db, p) => db.updateTable('audit_head').set({ seq: p.seq, hash: p.hash, mac: p.mac }).where('id', '=', 1));
