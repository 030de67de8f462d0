import { buildOpenApi } from '../openapi.ts';
import type { RouteModule } from '../http.ts';
import { ping } from '../store/database.ts';

/** Liveness, readiness (database reachable), Prometheus metrics, the OpenAPI document. */
export const opsRoutes: RouteModule = (app, ctx) => {
  app.get('/healthz', (c) => c.json({ status: 'ok', replica: ctx.replicaId }));
  app.get('/readyz', async (c) => {
    try {
      await ping(ctx.database);
      return c.json({ status: 'ready', database: ctx.database.dialect });
    } catch (error) {
      return c.json({ status: 'not ready', reason: 'database unreachable', error: String((error as Error).message ?? error) }, 503);
    }
  });
  app.get('/metrics', (c) => c.body(ctx.metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }));
  let openapi: string | undefined;
  app.get('/openapi.json', (c) => c.body((openapi ??= JSON.stringify(buildOpenApi(), null, 2)), 200, { 'content-type': 'application/json' }));
};
