import type { Context } from 'hono';
import { SigilError } from '../../core/errors.ts';
import { parseCertificates } from '../../evidence/tpm/ek-certificate.ts';
import { authenticate, authorize, createToken, type Action, type Principal } from '../auth.ts';
import { transact, type BrokerContext } from '../context.ts';
import { header, iso, readJson, type BrokerEnv, type RouteModule } from '../http.ts';
import { encryptEnvelope } from '../master-key.ts';
import { revoke } from '../revocation.ts';
import { CaBundlePutRequest, parseBody, RevokeRequest, Tenant, TenantPutRequest, TokenCreateRequest, WebhookPutRequest } from '../schemas.ts';
import { NAME } from '../../policy/document.ts';

/** Authenticate, then check the role may `action` on the tenant in the path (if any). */
export function allow(c: Context<BrokerEnv>, action: Action, tenant?: string): Principal {
  const principal = c.get('principal');
  authorize(principal, action, tenant);
  return principal;
}

export function actor(principal: Principal): string {
  return `token:${principal.name}:${principal.tokenId.slice(0, 8)}`;
}

/** Path parameters are names too: same rules as in bodies. */
export function name(value: string | undefined, what: string): string {
  const result = (what === 'tenant' ? Tenant : NAME).safeParse(value);
  if (!result.success) throw new SigilError('broker.invalid_request', `"${value}" is not a valid ${what}`, { status: 400 });
  return result.data;
}

async function tenantExists(ctx: BrokerContext, tenant: string): Promise<void> {
  const row = await ctx.db.selectFrom('tenants').select('id').where('id', '=', tenant).executeTakeFirst();
  if (!row) throw new SigilError('broker.tenant_not_found', `tenant ${tenant} does not exist`, { status: 404 });
}

const TENANT_TABLES = ['devices', 'enrolments', 'ca_bundles', 'policies', 'reference_values', 'resources', 'nonces', 'webhooks'] as const;

export const adminTenantRoutes: RouteModule = (app, ctx) => {
  app.use('/v1/admin/*', async (c, next) => {
    c.set('principal', await authenticate(ctx.db, header(c, 'authorization')));
    await next();
  });

  app.post('/v1/admin/tokens', async (c) => {
    const principal = allow(c, 'manage');
    const body = parseBody(TokenCreateRequest, await readJson(c));
    if (body.tenant) await tenantExists(ctx, body.tenant);
    const created = await transact(ctx, (r: { id: string }) => ({ type: 'token.created', tenant: body.tenant ?? null, actor: actor(principal), data: { id: r.id, role: body.role, name: body.name } }), (trx) =>
      createToken(trx, { role: body.role, tenant: body.tenant ?? null, name: body.name }, ctx.now()),
    );
    return c.json(created, 201);
  });
  app.get('/v1/admin/tokens', async (c) => {
    allow(c, 'manage');
    const rows = await ctx.db.selectFrom('admin_tokens').select(['id', 'role', 'tenant', 'name', 'created_at', 'revoked_at']).orderBy('created_at').execute();
    return c.json({ items: rows.map((r) => ({ id: r.id, role: r.role, tenant: r.tenant, name: r.name, createdAt: iso(r.created_at), revokedAt: r.revoked_at === null ? null : iso(r.revoked_at) })) });
  });
  app.delete('/v1/admin/tokens/:id', async (c) => {
    const principal = allow(c, 'manage');
    const id = c.req.param('id');
    await transact(ctx, { type: 'token.revoked', actor: actor(principal), data: { id } }, async (trx) => {
      const done = await trx.updateTable('admin_tokens').set({ revoked_at: ctx.now() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) throw new SigilError('broker.token_not_found', `token ${id} does not exist or is already revoked`, { status: 404 });
    });
    return c.body(null, 204);
  });

  app.get('/v1/admin/tenants', async (c) => {
    const principal = allow(c, 'read', c.get('principal').tenant ?? undefined);
    let query = ctx.db.selectFrom('tenants').selectAll().orderBy('id');
    if (principal.tenant) query = query.where('id', '=', principal.tenant);
    const rows = await query.execute();
    return c.json({ items: rows.map((r) => ({ id: r.id, status: r.status, settings: JSON.parse(r.settings), createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) })) });
  });
  app.get('/v1/admin/tenants/:tenant', async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const r = await ctx.db.selectFrom('tenants').selectAll().where('id', '=', tenant).executeTakeFirst();
    if (!r) throw new SigilError('broker.tenant_not_found', `tenant ${tenant} does not exist`, { status: 404 });
    return c.json({ id: r.id, status: r.status, settings: JSON.parse(r.settings), createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) });
  });
  app.put('/v1/admin/tenants/:tenant', async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const principal = allow(c, 'manage');
    const body = parseBody(TenantPutRequest, await readJson(c));
    if (body.settings.verificationTime) {
      ctx.logger.warn('tenant verificationTime set: /v1/verify and dry runs in this tenant check certificates, CRLs and TCB data at a pinned past instant (recorded evidence, tests only)', { tenant, verificationTime: body.settings.verificationTime, actor: actor(principal) });
    }
    const now = ctx.now();
    const created = await transact(ctx, (isNew: boolean) => ({ type: isNew ? 'tenant.created' : 'tenant.updated', tenant, actor: actor(principal), data: { settings: body.settings } }), async (trx) => {
      const existing = await trx.selectFrom('tenants').select('id').where('id', '=', tenant).executeTakeFirst();
      if (existing) await trx.updateTable('tenants').set({ settings: JSON.stringify(body.settings), updated_at: now }).where('id', '=', tenant).execute();
      else await trx.insertInto('tenants').values({ id: tenant, status: 'active', settings: JSON.stringify(body.settings), created_at: now, updated_at: now }).execute();
      return !existing;
    });
    return c.json({ id: tenant, settings: body.settings }, created ? 201 : 200);
  });
  app.delete('/v1/admin/tenants/:tenant', async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const principal = allow(c, 'manage');
    await transact(ctx, { type: 'tenant.deleted', tenant, actor: actor(principal), data: {} }, async (trx) => {
      const done = await trx.deleteFrom('tenants').where('id', '=', tenant).executeTakeFirst();
      if (Number(done.numDeletedRows) === 0) throw new SigilError('broker.tenant_not_found', `tenant ${tenant} does not exist`, { status: 404 });
      for (const table of TENANT_TABLES) await trx.deleteFrom(table).where('tenant', '=', tenant).execute();
      await trx.updateTable('admin_tokens').set({ revoked_at: ctx.now() }).where('tenant', '=', tenant).where('revoked_at', 'is', null).execute();
    });
    return c.body(null, 204);
  });
  app.post('/v1/admin/tenants/:tenant/revoke', async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const principal = allow(c, 'manage');
    const body = parseBody(RevokeRequest, await readJson(c).catch(() => ({})));
    return c.json(await revoke(ctx, actor(principal), { tenant, subjectType: 'tenant', subject: tenant, reason: body.reason }), 201);
  });
  app.post('/v1/admin/tenants/:tenant/reinstate', async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const principal = allow(c, 'manage');
    await transact(ctx, { type: 'tenant.reinstated', tenant, actor: actor(principal), data: {} }, async (trx) => {
      await trx.updateTable('tenants').set({ status: 'active', updated_at: ctx.now() }).where('id', '=', tenant).execute();
    });
    return c.json({ id: tenant, status: 'active' });
  });

  app.get('/v1/admin/tenants/:tenant/ca-bundles', async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const rows = await ctx.db.selectFrom('ca_bundles').selectAll().where('tenant', '=', tenant).orderBy('name').execute();
    return c.json({ items: rows.map((r) => ({ name: r.name, purpose: r.purpose, pem: r.pem, updatedAt: iso(r.updated_at) })) });
  });
  app.put('/v1/admin/tenants/:tenant/ca-bundles/:name', async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const bundle = name(c.req.param('name'), 'bundle name');
    const principal = allow(c, 'write', tenant);
    const body = parseBody(CaBundlePutRequest, await readJson(c));
    const certificates = parseCertificates(body.pem);
    await tenantExists(ctx, tenant);
    await transact(ctx, { type: 'ca-bundle.put', tenant, actor: actor(principal), data: { name: bundle, purpose: body.purpose, subjects: certificates.map((x) => x.subject) } }, async (trx) => {
      await trx.deleteFrom('ca_bundles').where('tenant', '=', tenant).where('name', '=', bundle).execute();
      await trx.insertInto('ca_bundles').values({ tenant, name: bundle, purpose: body.purpose, pem: body.pem, updated_at: ctx.now() }).execute();
    });
    return c.json({ name: bundle, purpose: body.purpose, certificates: certificates.length });
  });
  app.delete('/v1/admin/tenants/:tenant/ca-bundles/:name', async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const bundle = name(c.req.param('name'), 'bundle name');
    const principal = allow(c, 'write', tenant);
    await transact(ctx, { type: 'ca-bundle.deleted', tenant, actor: actor(principal), data: { name: bundle } }, async (trx) => {
      const done = await trx.deleteFrom('ca_bundles').where('tenant', '=', tenant).where('name', '=', bundle).executeTakeFirst();
      if (Number(done.numDeletedRows) === 0) throw new SigilError('broker.ca_bundle_not_found', `CA bundle ${bundle} does not exist`, { status: 404 });
    });
    return c.body(null, 204);
  });

  // Webhooks: tenant "*" (admin only) receives every tenant's events.
  app.get('/v1/admin/tenants/:tenant/webhooks', async (c) => {
    const tenant = c.req.param('tenant') === '*' ? '*' : name(c.req.param('tenant'), 'tenant');
    allow(c, tenant === '*' ? 'manage' : 'read', tenant === '*' ? undefined : tenant);
    const rows = await ctx.db.selectFrom('webhooks').select(['id', 'url', 'created_at']).where('tenant', '=', tenant).orderBy('id').execute();
    return c.json({ items: rows.map((r) => ({ id: r.id, url: r.url, createdAt: iso(r.created_at) })) });
  });
  app.put('/v1/admin/tenants/:tenant/webhooks/:id', async (c) => {
    const tenant = c.req.param('tenant') === '*' ? '*' : name(c.req.param('tenant'), 'tenant');
    const id = name(c.req.param('id'), 'webhook id');
    const principal = allow(c, tenant === '*' ? 'manage' : 'write', tenant === '*' ? undefined : tenant);
    const body = parseBody(WebhookPutRequest, await readJson(c));
    if (tenant !== '*') await tenantExists(ctx, tenant);
    await transact(ctx, { type: 'webhook.put', tenant: tenant === '*' ? null : tenant, actor: actor(principal), data: { id, url: body.url } }, async (trx) => {
      await trx.deleteFrom('webhooks').where('tenant', '=', tenant).where('id', '=', id).execute();
      const secret = encryptEnvelope(ctx.master, new TextEncoder().encode(body.secret), `webhook|${tenant}|${id}`);
      await trx.insertInto('webhooks').values({ tenant, id, url: body.url, secret_envelope: secret, created_at: ctx.now() }).execute();
    });
    return c.json({ id, url: body.url });
  });
  app.delete('/v1/admin/tenants/:tenant/webhooks/:id', async (c) => {
    const tenant = c.req.param('tenant') === '*' ? '*' : name(c.req.param('tenant'), 'tenant');
    const id = name(c.req.param('id'), 'webhook id');
    const principal = allow(c, tenant === '*' ? 'manage' : 'write', tenant === '*' ? undefined : tenant);
    await transact(ctx, { type: 'webhook.deleted', tenant: tenant === '*' ? null : tenant, actor: actor(principal), data: { id } }, async (trx) => {
      const done = await trx.deleteFrom('webhooks').where('tenant', '=', tenant).where('id', '=', id).executeTakeFirst();
      if (Number(done.numDeletedRows) === 0) throw new SigilError('broker.webhook_not_found', `webhook ${id} does not exist`, { status: 404 });
    });
    return c.body(null, 204);
  });
};
