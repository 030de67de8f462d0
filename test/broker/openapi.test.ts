import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildOpenApi } from '../../src/broker/openapi.ts';

test('docs/openapi.json is the document the broker serves (regenerate: sh scripts/node.sh src/broker/openapi.ts > docs/openapi.json)', () => {
  const inRepo = JSON.parse(readFileSync(new URL('../../docs/openapi.json', import.meta.url), 'utf8'));
  assert.deepEqual(inRepo, JSON.parse(JSON.stringify(buildOpenApi())));
});

test('every route the broker serves is documented, with problem details for refusals', () => {
  const doc = buildOpenApi() as { paths: Record<string, Record<string, { responses: Record<string, unknown>; security?: unknown }>> };
  const routes = readFileSync(new URL('../../src/broker/routes/protocol.ts', import.meta.url), 'utf8') + ['admin-tenants', 'admin-policies', 'admin-devices', 'admin-audit', 'ops'].map((f) => readFileSync(new URL(`../../src/broker/routes/${f}.ts`, import.meta.url), 'utf8')).join('\n');
  const served = [...routes.matchAll(/app\.(get|post|put|delete)\((`[^`]+`|'[^']+')/g)].map(([, method, raw]) => {
    const route = raw.slice(1, -1).replace('${base}', '/v1/admin/tenants/:tenant').replace(/:(\w+)(\{[^}]+\})?/g, '{$1}');
    return `${method} ${route}`;
  });
  const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
  assert.deepEqual(served.filter((s) => !documented.includes(s)), []);
  assert.deepEqual(documented.filter((d) => !served.includes(d)), []);
  assert.ok(doc.paths['/v1/attest'].post.responses['403']);
  assert.ok(doc.paths['/v1/admin/tenants'].get.security);
});
