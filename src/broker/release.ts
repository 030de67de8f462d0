import { createPublicKey, type KeyObject } from 'node:crypto';
import { SigilError } from '../core/errors.ts';
import type { TraceEntry } from '../evidence/verifier.ts';
import { jwkThumbprint } from '../policy/binding.ts';
import { ReleasePolicySchema, type ReleasePolicy } from '../policy/document.ts';
import type { EarClaims } from '../policy/ear.ts';
import { verifyEarFast } from './ear-jws.ts';
import { evaluateRelease } from '../policy/release.ts';
import { bearer } from './auth.ts';
import type { BrokerContext } from './context.ts';
import { encryptToRuntimeKey } from './jwe.ts';
import { decryptEnvelope } from './master-key.ts';
import { failedRule, refusal } from './problem.ts';
import { revocationFor } from './revocation.ts';
import { resourceByPath } from './store/queries.ts';

/**
 * Secret release: GET /v1/resources/{tenant}/{path} with an EAR as bearer token. Checks, each
 * leaving a trace entry: token present, signature + expiry, tenant, key binding (cnf.jkt is the
 * thumbprint of the runtime key in the token), purpose, revocation (looked up on every request, so
 * a revocation on any replica applies at once), then the resource's release policy. The secret
 * goes out as a compact JWE to the runtime key: ECDH-ES+A256KW / A256GCM for EC keys,
 * RSA-OAEP-256 / A256GCM for RSA keys.
 */
export async function releaseResource(ctx: BrokerContext, tenant: string, path: string, authorization: string | undefined): Promise<{ jwe: string; version: number; expiresAt: string }> {
  const trace: TraceEntry[] = [];
  const refuse = (status: number, code: string, entry: TraceEntry, message: string) => refusal(status, code, `release refused: ${message}`, [...trace, entry]);
  const token = bearer(authorization);
  if (!token) throw refuse(401, 'broker.token_missing', failedRule('token.present', 'Authorization', 'Bearer <EAR>', 'none'), 'no attestation result (EAR) was presented');
  let claims: EarClaims;
  try {
    claims = await verifyEarFast(token, (kid) => ctx.keys.resolve(kid), new Date(ctx.now()), ctx.issuedEars);
  } catch (error) {
    if (!(error instanceof SigilError)) throw error;
    const expired = error.code === 'ear.expired';
    throw refuse(401, expired ? 'broker.token_expired' : 'broker.token_invalid', failedRule(expired ? 'token.exp' : 'token.signature', expired ? 'exp' : 'signature', expired ? 'a token that has not expired' : 'signed by this broker', error.code, error.message), error.message);
  }
  trace.push({ rule: 'token.signature', claim: 'signature', expected: 'signed by this broker', actual: 'valid', result: 'pass' });
  trace.push({ rule: 'token.exp', claim: 'exp', expected: `after ${new Date(ctx.now()).toISOString()}`, actual: new Date(claims.exp * 1000).toISOString(), result: 'pass' });
  if (claims['sigil.tenant'] !== tenant) {
    throw refuse(403, 'broker.token_wrong_tenant', failedRule('token.tenant', 'sigil.tenant', tenant, claims['sigil.tenant']), `the token was issued for tenant ${claims['sigil.tenant']}, not ${tenant}`);
  }
  trace.push({ rule: 'token.tenant', claim: 'sigil.tenant', expected: tenant, actual: tenant, result: 'pass' });
  if (claims['sigil.use'] !== 'release') {
    throw refuse(403, 'broker.token_wrong_use', failedRule('token.use', 'sigil.use', 'release', claims['sigil.use'] ?? 'none'), 'results of stateless verification release nothing');
  }
  const runtimeJwk = claims['sigil.runtime-jwk'];
  const jkt = runtimeJwk ? await jwkThumbprint(runtimeJwk) : undefined;
  if (!runtimeJwk || !claims.cnf?.jkt || jkt !== claims.cnf.jkt) {
    throw refuse(403, 'broker.token_unbound', failedRule('token.key-binding', 'cnf.jkt', 'the thumbprint of sigil.runtime-jwk', claims.cnf?.jkt ?? 'none'), 'the token binds no runtime key');
  }
  trace.push({ rule: 'token.key-binding', claim: 'cnf.jkt', expected: jkt, actual: claims.cnf.jkt, result: 'pass' });
  const revoked = await revocationFor(ctx.db, tenant, { device: claims['sigil.device'], ak: claims['sigil.ak'] }, claims.iat * 1000);
  if (revoked) {
    const rule = `revocation.${revoked.subjectType}`;
    await auditRelease(ctx, tenant, path, claims, 'refused', rule);
    throw refuse(403, 'broker.revoked', failedRule(rule, revoked.subjectType === 'tenant' ? 'sigil.tenant' : revoked.subjectType === 'device' ? 'sigil.device' : 'sigil.ak', 'not revoked', `revoked at ${new Date(revoked.revokedAt).toISOString()}: ${revoked.reason}`), `the ${revoked.subjectType} ${revoked.subject} was revoked`);
  }
  trace.push({ rule: 'revocation', claim: 'sigil.tenant, sigil.device, sigil.ak', expected: 'none revoked', actual: 'none revoked', result: 'pass' });
  const [row] = await resourceByPath(ctx.db, { tenant, path });
  if (!row) throw new SigilError('broker.resource_not_found', `resource ${tenant}/${path} does not exist`, { status: 404 });
  const releaseTrace = evaluateRelease(claims, releasePolicyOf(row.release_policy));
  trace.push(...releaseTrace);
  const failed = releaseTrace.find((t) => t.result === 'fail');
  if (failed) {
    await auditRelease(ctx, tenant, path, claims, 'refused', failed.rule);
    ctx.metrics.count('sigil_releases_total', 'Secret releases, by result', { result: 'refused' });
    throw refusal(403, 'broker.release_refused', `release refused: rule ${failed.rule} failed`, trace);
  }
  const secret = decryptEnvelope(ctx.master, row.envelope, `resource|${tenant}|${path}`);
  const key = runtimeKeyObject(jkt!, runtimeJwk);
  const jwe = await encryptToRuntimeKey(secret, key, { kid: jkt!, cty: 'application/octet-stream' });
  secret.fill(0);
  await auditRelease(ctx, tenant, path, claims, 'released');
  ctx.metrics.count('sigil_releases_total', 'Secret releases, by result', { result: 'released' });
  return { jwe, version: row.version, expiresAt: new Date(claims.exp * 1000).toISOString() };
}

/** Release policies by their stored text: validated once, not on every release. */
const releasePolicies = new Map<string, ReleasePolicy>();

function releasePolicyOf(text: string): ReleasePolicy {
  let policy = releasePolicies.get(text);
  if (!policy) {
    policy = ReleasePolicySchema.parse(JSON.parse(text));
    if (releasePolicies.size >= 10_000) releasePolicies.clear();
    releasePolicies.set(text, policy);
  }
  return policy;
}

/**
 * Runtime keys as KeyObjects by thumbprint: one attestation's EAR is presented for every secret
 * its workload fetches, and importing the JWK is a fifth of a release's own work. The thumbprint
 * was just checked against the key in the signed token, so a hit is that same key.
 */
const runtimeKeys = new Map<string, KeyObject>();
const RUNTIME_KEY_CACHE = 10_000;

function runtimeKeyObject(jkt: string, jwk: NonNullable<EarClaims['sigil.runtime-jwk']>): KeyObject {
  let key = runtimeKeys.get(jkt);
  if (!key) {
    key = createPublicKey({ key: jwk as never, format: 'jwk' });
    if (runtimeKeys.size >= RUNTIME_KEY_CACHE) runtimeKeys.delete(runtimeKeys.keys().next().value!);
    runtimeKeys.set(jkt, key);
  }
  return key;
}

async function auditRelease(ctx: BrokerContext, tenant: string, path: string, claims: EarClaims, result: 'released' | 'refused', rule?: string): Promise<void> {
  await ctx.audit.record({ type: 'release', tenant, actor: `ear:${claims.jti}`, data: { path, result, rule: rule ?? null, device: claims['sigil.device'] ?? null, attestation: claims['sigil.attestation'] ?? null } });
}
