import { SigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { checkAkPublic } from '../../evidence/tpm/kind.ts';
import { unmarshal } from '../../tpm/marshal/codec.ts';
import { objectName } from '../../tpm/names.ts';
import { TPMT_PUBLIC } from '../../tpm/structures/public.ts';
import { kindOf, transact } from '../context.ts';
import { createDevice } from '../enrol.ts';
import { iso, readJson, type RouteModule } from '../http.ts';
import { encryptEnvelope } from '../master-key.ts';
import { revoke } from '../revocation.ts';
import { DevicePutRequest, parseBody, PathName, ResourcePutRequest, RevokeRequest } from '../schemas.ts';
import { actor, allow, name } from './admin-tenants.ts';

function deviceJson(r: { tenant: string; id: string; kind: string; status: string; material: string; identity: string; created_at: number; updated_at: number }) {
  return { tenant: r.tenant, deviceId: r.id, kind: r.kind, status: r.status, material: JSON.parse(r.material), identity: JSON.parse(r.identity), createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) };
}

function resourcePath(value: string): string {
  const result = PathName.safeParse(value);
  if (!result.success) throw new SigilError('broker.invalid_request', `"${value}" is not a valid resource path`, { status: 400 });
  return result.data;
}

/** Devices (and their revocation), secret resources, attestation records. */
export const adminDeviceRoutes: RouteModule = (app, ctx) => {
  const base = '/v1/admin/tenants/:tenant';

  app.get(`${base}/devices`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const rows = await ctx.db.selectFrom('devices').selectAll().where('tenant', '=', tenant).orderBy('id').execute();
    return c.json({ items: rows.map(deviceJson) });
  });
  app.get(`${base}/devices/:id`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const r = await ctx.db.selectFrom('devices').selectAll().where('tenant', '=', tenant).where('id', '=', c.req.param('id')).executeTakeFirst();
    if (!r) throw new SigilError('broker.device_not_found', `device ${c.req.param('id')} is not enrolled`, { status: 404 });
    return c.json(deviceJson(r));
  });
  // An administrator vouches for a device directly (e.g. an AK recorded at manufacturing).
  app.put(`${base}/devices/:id`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const id = name(c.req.param('id'), 'device id');
    const principal = allow(c, 'write', tenant);
    const body = parseBody(DevicePutRequest, await readJson(c));
    kindOf(ctx, body.kind);
    const material = { ...body.material };
    if (body.kind === 'tpm') {
      if (!material.akPublic) throw new SigilError('broker.invalid_request', 'a TPM device needs material.akPublic (hex TPMT_PUBLIC)', { status: 400 });
      const akPublic = unmarshal(TPMT_PUBLIC, Buffer.from(material.akPublic, 'hex'), 'broker.ak_public_invalid');
      checkAkPublic(akPublic);
      material.akName = Buffer.from(await objectName(akPublic)).toString('hex');
    }
    const tenantRow = await ctx.db.selectFrom('tenants').select('id').where('id', '=', tenant).executeTakeFirst();
    if (!tenantRow) throw new SigilError('broker.tenant_not_found', `tenant ${tenant} does not exist`, { status: 404 });
    return c.json(await createDevice(ctx, tenant, id, body.kind, material, { method: 'admin', ...body.identity }, actor(principal)), 200);
  });
  app.delete(`${base}/devices/:id`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const id = c.req.param('id');
    const principal = allow(c, 'write', tenant);
    await transact(ctx, { type: 'device.deleted', tenant, actor: actor(principal), data: { deviceId: id } }, async (trx) => {
      const done = await trx.deleteFrom('devices').where('tenant', '=', tenant).where('id', '=', id).executeTakeFirst();
      if (Number(done.numDeletedRows) === 0) throw new SigilError('broker.device_not_found', `device ${id} is not enrolled`, { status: 404 });
    });
    return c.body(null, 204);
  });
  app.post(`${base}/devices/:id/revoke`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const principal = allow(c, 'write', tenant);
    const body = parseBody(RevokeRequest, await readJson(c).catch(() => ({})));
    return c.json(await revoke(ctx, actor(principal), { tenant, subjectType: 'device', subject: c.req.param('id'), reason: body.reason }), 201);
  });
  app.post(`${base}/devices/:id/reinstate`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const id = c.req.param('id');
    const principal = allow(c, 'write', tenant);
    await transact(ctx, { type: 'device.reinstated', tenant, actor: actor(principal), data: { deviceId: id } }, async (trx) => {
      const done = await trx.updateTable('devices').set({ status: 'active', updated_at: ctx.now() }).where('tenant', '=', tenant).where('id', '=', id).executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) throw new SigilError('broker.device_not_found', `device ${id} is not enrolled`, { status: 404 });
    });
    return c.json({ deviceId: id, status: 'active' });
  });
  app.post(`${base}/aks/:akName/revoke`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const principal = allow(c, 'write', tenant);
    const akName = c.req.param('akName').toLowerCase();
    if (!/^[0-9a-f]{68}$|^[0-9a-f]{44}$|^[0-9a-f]{100}$|^[0-9a-f]{132}$/.test(akName)) throw new SigilError('broker.invalid_request', 'an AK name is hex: nameAlg (2 bytes) ‖ digest', { status: 400 });
    const body = parseBody(RevokeRequest, await readJson(c).catch(() => ({})));
    return c.json(await revoke(ctx, actor(principal), { tenant, subjectType: 'ak', subject: akName, reason: body.reason }), 201);
  });
  app.get(`${base}/revocations`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const rows = await ctx.db.selectFrom('revocations').selectAll().where('tenant', '=', tenant).orderBy('revoked_at').execute();
    return c.json({ items: rows.map((r) => ({ id: r.id, subjectType: r.subject_type, subject: r.subject, reason: r.reason, revokedAt: iso(r.revoked_at) })) });
  });

  app.get(`${base}/resources`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const rows = await ctx.db.selectFrom('resources').select(['path', 'version', 'release_policy', 'updated_at']).where('tenant', '=', tenant).orderBy('path').execute();
    return c.json({ items: rows.map((r) => ({ path: r.path, version: r.version, releasePolicy: JSON.parse(r.release_policy), updatedAt: iso(r.updated_at) })) });
  });
  // Metadata only: a secret value never leaves the broker except as a JWE to an attested key.
  app.get(`${base}/resources/:path{.+}`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const path = resourcePath(c.req.param('path'));
    const r = await ctx.db.selectFrom('resources').select(['path', 'version', 'release_policy', 'updated_at']).where('tenant', '=', tenant).where('path', '=', path).executeTakeFirst();
    if (!r) throw new SigilError('broker.resource_not_found', `resource ${path} does not exist`, { status: 404 });
    return c.json({ path: r.path, version: r.version, releasePolicy: JSON.parse(r.release_policy), updatedAt: iso(r.updated_at) });
  });
  app.put(`${base}/resources/:path{.+}`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const path = resourcePath(c.req.param('path'));
    const principal = allow(c, 'write', tenant);
    const body = parseBody(ResourcePutRequest, await readJson(c));
    const value = body.value !== undefined ? new TextEncoder().encode(body.value) : fromBase64(body.valueBase64!);
    const now = ctx.now();
    const version = await transact(ctx, (v: number) => ({ type: 'resource.put', tenant, actor: actor(principal), data: { path, version: v, bytes: value.length, releasePolicy: body.releasePolicy } }), async (trx) => {
      const tenantRow = await trx.selectFrom('tenants').select('id').where('id', '=', tenant).executeTakeFirst();
      if (!tenantRow) throw new SigilError('broker.tenant_not_found', `tenant ${tenant} does not exist`, { status: 404 });
      const existing = await trx.selectFrom('resources').select('version').where('tenant', '=', tenant).where('path', '=', path).executeTakeFirst();
      const values = { tenant, path, envelope: encryptEnvelope(ctx.master, value, `resource|${tenant}|${path}`), release_policy: JSON.stringify(body.releasePolicy), version: (existing?.version ?? 0) + 1, updated_at: now };
      if (existing) await trx.updateTable('resources').set(values).where('tenant', '=', tenant).where('path', '=', path).execute();
      else await trx.insertInto('resources').values(values).execute();
      return values.version;
    });
    value.fill(0);
    return c.json({ path, version }, version === 1 ? 201 : 200);
  });
  app.delete(`${base}/resources/:path{.+}`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const path = resourcePath(c.req.param('path'));
    const principal = allow(c, 'write', tenant);
    await transact(ctx, { type: 'resource.deleted', tenant, actor: actor(principal), data: { path } }, async (trx) => {
      const done = await trx.deleteFrom('resources').where('tenant', '=', tenant).where('path', '=', path).executeTakeFirst();
      if (Number(done.numDeletedRows) === 0) throw new SigilError('broker.resource_not_found', `resource ${path} does not exist`, { status: 404 });
    });
    return c.body(null, 204);
  });

  app.get(`${base}/attestations`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const limit = Math.min(Number(c.req.query('limit') ?? 50) || 50, 500);
    const rows = await ctx.db.selectFrom('attestations').select(['id', 'kind', 'device_id', 'policy_id', 'status', 'at']).where('tenant', '=', tenant).orderBy('at', 'desc').limit(limit).execute();
    return c.json({ items: rows.map((r) => ({ id: r.id, kind: r.kind, deviceId: r.device_id, policyId: r.policy_id, status: r.status, at: iso(r.at) })) });
  });
  app.get(`${base}/attestations/:id`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const r = await ctx.db.selectFrom('attestations').selectAll().where('tenant', '=', tenant).where('id', '=', c.req.param('id')).executeTakeFirst();
    if (!r) throw new SigilError('broker.attestation_not_found', `attestation ${c.req.param('id')} is not stored`, { status: 404 });
    return c.json({ id: r.id, kind: r.kind, deviceId: r.device_id, policyId: r.policy_id, status: r.status, at: iso(r.at), evidence: JSON.parse(r.evidence), trace: JSON.parse(r.trace) });
  });
};
