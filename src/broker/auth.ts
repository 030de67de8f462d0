import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { SigilError } from '../core/errors.ts';
import { tokenByHash } from './store/queries.ts';
import type { Database } from './store/schema.ts';

/**
 * Admin API authentication: bearer tokens "sigil_<43 base64url chars>" (256 random bits), stored
 * only as SHA-256 (a token this random needs no slow hash). Roles:
 *   admin         everything, including tenants and tokens
 *   tenant-admin  read and change one tenant's devices, policies, resources, revocations
 *   auditor       read everything (or one tenant), the audit log and the event stream
 *   verifier      POST /v1/verify for one tenant (a relying party holding its own secrets)
 * There is no anonymous or allow-all mode: the first start prints one bootstrap admin token.
 */
export const ROLES = ['admin', 'tenant-admin', 'auditor', 'verifier'] as const;
export type Role = (typeof ROLES)[number];

export interface Principal {
  tokenId: string;
  role: Role;
  tenant: string | null;
  name: string;
}

export type Action = 'read' | 'write' | 'audit' | 'verify' | 'manage';

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newToken(): string {
  return `sigil_${randomBytes(32).toString('base64url')}`;
}

export function bearer(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

export async function authenticate(db: Kysely<Database>, header: string | undefined): Promise<Principal> {
  const token = bearer(header);
  if (!token) throw new SigilError('broker.unauthorized', 'this endpoint needs an admin bearer token', { status: 401 });
  const [row] = await tokenByHash(db, { hash: hashToken(token) });
  if (!row || row.revoked_at !== null) throw new SigilError('broker.unauthorized', 'the bearer token is not valid', { status: 401 });
  return { tokenId: row.id, role: row.role as Role, tenant: row.tenant, name: row.name };
}

/** Throws broker.forbidden unless the principal's role allows `action` on `tenant`. */
export function authorize(principal: Principal, action: Action, tenant?: string): void {
  const ownTenant = principal.tenant === null || principal.tenant === tenant;
  const allowed =
    principal.role === 'admin' ||
    (principal.role === 'tenant-admin' && tenant !== undefined && principal.tenant === tenant && (action === 'read' || action === 'write' || action === 'verify')) ||
    (principal.role === 'auditor' && (action === 'read' || action === 'audit') && ownTenant) ||
    (principal.role === 'verifier' && action === 'verify' && tenant !== undefined && principal.tenant === tenant);
  if (!allowed) {
    throw new SigilError('broker.forbidden', `role ${principal.role}${principal.tenant ? ` of tenant ${principal.tenant}` : ''} may not ${action}${tenant ? ` in tenant ${tenant}` : ''}`, {
      status: 403,
      role: principal.role,
      action,
    });
  }
}

export async function createToken(db: Kysely<Database>, input: { role: Role; tenant: string | null; name: string }, now: number): Promise<{ id: string; token: string }> {
  if (input.role !== 'admin' && input.role !== 'auditor' && !input.tenant) {
    throw new SigilError('broker.invalid_request', `a ${input.role} token needs a tenant`);
  }
  const token = newToken();
  const id = randomUUID();
  await db.insertInto('admin_tokens').values({ id, token_hash: hashToken(token), role: input.role, tenant: input.tenant, name: input.name, created_at: now, revoked_at: null }).execute();
  return { id, token };
}

/**
 * First start only: make the bootstrap admin token. The meta row is inserted first and its
 * unique key decides which replica makes it when several start on one fresh database.
 */
export async function bootstrapToken(db: Kysely<Database>, now: number): Promise<string | undefined> {
  return db.transaction().execute(async (trx) => {
    const inserted = await trx.insertInto('meta').values({ key: 'bootstrap', value: new Date(now).toISOString() }).onConflict((oc) => oc.column('key').doNothing()).executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return undefined;
    const { token } = await createToken(trx, { role: 'admin', tenant: null, name: 'bootstrap' }, now);
    return token;
  });
}
