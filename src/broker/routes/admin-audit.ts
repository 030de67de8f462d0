import { streamSSE } from 'hono/streaming';
import { verifyAuditChain } from '../audit.ts';
import type { BrokerEvent } from '../events.ts';
import { iso, type RouteModule } from '../http.ts';
import { allow } from './admin-tenants.ts';

/** The audit log (read and verify) and the live event stream (SSE). */
export const adminAuditRoutes: RouteModule = (app, ctx) => {
  app.get('/v1/admin/audit', async (c) => {
    const principal = allow(c, 'audit', c.get('principal').tenant ?? undefined);
    const after = Math.max(0, Number(c.req.query('after') ?? 0) || 0);
    const limit = Math.min(Math.max(1, Number(c.req.query('limit') ?? 100) || 100), 1000);
    let query = ctx.db.selectFrom('audit_log').selectAll().where('seq', '>', after).orderBy('seq').limit(limit);
    if (principal.tenant) query = query.where('tenant', '=', principal.tenant);
    const rows = await query.execute();
    return c.json({
      items: rows.map((r) => ({ seq: Number(r.seq), at: iso(r.at), type: r.type, tenant: r.tenant, actor: r.actor, data: JSON.parse(r.data), prevHash: r.prev_hash, hash: r.hash })),
    });
  });

  app.get('/v1/admin/audit/verify', async (c) => {
    allow(c, 'audit');
    const result = await verifyAuditChain(ctx.db, ctx.master.derive('audit-mac'));
    return c.json(result, result.ok ? 200 : 409);
  });

  // Server-sent events: "revocation" (and future types) for the caller's tenant, or all tenants
  // for admin and auditor tokens without a tenant. A comment line every 15 s keeps proxies open.
  app.get('/v1/admin/events', (c) => {
    const principal = c.get('principal');
    const requested = c.req.query('tenant');
    const tenant = requested ?? principal.tenant ?? undefined;
    allow(c, principal.role === 'auditor' ? 'audit' : 'read', tenant);
    return streamSSE(c, async (stream) => {
      const queue: BrokerEvent[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = ctx.events.subscribe(tenant, (event) => {
        queue.push(event);
        wake?.();
      });
      let open = true;
      stream.onAbort(() => {
        open = false;
        unsubscribe();
        wake?.();
      });
      await stream.writeSSE({ event: 'ready', data: JSON.stringify({ tenant: tenant ?? '*', replica: ctx.replicaId }) });
      while (open) {
        const event = queue.shift();
        if (event) {
          await stream.writeSSE({ id: String(event.id), event: event.type, data: JSON.stringify({ id: event.id, tenant: event.tenant, createdAt: iso(event.createdAt), ...event.data }) });
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 15_000).unref();
        });
        wake = undefined;
        if (open && queue.length === 0) await stream.write(': keep-alive\n\n');
      }
      unsubscribe();
    });
  });
};
