import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { SigilError } from '../core/errors.ts';
import { transact, type BrokerContext } from './context.ts';
import type { BrokerEvent } from './events.ts';
import { akRevocation, revocationSince } from './store/queries.ts';
import type { Database } from './store/schema.ts';

/**
 * Revocation of a tenant, a device or an attesting key (TPM AK by name). A revocation row is
 * permanent: every EAR issued at or before it is refused from then on, on every replica, because
 * each resource request looks the row up (one indexed query) rather than trusting a cache. The
 * device or tenant status flips too, so new attestations are refused; reinstating flips the status
 * back without reviving the old tokens.
 */
export type SubjectType = 'tenant' | 'device' | 'ak';

export interface RevocationRow {
  subjectType: SubjectType;
  subject: string;
  reason: string;
  revokedAt: number;
}

export async function revoke(
  ctx: BrokerContext,
  actor: string,
  input: { tenant: string; subjectType: SubjectType; subject: string; reason: string },
): Promise<{ id: string; revokedAt: number }> {
  const revokedAt = ctx.now();
  const id = randomUUID();
  let event: BrokerEvent | undefined;
  await transact(ctx, { type: 'revocation', tenant: input.tenant, actor, data: { id, subjectType: input.subjectType, subject: input.subject, reason: input.reason } }, async (trx) => {
    if (input.subjectType === 'tenant') {
      const updated = await trx.updateTable('tenants').set({ status: 'revoked', updated_at: revokedAt }).where('id', '=', input.tenant).executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) throw new SigilError('broker.tenant_not_found', `tenant ${input.tenant} does not exist`);
    } else if (input.subjectType === 'device') {
      const updated = await trx.updateTable('devices').set({ status: 'revoked', updated_at: revokedAt }).where('tenant', '=', input.tenant).where('id', '=', input.subject).executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) throw new SigilError('broker.device_not_found', `device ${input.subject} is not enrolled in tenant ${input.tenant}`);
    }
    await trx.insertInto('revocations').values({ id, tenant: input.tenant, subject_type: input.subjectType, subject: input.subject, reason: input.reason, revoked_at: revokedAt }).execute();
    event = await ctx.events.record(trx, input.tenant, 'revocation', { id, subjectType: input.subjectType, subject: input.subject, reason: input.reason, revokedAt: new Date(revokedAt).toISOString() });
  });
  ctx.events.deliver(event!);
  ctx.logger.info('revoked', { tenant: input.tenant, subjectType: input.subjectType, subject: input.subject, actor });
  return { id, revokedAt };
}

/**
 * The first revocation that applies to a token issued at `issuedAtMs` for this tenant, device and
 * key: one made at or after the token's issue time (second resolution, rounded to refuse).
 */
export async function revocationFor(db: Kysely<Database>, tenant: string, subjects: { device?: string; ak?: string }, issuedAtMs: number): Promise<RevocationRow | undefined> {
  const [row] = await revocationSince(db, { tenant, issuedAt: issuedAtMs, ...(subjects.device ? { device: subjects.device } : {}), ...(subjects.ak ? { ak: subjects.ak } : {}) });
  return row ? { subjectType: row.subject_type as SubjectType, subject: row.subject, reason: row.reason, revokedAt: Number(row.revoked_at) } : undefined;
}

/** Whether an attesting key was ever revoked in this tenant (AK revocation outlives re-enrolment). */
export async function akRevoked(db: Kysely<Database>, tenant: string, akName: string): Promise<boolean> {
  return (await akRevocation(db, { tenant, ak: akName })).length > 0;
}
