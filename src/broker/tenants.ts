import { SigilError } from '../core/errors.ts';
import type { TraceEntry } from '../evidence/verifier.ts';
import type { BrokerContext } from './context.ts';
import { failedRule, refusal } from './problem.ts';

export interface TenantRecord {
  id: string;
  status: 'active' | 'revoked';
  settings: { earTtlSeconds?: number };
}

/** The tenant, or a 404; a revoked tenant is a 403 with the rule that failed. */
export async function activeTenant(ctx: BrokerContext, id: string, trace: TraceEntry[] = []): Promise<TenantRecord> {
  const row = await ctx.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new SigilError('broker.tenant_not_found', `tenant ${id} does not exist`, { status: 404 });
  if (row.status !== 'active') {
    throw refusal(403, 'broker.revoked', `tenant ${id} is revoked`, [...trace, failedRule('revocation.tenant', 'tenant.status', 'active', row.status)]);
  }
  return { id: row.id, status: 'active', settings: JSON.parse(row.settings) };
}
