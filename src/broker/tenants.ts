import { SigilError } from '../core/errors.ts';
import type { TraceEntry } from '../evidence/verifier.ts';
import type { BrokerContext } from './context.ts';
import { failedRule, refusal } from './problem.ts';
import { tenantById } from './store/queries.ts';

export interface TenantRecord {
  id: string;
  status: 'active' | 'revoked';
  settings: { earTtlSeconds?: number; verificationTime?: string };
}

/** Parsed tenant settings by their stored text (a handful of tenants, parsed on every request otherwise). */
const settingsCache = new Map<string, TenantRecord['settings']>();

function settingsOf(text: string): TenantRecord['settings'] {
  let settings = settingsCache.get(text);
  if (!settings) {
    settings = Object.freeze(JSON.parse(text)) as TenantRecord['settings'];
    if (settingsCache.size >= 1000) settingsCache.clear();
    settingsCache.set(text, settings);
  }
  return settings;
}

/** The tenant, or a 404; a revoked tenant is a 403 with the rule that failed. */
export async function activeTenant(ctx: BrokerContext, id: string, trace: TraceEntry[] = []): Promise<TenantRecord> {
  const [row] = await tenantById(ctx.db, { id });
  if (!row) throw new SigilError('broker.tenant_not_found', `tenant ${id} does not exist`, { status: 404 });
  if (row.status !== 'active') {
    throw refusal(403, 'broker.revoked', `tenant ${id} is revoked`, [...trace, failedRule('revocation.tenant', 'tenant.status', 'active', row.status)]);
  }
  return { id: row.id, status: 'active', settings: settingsOf(row.settings) };
}
