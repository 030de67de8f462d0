import { randomBytes, randomUUID } from 'node:crypto';
import { SigilError } from '../core/errors.ts';
import { fromBase64 } from '../core/hex.ts';
import { bindingFromThumbprint, checkRuntimeJwk, jwkThumbprint, runtimeKeyBinding, type RuntimeJwk } from '../policy/binding.ts';
import { EAR_PROFILE, VERIFIER_ID, type EarClaims } from '../policy/ear.ts';
import { signEarFast } from './ear-jws.ts';
import { runAppraisal, type AppraisalOutcome } from './appraisal.ts';
import { kindOf, type BrokerContext } from './context.ts';
import { failedRule, refusal } from './problem.ts';
import type { z } from 'zod';
import type { AttestRequest, ChallengeRequest, VerifyRequest } from './schemas.ts';
import { activeTenant, type TenantRecord } from './tenants.ts';
import { insertAttestation, insertNonce, takeNonce } from './store/queries.ts';
import type { Principal } from './auth.ts';

/**
 * The attestation protocol (background-check model, RFC 9334):
 *   challenge → a 32-byte nonce, single-use across replicas (a row deleted on use);
 *   attest    → evidence binding SHA-256(nonce ‖ runtime-key thumbprint), appraised against the
 *               tenant's policy → a signed, short-lived EAR, or a 403 problem with the trace;
 *   verify    → stateless appraisal for relying parties: always an EAR, whatever the status.
 */
const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

export async function issueChallenge(ctx: BrokerContext, request: z.infer<typeof ChallengeRequest>) {
  await activeTenant(ctx, request.tenant);
  kindOf(ctx, request.kind);
  const nonce = randomBytes(32);
  const expiresAt = ctx.now() + ctx.config.nonceTtlSeconds * 1000;
  const row = { nonce: b64url(nonce), tenant: request.tenant, kind: request.kind, device_id: request.deviceId ?? null, expires_at: expiresAt };
  await ctx.audit.write((trx) => insertNonce(trx, row));
  return { nonce: row.nonce, expiresAt: new Date(expiresAt).toISOString(), binding: 'SHA-256(nonce ‖ RFC 7638 SHA-256 thumbprint of runtimeKey)' };
}

/** Take the nonce out of the table: whoever deletes the row owns it, on any replica. */
async function consumeNonce(ctx: BrokerContext, request: z.infer<typeof AttestRequest>): Promise<Uint8Array> {
  const [row] = await ctx.audit.write((trx) => takeNonce(trx, { nonce: request.nonce }));
  const refuse = (rule: string, expected: string, actual: string, message: string) =>
    refusal(403, 'broker.nonce_invalid', `attestation refused: ${message}`, [failedRule(rule, 'nonce', expected, actual, message)]);
  if (!row) throw refuse('nonce.fresh', 'a nonce this broker issued and nobody used', 'unknown or already used', 'the nonce is unknown or was already used (replay)');
  if (Number(row.expires_at) < ctx.now()) throw refuse('nonce.fresh', `used before ${new Date(Number(row.expires_at)).toISOString()}`, 'expired', 'the nonce has expired');
  if (row.tenant !== request.tenant || row.kind !== request.kind || (row.device_id !== null && row.device_id !== request.deviceId)) {
    throw refuse('nonce.session', `${row.tenant}/${row.kind}${row.device_id ? `/${row.device_id}` : ''}`, `${request.tenant}/${request.kind}${request.deviceId ? `/${request.deviceId}` : ''}`, 'the nonce was issued for another tenant, kind or device');
  }
  return new Uint8Array(fromBase64(request.nonce));
}

interface EarInput {
  tenant: string;
  kind: string;
  outcome: AppraisalOutcome;
  ttlSeconds: number;
  nonce?: Uint8Array;
  runtimeKey?: RuntimeJwk;
  attestationId: string;
  use: 'release' | 'verify';
  /** The pinned verification time, when it was not the present (recorded evidence). */
  verificationTime?: Date;
}

async function makeEar(ctx: BrokerContext, input: EarInput): Promise<{ token: string; claims: EarClaims }> {
  const iat = Math.floor(ctx.now() / 1000);
  const { kid, alg, key } = ctx.keys.current();
  const claims: EarClaims = {
    eat_profile: EAR_PROFILE,
    iat,
    exp: iat + input.ttlSeconds,
    jti: randomUUID(),
    'ear.verifier-id': { ...VERIFIER_ID },
    submods: {
      [input.kind]: {
        'ear.status': input.outcome.status,
        'ear.trustworthiness-vector': input.outcome.trustVector,
        'ear.appraisal-policy-id': `${input.tenant}/${input.outcome.policyId ?? 'none'}`,
      },
    },
    'sigil.tenant': input.tenant,
    'sigil.kind': input.kind,
    'sigil.attestation': input.attestationId,
    'sigil.use': input.use,
  };
  if (input.nonce) claims.eat_nonce = b64url(input.nonce);
  if (input.verificationTime) claims['sigil.verification-time'] = input.verificationTime.toISOString();
  if (input.runtimeKey) {
    claims.cnf = { jkt: await jwkThumbprint(input.runtimeKey) };
    claims['sigil.runtime-jwk'] = input.runtimeKey;
  }
  if (input.outcome.device) {
    claims['sigil.device'] = input.outcome.device.id;
    if (input.outcome.device.material.akName) claims['sigil.ak'] = input.outcome.device.material.akName;
  }
  const token = signEarFast(claims, key, { kid, alg });
  if (input.use === 'release') ctx.issuedEars.remember(token, claims.exp);
  return { token, claims };
}

function refusalMessage(outcome: AppraisalOutcome): string {
  return outcome.failed ? `attestation refused: rule ${outcome.failed.rule} failed${outcome.failed.message ? ` (${outcome.failed.message})` : ''}` : `attestation refused: status ${outcome.status}`;
}

async function record(ctx: BrokerContext, type: 'attestation' | 'verification', input: { id: string; tenant: string; kind: string; evidence: unknown; nonce?: Uint8Array; jkt?: string; outcome: AppraisalOutcome; actor: string; deviceId?: string; verificationTime?: Date }) {
  const { outcome } = input;
  await ctx.audit.record(
    { type, tenant: input.tenant, actor: input.actor, data: { attestationId: input.id, kind: input.kind, device: outcome.device?.id ?? input.deviceId ?? null, policy: outcome.policyId ?? null, status: outcome.status, failedRule: outcome.failed?.rule ?? null, ...(input.verificationTime ? { verificationTime: input.verificationTime.toISOString() } : {}), trace: outcome.trace } },
    async (trx) => {
      await insertAttestation(trx, {
        id: input.id,
        tenant: input.tenant,
        kind: input.kind,
        device_id: outcome.device?.id ?? input.deviceId ?? null,
        policy_id: outcome.policyId ?? null,
        status: outcome.status,
        evidence: JSON.stringify(input.evidence),
        nonce: input.nonce ? b64url(input.nonce) : null,
        runtime_jkt: input.jkt ?? null,
        trace: JSON.stringify(outcome.trace),
        at: ctx.now(),
      });
    },
  );
  ctx.metrics.count('sigil_attestations_total', 'Attestations appraised, by kind and status', { kind: input.kind, status: outcome.status, type });
}

export async function attest(ctx: BrokerContext, request: z.infer<typeof AttestRequest>, actor: string) {
  const tenant = await activeTenant(ctx, request.tenant);
  const runtimeKey = checkRuntimeJwk(request.runtimeKey);
  kindOf(ctx, request.kind);
  const nonce = await consumeNonce(ctx, request);
  const jkt = await jwkThumbprint(runtimeKey);
  const expectedBinding = await bindingFromThumbprint(nonce, jkt);
  const outcome = await runAppraisal(ctx, { tenant: tenant.id, kind: request.kind, evidence: request.evidence, deviceId: request.deviceId, policyId: request.policyId, expectedBinding, nonce, at: new Date(ctx.now()) });
  const id = randomUUID();
  await record(ctx, 'attestation', { id, tenant: tenant.id, kind: request.kind, evidence: request.evidence, nonce, jkt, outcome, actor, deviceId: request.deviceId });
  if (outcome.code || outcome.status === 'contraindicated' || outcome.status === 'none') {
    throw refusal(403, outcome.code ?? 'broker.appraisal_failed', refusalMessage(outcome), outcome.trace, { attestationId: id });
  }
  const ttlSeconds = tenant.settings.earTtlSeconds ?? ctx.config.earTtlSeconds;
  const { token, claims } = await makeEar(ctx, { tenant: tenant.id, kind: request.kind, outcome, ttlSeconds, nonce, runtimeKey, attestationId: id, use: 'release' });
  return { ear: token, expiresAt: new Date(claims.exp * 1000).toISOString(), status: outcome.status, attestationId: id, claims: outcome.claims, trace: outcome.trace };
}

/**
 * The instant certificates, CRLs and TCB data are checked at in stateless verification: now,
 * unless pinned for recorded evidence — by an admin token's `at`, or by the tenant's
 * `verificationTime` (which only an admin can set). Either is logged at warn level every time: a
 * pinned clock accepts expired certificates and stale collateral, so it must never pass unseen.
 */
export function verificationTime(ctx: BrokerContext, tenant: TenantRecord, principal: Principal, at: string | undefined): Date | undefined {
  if (at !== undefined && principal.role !== 'admin') {
    throw new SigilError('broker.forbidden', 'only an admin token may pin the verification time ("at"); for recorded evidence an admin sets the tenant\'s verificationTime', { status: 403, role: principal.role });
  }
  const pinned = at ?? tenant.settings.verificationTime;
  if (pinned === undefined) return undefined;
  ctx.logger.warn('VERIFICATION AT A PINNED TIME: certificates, CRLs and TCB data are checked at a past instant (recorded evidence, tests only)', {
    tenant: tenant.id,
    at: pinned,
    source: at !== undefined ? 'request' : 'tenant setting verificationTime',
    actor: `token:${principal.name}`,
  });
  return new Date(pinned);
}

export async function verifyStateless(ctx: BrokerContext, request: z.infer<typeof VerifyRequest>, principal: Principal) {
  const actor = `token:${principal.name}`;
  const tenant = await activeTenant(ctx, request.tenant);
  const pinned = verificationTime(ctx, tenant, principal, request.at);
  kindOf(ctx, request.kind);
  const runtimeKey = request.runtimeKey ? checkRuntimeJwk(request.runtimeKey) : undefined;
  const nonce = request.nonce ? new Uint8Array(fromBase64(request.nonce)) : undefined;
  let expectedBinding: Uint8Array | undefined;
  if (runtimeKey && nonce) expectedBinding = await runtimeKeyBinding(nonce, runtimeKey);
  else if (request.expectedBinding) expectedBinding = new Uint8Array(Buffer.from(request.expectedBinding, 'hex'));
  else if (runtimeKey) throw new SigilError('broker.invalid_request', 'a runtimeKey is bound together with a nonce: give both', { status: 400 });
  const at = pinned ?? new Date(ctx.now());
  const outcome = await runAppraisal(ctx, { tenant: tenant.id, kind: request.kind, evidence: request.evidence, deviceId: request.deviceId, policyId: request.policyId, expectedBinding, nonce, at });
  const id = randomUUID();
  await record(ctx, 'verification', { id, tenant: tenant.id, kind: request.kind, evidence: request.evidence, nonce, jkt: runtimeKey ? await jwkThumbprint(runtimeKey) : undefined, outcome, actor, deviceId: request.deviceId, ...(pinned ? { verificationTime: pinned } : {}) });
  const ttlSeconds = tenant.settings.earTtlSeconds ?? ctx.config.earTtlSeconds;
  const { token, claims } = await makeEar(ctx, { tenant: tenant.id, kind: request.kind, outcome, ttlSeconds, nonce, runtimeKey, attestationId: id, use: 'verify', ...(pinned ? { verificationTime: pinned } : {}) });
  return { ear: token, expiresAt: new Date(claims.exp * 1000).toISOString(), status: outcome.status, claims: outcome.claims, trace: outcome.trace };
}
