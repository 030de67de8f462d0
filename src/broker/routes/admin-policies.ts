import { SigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { bindingFromThumbprint, checkRuntimeJwk, runtimeKeyBinding } from '../../policy/binding.ts';
import { mergeReferenceValues } from '../../policy/document.ts';
import { runAppraisal } from '../appraisal.ts';
import { kindOf, transact } from '../context.ts';
import { iso, readJson, type RouteModule } from '../http.ts';
import { DryRunRequest, parseBody, PolicyPutRequest, ReferenceValuePutRequest } from '../schemas.ts';
import { actor, allow, name } from './admin-tenants.ts';

/** Appraisal policies, reference-value sets, and dry runs of a policy against evidence. */
export const adminPolicyRoutes: RouteModule = (app, ctx) => {
  const base = '/v1/admin/tenants/:tenant';

  app.get(`${base}/policies`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const rows = await ctx.db.selectFrom('policies').selectAll().where('tenant', '=', tenant).orderBy('id').execute();
    return c.json({ items: rows.map((r) => ({ id: r.id, kind: r.kind, default: r.is_default === 1, version: r.version, updatedAt: iso(r.updated_at), document: JSON.parse(r.document) })) });
  });
  app.get(`${base}/policies/:id`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const r = await ctx.db.selectFrom('policies').selectAll().where('tenant', '=', tenant).where('id', '=', c.req.param('id')).executeTakeFirst();
    if (!r) throw new SigilError('broker.policy_not_found', `policy ${c.req.param('id')} does not exist`, { status: 404 });
    return c.json({ id: r.id, kind: r.kind, default: r.is_default === 1, version: r.version, updatedAt: iso(r.updated_at), document: JSON.parse(r.document) });
  });
  app.put(`${base}/policies/:id`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const id = name(c.req.param('id'), 'policy id');
    const principal = allow(c, 'write', tenant);
    const document = parseBody(PolicyPutRequest, await readJson(c));
    const kind = kindOf(ctx, document.kind);
    // Inline reference values must be valid on their own only when no set contributes.
    if (document.referenceValueSets.length === 0) kind.checkPolicy(mergeReferenceValues(document.referenceValues));
    const now = ctx.now();
    const version = await transact(ctx, (v: number) => ({ type: 'policy.put', tenant, actor: actor(principal), data: { id, kind: document.kind, version: v, document } }), async (trx) => {
      const tenantRow = await trx.selectFrom('tenants').select('id').where('id', '=', tenant).executeTakeFirst();
      if (!tenantRow) throw new SigilError('broker.tenant_not_found', `tenant ${tenant} does not exist`, { status: 404 });
      const existing = await trx.selectFrom('policies').select('version').where('tenant', '=', tenant).where('id', '=', id).executeTakeFirst();
      if (document.default) await trx.updateTable('policies').set({ is_default: 0 }).where('tenant', '=', tenant).where('kind', '=', document.kind).execute();
      const values = { tenant, id, kind: document.kind, document: JSON.stringify(document), is_default: document.default ? 1 : 0, version: (existing?.version ?? 0) + 1, updated_at: now };
      if (existing) await trx.updateTable('policies').set(values).where('tenant', '=', tenant).where('id', '=', id).execute();
      else await trx.insertInto('policies').values(values).execute();
      return values.version;
    });
    return c.json({ id, kind: document.kind, version }, version === 1 ? 201 : 200);
  });
  app.delete(`${base}/policies/:id`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const id = c.req.param('id');
    const principal = allow(c, 'write', tenant);
    await transact(ctx, { type: 'policy.deleted', tenant, actor: actor(principal), data: { id } }, async (trx) => {
      const done = await trx.deleteFrom('policies').where('tenant', '=', tenant).where('id', '=', id).executeTakeFirst();
      if (Number(done.numDeletedRows) === 0) throw new SigilError('broker.policy_not_found', `policy ${id} does not exist`, { status: 404 });
    });
    return c.body(null, 204);
  });

  app.get(`${base}/reference-values`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const rows = await ctx.db.selectFrom('reference_values').selectAll().where('tenant', '=', tenant).orderBy('name').execute();
    return c.json({ items: rows.map((r) => ({ name: r.name, kind: r.kind, version: r.version, updatedAt: iso(r.updated_at), document: JSON.parse(r.document) })) });
  });
  app.get(`${base}/reference-values/:name`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const r = await ctx.db.selectFrom('reference_values').selectAll().where('tenant', '=', tenant).where('name', '=', c.req.param('name')).executeTakeFirst();
    if (!r) throw new SigilError('broker.reference_values_not_found', `reference-value set ${c.req.param('name')} does not exist`, { status: 404 });
    return c.json({ name: r.name, kind: r.kind, version: r.version, updatedAt: iso(r.updated_at), document: JSON.parse(r.document) });
  });
  app.put(`${base}/reference-values/:name`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const setName = name(c.req.param('name'), 'reference-value set name');
    const principal = allow(c, 'write', tenant);
    const document = parseBody(ReferenceValuePutRequest, await readJson(c));
    kindOf(ctx, document.kind).checkPolicy(mergeReferenceValues(document.values));
    const now = ctx.now();
    const version = await transact(ctx, (v: number) => ({ type: 'reference-values.put', tenant, actor: actor(principal), data: { name: setName, kind: document.kind, version: v, document } }), async (trx) => {
      const tenantRow = await trx.selectFrom('tenants').select('id').where('id', '=', tenant).executeTakeFirst();
      if (!tenantRow) throw new SigilError('broker.tenant_not_found', `tenant ${tenant} does not exist`, { status: 404 });
      const existing = await trx.selectFrom('reference_values').select('version').where('tenant', '=', tenant).where('name', '=', setName).executeTakeFirst();
      const values = { tenant, name: setName, kind: document.kind, document: JSON.stringify(document), version: (existing?.version ?? 0) + 1, updated_at: now };
      if (existing) await trx.updateTable('reference_values').set(values).where('tenant', '=', tenant).where('name', '=', setName).execute();
      else await trx.insertInto('reference_values').values(values).execute();
      return values.version;
    });
    return c.json({ name: setName, kind: document.kind, version }, version === 1 ? 201 : 200);
  });
  app.delete(`${base}/reference-values/:name`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    const setName = c.req.param('name');
    const principal = allow(c, 'write', tenant);
    await transact(ctx, { type: 'reference-values.deleted', tenant, actor: actor(principal), data: { name: setName } }, async (trx) => {
      const done = await trx.deleteFrom('reference_values').where('tenant', '=', tenant).where('name', '=', setName).executeTakeFirst();
      if (Number(done.numDeletedRows) === 0) throw new SigilError('broker.reference_values_not_found', `reference-value set ${setName} does not exist`, { status: 404 });
    });
    return c.body(null, 204);
  });

  // Dry run: a stored or inline policy against a stored attestation or supplied evidence. Nothing
  // is consumed or recorded; the binding is checked when the nonce and key are known.
  app.post(`${base}/dry-run`, async (c) => {
    const tenant = name(c.req.param('tenant'), 'tenant');
    allow(c, 'read', tenant);
    const body = parseBody(DryRunRequest, await readJson(c));
    const { policyId, policy: inline } = body;
    let evidence = body.evidence;
    let kind = body.kind ?? inline?.kind;
    let deviceId = body.deviceId;
    // Supplied evidence is checked now, or at the tenant's pinned verificationTime (recorded evidence).
    const tenantRow = await ctx.db.selectFrom('tenants').select('settings').where('id', '=', tenant).executeTakeFirst();
    if (!tenantRow) throw new SigilError('broker.tenant_not_found', `tenant ${tenant} does not exist`, { status: 404 });
    const pinned = (JSON.parse(tenantRow.settings) as { verificationTime?: string }).verificationTime;
    let at = body.at ? new Date(body.at) : pinned ? new Date(pinned) : new Date(ctx.now());
    let nonce = body.nonce ? new Uint8Array(fromBase64(body.nonce)) : undefined;
    let expectedBinding = nonce && body.runtimeKey ? await runtimeKeyBinding(nonce, checkRuntimeJwk(body.runtimeKey)) : undefined;
    if (body.attestationId) {
      const stored = await ctx.db.selectFrom('attestations').selectAll().where('tenant', '=', tenant).where('id', '=', body.attestationId).executeTakeFirst();
      if (!stored) throw new SigilError('broker.attestation_not_found', `attestation ${body.attestationId} is not stored (or has expired)`, { status: 404 });
      evidence = JSON.parse(stored.evidence);
      kind = stored.kind;
      deviceId ??= stored.device_id ?? undefined;
      at = body.at ? at : new Date(Number(stored.at));
      nonce = stored.nonce ? new Uint8Array(fromBase64(stored.nonce)) : undefined;
      expectedBinding = nonce && stored.runtime_jkt ? await bindingFromThumbprint(nonce, stored.runtime_jkt) : undefined;
    }
    if (!kind) {
      const row = policyId ? await ctx.db.selectFrom('policies').select('kind').where('tenant', '=', tenant).where('id', '=', policyId).executeTakeFirst() : undefined;
      kind = row?.kind;
    }
    if (!kind) throw new SigilError('broker.invalid_request', 'name the evidence kind (kind, an inline policy, a stored policyId or an attestationId)', { status: 400 });
    const outcome = await runAppraisal(ctx, { tenant, kind, evidence, deviceId, policyId, policy: inline, expectedBinding, nonce, at });
    return c.json({ policyId: outcome.policyId ?? null, status: outcome.status, trustVector: outcome.trustVector, trace: outcome.trace, failedRule: outcome.failed?.rule ?? null });
  });
};
