import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { SigilError } from '../core/errors.ts';
import type { BrokerContext } from './context.ts';
import { header, respond, type BrokerEnv } from './http.ts';
import { toProblem } from './problem.ts';
import { adminAuditRoutes } from './routes/admin-audit.ts';
import { adminDeviceRoutes } from './routes/admin-devices.ts';
import { adminPolicyRoutes } from './routes/admin-policies.ts';
import { adminTenantRoutes } from './routes/admin-tenants.ts';
import { opsRoutes } from './routes/ops.ts';
import { protocolRoutes } from './routes/protocol.ts';

const PROBLEM = 'application/problem+json';

/** The broker's HTTP surface as a Hono app (served by server.ts; `app.request()` in tests). */
export function createApp(ctx: BrokerContext): Hono<BrokerEnv> {
  const app = new Hono<BrokerEnv>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    const requestId = header(c, 'x-request-id')?.slice(0, 64) ?? randomUUID();
    c.set('requestId', requestId);
    await next();
    // Responses built with respond()/json() carry the id already; touching c.res.headers would
    // turn @hono/node-server's lightweight response into a Fetch one (http.ts).
    if (!c.get('requestIdSent')) c.header('x-request-id', requestId);
    const route = c.req.routePath ?? c.req.path;
    const seconds = (performance.now() - started) / 1000;
    const status = c.res.status;
    ctx.metrics.count('sigil_http_requests_total', 'HTTP requests, by method, route and status', { method: c.req.method, route, status: String(status) });
    ctx.metrics.observe('sigil_http_request_duration_seconds', 'HTTP request latency', { route }, seconds);
    if (ctx.logger.level === 'debug') ctx.logger.debug('request', { requestId, method: c.req.method, path: c.req.path, status, ms: Math.round(seconds * 1000 * 10) / 10 });
  });

  opsRoutes(app, ctx);
  protocolRoutes(app, ctx);
  adminTenantRoutes(app, ctx);
  adminPolicyRoutes(app, ctx);
  adminDeviceRoutes(app, ctx);
  adminAuditRoutes(app, ctx);

  app.notFound((c) => respond(c, JSON.stringify(toProblem(new SigilError('broker.route_not_found', `no route ${c.req.method} ${c.req.path}`, { status: 404 }), c.req.path)), 404, { 'content-type': PROBLEM }));
  app.onError((error, c) => {
    const problem = toProblem(error, c.req.path);
    if (problem.status >= 500) ctx.logger.error('request failed', { requestId: c.get('requestId'), path: c.req.path, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    else ctx.logger.debug('request refused', { requestId: c.get('requestId'), path: c.req.path, code: problem.code });
    return respond(c, JSON.stringify(problem), problem.status, { 'content-type': PROBLEM });
  });
  return app;
}
