import { z } from 'zod';
import * as S from './schemas.ts';

/**
 * The OpenAPI 3.1 document, built from the same zod schemas the routes validate with. The broker
 * serves it at /openapi.json; docs/openapi.json in the repository is this document, and a test
 * keeps the two equal (regenerate: sh scripts/node.sh src/broker/openapi.ts > docs/openapi.json).
 */
type Auth = 'none' | 'admin' | 'ear';
interface Operation {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  summary: string;
  tag: string;
  auth: Auth;
  request?: z.ZodType;
  response?: z.ZodType;
  status?: number;
  responseType?: string;
}

const ITEMS = z.object({ items: z.array(z.record(z.string(), z.unknown())) });
const T = '/v1/admin/tenants/{tenant}';

const OPERATIONS: Operation[] = [
  { method: 'get', path: '/healthz', summary: 'Liveness', tag: 'operations', auth: 'none' },
  { method: 'get', path: '/readyz', summary: 'Readiness: the database answers', tag: 'operations', auth: 'none' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', tag: 'operations', auth: 'none', responseType: 'text/plain' },
  { method: 'get', path: '/openapi.json', summary: 'This document', tag: 'operations', auth: 'none' },
  { method: 'get', path: '/.well-known/jwks.json', summary: 'Keys that verify the broker\'s EARs', tag: 'attestation', auth: 'none' },
  { method: 'post', path: '/v1/challenge', summary: 'Get a single-use nonce for one attestation', tag: 'attestation', auth: 'none', request: S.ChallengeRequest, response: S.ChallengeResponse, status: 201 },
  { method: 'post', path: '/v1/attest', summary: 'Present evidence bound to the nonce and a runtime key; receive an EAR', tag: 'attestation', auth: 'none', request: S.AttestRequest, response: S.AttestResponse },
  { method: 'post', path: '/v1/verify', summary: 'Stateless verification for relying parties (role verifier)', tag: 'attestation', auth: 'admin', request: S.VerifyRequest, response: S.VerifyResponse },
  { method: 'get', path: '/v1/resources/{tenant}/{path}', summary: 'Release a secret as a JWE to the attested runtime key', tag: 'attestation', auth: 'ear', responseType: 'application/jose' },
  { method: 'post', path: '/v1/enrol/tpm/start', summary: 'TPM enrolment: EK certificate + AK → MakeCredential challenge', tag: 'enrolment', auth: 'none', request: S.EnrolTpmStartRequest, response: S.EnrolTpmStartResponse, status: 201 },
  { method: 'post', path: '/v1/enrol/tpm/finish', summary: 'TPM enrolment: the activated credential', tag: 'enrolment', auth: 'none', request: S.EnrolTpmFinishRequest, response: S.DeviceResponse, status: 201 },
  { method: 'post', path: '/v1/enrol/ak-certificate', summary: 'TPM enrolment with an AK (device identity) certificate', tag: 'enrolment', auth: 'none', request: S.EnrolAkCertificateRequest, response: S.DeviceResponse, status: 201 },
  { method: 'post', path: '/v1/admin/tokens', summary: 'Create an API token (shown once)', tag: 'admin', auth: 'admin', request: S.TokenCreateRequest, response: S.TokenCreateResponse, status: 201 },
  { method: 'get', path: '/v1/admin/tokens', summary: 'List API tokens', tag: 'admin', auth: 'admin', response: ITEMS },
  { method: 'delete', path: '/v1/admin/tokens/{id}', summary: 'Revoke an API token', tag: 'admin', auth: 'admin', status: 204 },
  { method: 'get', path: '/v1/admin/tenants', summary: 'List tenants', tag: 'admin', auth: 'admin', response: ITEMS },
  { method: 'get', path: T, summary: 'Read a tenant', tag: 'admin', auth: 'admin' },
  { method: 'put', path: T, summary: 'Create or update a tenant', tag: 'admin', auth: 'admin', request: S.TenantPutRequest },
  { method: 'delete', path: T, summary: 'Delete a tenant and everything in it', tag: 'admin', auth: 'admin', status: 204 },
  { method: 'post', path: `${T}/revoke`, summary: 'Revoke a tenant: all its tokens stop working at once', tag: 'revocation', auth: 'admin', request: S.RevokeRequest, status: 201 },
  { method: 'post', path: `${T}/reinstate`, summary: 'Reinstate a tenant (old tokens stay refused)', tag: 'revocation', auth: 'admin' },
  { method: 'get', path: `${T}/ca-bundles`, summary: 'List CA bundles (EK / AK anchors, TEE roots)', tag: 'admin', auth: 'admin', response: ITEMS },
  { method: 'put', path: `${T}/ca-bundles/{name}`, summary: 'Store a CA bundle', tag: 'admin', auth: 'admin', request: S.CaBundlePutRequest },
  { method: 'delete', path: `${T}/ca-bundles/{name}`, summary: 'Delete a CA bundle', tag: 'admin', auth: 'admin', status: 204 },
  { method: 'get', path: `${T}/webhooks`, summary: 'List webhooks (tenant "*": all tenants)', tag: 'admin', auth: 'admin', response: ITEMS },
  { method: 'put', path: `${T}/webhooks/{id}`, summary: 'Store a webhook (HMAC-signed POSTs)', tag: 'admin', auth: 'admin', request: S.WebhookPutRequest },
  { method: 'delete', path: `${T}/webhooks/{id}`, summary: 'Delete a webhook', tag: 'admin', auth: 'admin', status: 204 },
  { method: 'get', path: `${T}/policies`, summary: 'List appraisal policies', tag: 'policy', auth: 'admin', response: ITEMS },
  { method: 'get', path: `${T}/policies/{id}`, summary: 'Read an appraisal policy', tag: 'policy', auth: 'admin' },
  { method: 'put', path: `${T}/policies/{id}`, summary: 'Create or update an appraisal policy', tag: 'policy', auth: 'admin', request: S.PolicyPutRequest },
  { method: 'delete', path: `${T}/policies/{id}`, summary: 'Delete an appraisal policy', tag: 'policy', auth: 'admin', status: 204 },
  { method: 'get', path: `${T}/reference-values`, summary: 'List reference-value sets', tag: 'policy', auth: 'admin', response: ITEMS },
  { method: 'get', path: `${T}/reference-values/{name}`, summary: 'Read a reference-value set', tag: 'policy', auth: 'admin' },
  { method: 'put', path: `${T}/reference-values/{name}`, summary: 'Create or update a reference-value set', tag: 'policy', auth: 'admin', request: S.ReferenceValuePutRequest },
  { method: 'delete', path: `${T}/reference-values/{name}`, summary: 'Delete a reference-value set', tag: 'policy', auth: 'admin', status: 204 },
  { method: 'post', path: `${T}/dry-run`, summary: 'Evaluate a policy against stored or supplied evidence', tag: 'policy', auth: 'admin', request: S.DryRunRequest, response: S.DryRunResponse },
  { method: 'get', path: `${T}/devices`, summary: 'List devices', tag: 'devices', auth: 'admin', response: ITEMS },
  { method: 'get', path: `${T}/devices/{id}`, summary: 'Read a device', tag: 'devices', auth: 'admin', response: S.DeviceResponse },
  { method: 'put', path: `${T}/devices/{id}`, summary: 'Register a device directly (admin-vouched AK)', tag: 'devices', auth: 'admin', request: S.DevicePutRequest, response: S.DeviceResponse },
  { method: 'delete', path: `${T}/devices/{id}`, summary: 'Delete a device', tag: 'devices', auth: 'admin', status: 204 },
  { method: 'post', path: `${T}/devices/{id}/revoke`, summary: 'Revoke a device: its tokens stop working at once', tag: 'revocation', auth: 'admin', request: S.RevokeRequest, status: 201 },
  { method: 'post', path: `${T}/devices/{id}/reinstate`, summary: 'Reinstate a device (old tokens stay refused)', tag: 'revocation', auth: 'admin' },
  { method: 'post', path: `${T}/aks/{akName}/revoke`, summary: 'Revoke an attestation key by TPM name', tag: 'revocation', auth: 'admin', request: S.RevokeRequest, status: 201 },
  { method: 'get', path: `${T}/revocations`, summary: 'List revocations', tag: 'revocation', auth: 'admin', response: ITEMS },
  { method: 'get', path: `${T}/resources`, summary: 'List resources (metadata only)', tag: 'resources', auth: 'admin', response: ITEMS },
  { method: 'get', path: `${T}/resources/{path}`, summary: 'Read a resource\'s metadata (never its value)', tag: 'resources', auth: 'admin' },
  { method: 'put', path: `${T}/resources/{path}`, summary: 'Store a secret and its release policy', tag: 'resources', auth: 'admin', request: S.ResourcePutRequest },
  { method: 'delete', path: `${T}/resources/{path}`, summary: 'Delete a resource', tag: 'resources', auth: 'admin', status: 204 },
  { method: 'get', path: `${T}/attestations`, summary: 'Recent attestations', tag: 'audit', auth: 'admin', response: ITEMS },
  { method: 'get', path: `${T}/attestations/{id}`, summary: 'One attestation with its evidence and trace', tag: 'audit', auth: 'admin' },
  { method: 'get', path: '/v1/admin/audit', summary: 'Audit log entries after a sequence number', tag: 'audit', auth: 'admin', response: ITEMS },
  { method: 'get', path: '/v1/admin/audit/verify', summary: 'Verify the audit hash chain', tag: 'audit', auth: 'admin' },
  { method: 'get', path: '/v1/admin/events', summary: 'Server-sent events: revocations within 2 s on every replica', tag: 'revocation', auth: 'admin', responseType: 'text/event-stream' },
];

const PROBLEM = {
  type: 'object',
  description: 'RFC 7807 problem details; refusals carry the decision trace',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', description: 'stable dotted error code' },
    instance: { type: 'string' },
    trace: { type: 'array', items: { type: 'object', properties: { rule: { type: 'string' }, claim: { type: 'string' }, expected: {}, actual: {}, result: { type: 'string' }, message: { type: 'string' } } } },
  },
  required: ['type', 'title', 'status', 'code'],
};

function schema(type: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(type, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

export function buildOpenApi(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    const parameters = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const status = String(op.status ?? 200);
    const ok = op.status === 204 ? { description: 'done' } : { description: 'success', content: { [op.responseType ?? 'application/json']: { schema: op.response ? schema(op.response, 'output') : op.responseType ? { type: 'string' } : { type: 'object' } } } };
    const problem = { description: 'refused or invalid (problem details)', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    (paths[op.path] ??= {})[op.method] = {
      summary: op.summary,
      tags: [op.tag],
      operationId: `${op.method}${op.path.replace(/[{}./-]+(\w)?/g, (_m, c?: string) => (c ? c.toUpperCase() : ''))}`,
      ...(parameters.length ? { parameters } : {}),
      ...(op.auth === 'admin' ? { security: [{ adminToken: [] }] } : op.auth === 'ear' ? { security: [{ ear: [] }] } : {}),
      ...(op.request ? { requestBody: { required: true, content: { 'application/json': { schema: schema(op.request, 'input') } } } } : {}),
      responses: { [status]: ok, '400': problem, ...(op.auth !== 'none' ? { '401': problem, '403': problem } : op.path.includes('attest') || op.path.includes('enrol') ? { '403': problem } : {}) },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Sigil broker',
      version: '1',
      description: 'Attestation service and key broker: challenge → attest (evidence bound to a nonce and a runtime key) → EAR → secret release as JWE. See docs/broker-protocol.md.',
    },
    servers: [{ url: 'https://127.0.0.1:8443' }],
    components: {
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'API token (roles: admin, tenant-admin, auditor, verifier)' },
        ear: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'an EAR from /v1/attest' },
      },
      schemas: { Problem: PROBLEM },
    },
    paths,
  };
}

if (import.meta.main) process.stdout.write(`${JSON.stringify(buildOpenApi(), null, 2)}\n`);
