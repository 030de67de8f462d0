import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';
import { SigilError } from '../core/errors.ts';
import { fromBase64, toHex } from '../core/hex.ts';
import { parseCertificate, parseCertificates, verifyEkCertificate } from '../evidence/tpm/ek-certificate.ts';
import { checkAkPublic } from '../evidence/tpm/kind.ts';
import type { TraceEntry } from '../evidence/verifier.ts';
import { publicAreaToJwk } from '../tpm/jwk.ts';
import { makeCredential } from '../tpm/credential.ts';
import { marshal, unmarshal } from '../tpm/marshal/codec.ts';
import { objectName } from '../tpm/names.ts';
import { TPMT_PUBLIC, type TpmPublic } from '../tpm/structures/public.ts';
import { transact, type BrokerContext } from './context.ts';
import { failedRule, refusal } from './problem.ts';
import { akRevoked } from './revocation.ts';
import type { EnrolAkCertificateRequest, EnrolTpmFinishRequest, EnrolTpmStartRequest } from './schemas.ts';
import { activeTenant } from './tenants.ts';

/**
 * TPM device enrolment (TEE workloads need none):
 *  1. credential activation: the device sends its EK certificate, EK public and AK public; the
 *     broker validates the EK certificate against the tenant's "tpm-ek" CA bundles, checks the AK
 *     is a restricted TPM signing key, and answers MakeCredential(EK, name(AK), secret). Only the
 *     TPM holding that EK can ActivateCredential, and only for an AK of that name; returning the
 *     secret proves both, and the device (its AK) is enrolled.
 *  2. an AK certificate chaining to a tenant "tpm-ak" CA bundle (device identity certificate).
 * Without a configured CA bundle enrolment is refused (fail closed).
 */
const ENROLMENT_TTL_MS = 5 * 60 * 1000;

function decodePublic(b64: string, what: string): TpmPublic {
  return unmarshal(TPMT_PUBLIC, fromBase64(b64), `broker.${what}_invalid`);
}

async function bundles(ctx: BrokerContext, tenant: string, purpose: string): Promise<x509.X509Certificate[]> {
  const rows = await ctx.db.selectFrom('ca_bundles').select('pem').where('tenant', '=', tenant).where('purpose', '=', purpose).execute();
  return rows.flatMap((r) => parseCertificates(r.pem));
}

function refuse(trace: TraceEntry[], code: string, entry: TraceEntry, message: string): SigilError {
  return refusal(403, code, `enrolment refused: ${message}`, [...trace, entry]);
}

async function checkAk(ctx: BrokerContext, tenant: string, akPublic: TpmPublic, trace: TraceEntry[]): Promise<string> {
  try {
    checkAkPublic(akPublic);
  } catch (error) {
    throw refuse(trace, 'broker.enrolment_refused', failedRule('enrol.ak-attributes', 'akPublic.objectAttributes', 'fixedTPM|fixedParent|sensitiveDataOrigin|restricted|sign', (error as SigilError).details.attributes), (error as Error).message);
  }
  const akName = toHex(await objectName(akPublic));
  if (await akRevoked(ctx.db, tenant, akName)) throw refuse(trace, 'broker.revoked', failedRule('revocation.ak', 'akName', 'a key that was never revoked', akName), 'this attestation key was revoked');
  trace.push({ rule: 'enrol.ak-attributes', claim: 'akPublic.objectAttributes', expected: 'restricted TPM signing key', actual: akPublic.objectAttributes, result: 'pass' });
  return akName;
}

export async function startTpmEnrolment(ctx: BrokerContext, request: z.infer<typeof EnrolTpmStartRequest>) {
  await activeTenant(ctx, request.tenant);
  const trace: TraceEntry[] = [];
  const roots = await bundles(ctx, request.tenant, 'tpm-ek');
  if (roots.length === 0) throw refuse(trace, 'broker.enrolment_refused', failedRule('enrol.ek-ca', 'ca_bundles[purpose=tpm-ek]', 'at least one EK CA', 'none'), `tenant ${request.tenant} has no EK CA bundle configured`);
  const ekPublic = decodePublic(request.ekPublic, 'ek_public');
  const akPublic = decodePublic(request.akPublic, 'ak_public');
  let info;
  try {
    const selfSigned = roots.filter((c) => c.subject === c.issuer);
    info = await verifyEkCertificate(fromBase64(request.ekCertificate), { roots: selfSigned.length ? selfSigned : roots, intermediates: roots.filter((c) => c.subject !== c.issuer), ekPublic, at: new Date(ctx.now()) });
  } catch (error) {
    if (!(error instanceof SigilError)) throw error;
    throw refuse(trace, 'broker.enrolment_refused', failedRule('enrol.ek-certificate', 'ekCertificate', 'chains to a tenant EK CA and certifies ekPublic', error.code, error.message), error.message);
  }
  trace.push({ rule: 'enrol.ek-certificate', claim: 'ekCertificate', expected: 'chains to a tenant EK CA', actual: info.issuer, result: 'pass' });
  const akName = await checkAk(ctx, request.tenant, akPublic, trace);
  const secret = randomBytes(32);
  const credential = await makeCredential({ ekPublic, objectName: fromHexBytes(akName), credential: secret });
  const id = randomUUID();
  const deviceId = request.deviceId ?? `tpm-${akName.slice(4, 20)}`;
  const expiresAt = ctx.now() + ENROLMENT_TTL_MS;
  const ekDer = fromBase64(request.ekCertificate);
  await ctx.db
    .insertInto('enrolments')
    .values({
      id,
      tenant: request.tenant,
      device_id: deviceId,
      secret_hash: createHash('sha256').update(secret).digest('hex'),
      material: JSON.stringify({ akPublic: toHex(marshal(TPMT_PUBLIC, akPublic)), akName }),
      identity: JSON.stringify({ method: 'credential-activation', ekCertificateSha256: createHash('sha256').update(ekDer).digest('hex'), ekIssuer: info.issuer, ekSubject: info.subject, tpmManufacturer: info.tpmManufacturer, tpmModel: info.tpmModel, tpmVersion: info.tpmVersion, ekJwk: publicAreaToJwk(ekPublic) }),
      expires_at: expiresAt,
    })
    .execute();
  secret.fill(0);
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
  return { enrolmentId: id, deviceId, credentialBlob: b64(credential.credentialBlob), encryptedSecret: b64(credential.secret), expiresAt: new Date(expiresAt).toISOString() };
}

function fromHexBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export async function finishTpmEnrolment(ctx: BrokerContext, request: z.infer<typeof EnrolTpmFinishRequest>) {
  const row = await ctx.db.deleteFrom('enrolments').where('id', '=', request.enrolmentId).returningAll().executeTakeFirst();
  if (!row || Number(row.expires_at) < ctx.now()) {
    throw refuse([], 'broker.enrolment_refused', failedRule('enrol.session', 'enrolmentId', 'a pending enrolment', row ? 'expired' : 'unknown or used'), 'the enrolment is unknown, expired or already finished');
  }
  const answer = createHash('sha256').update(fromBase64(request.secret)).digest();
  if (!timingSafeEqual(answer, Buffer.from(row.secret_hash, 'hex'))) {
    throw refuse([], 'broker.enrolment_refused', failedRule('enrol.credential-activation', 'secret', 'the activated credential', 'a different value'), 'the TPM did not activate the credential: the AK does not live beside that EK');
  }
  return createDevice(ctx, row.tenant, row.device_id, 'tpm', JSON.parse(row.material), JSON.parse(row.identity), `device:${row.device_id}`);
}

export async function enrolWithAkCertificate(ctx: BrokerContext, request: z.infer<typeof EnrolAkCertificateRequest>) {
  await activeTenant(ctx, request.tenant);
  const trace: TraceEntry[] = [];
  const roots = await bundles(ctx, request.tenant, 'tpm-ak');
  if (roots.length === 0) throw refuse(trace, 'broker.enrolment_refused', failedRule('enrol.ak-ca', 'ca_bundles[purpose=tpm-ak]', 'at least one AK CA', 'none'), `tenant ${request.tenant} has no AK CA bundle configured`);
  const akPublic = decodePublic(request.akPublic, 'ak_public');
  const der = fromBase64(request.akCertificate);
  try {
    const selfSigned = roots.filter((c) => c.subject === c.issuer);
    // The chain and key checks are the EK certificate's; only the anchor differs.
    await verifyEkCertificate(der, { roots: selfSigned.length ? selfSigned : roots, intermediates: roots.filter((c) => c.subject !== c.issuer), ekPublic: akPublic, at: new Date(ctx.now()) });
  } catch (error) {
    if (!(error instanceof SigilError)) throw error;
    throw refuse(trace, 'broker.enrolment_refused', failedRule('enrol.ak-certificate', 'akCertificate', 'chains to a tenant AK CA and certifies akPublic', error.code, error.message), error.message);
  }
  trace.push({ rule: 'enrol.ak-certificate', claim: 'akCertificate', expected: 'chains to a tenant AK CA', actual: 'valid', result: 'pass' });
  const akName = await checkAk(ctx, request.tenant, akPublic, trace);
  const cert = parseCertificate(der);
  const deviceId = request.deviceId ?? `tpm-${akName.slice(4, 20)}`;
  return createDevice(ctx, request.tenant, deviceId, 'tpm', { akPublic: toHex(marshal(TPMT_PUBLIC, akPublic)), akName }, { method: 'ak-certificate', subject: cert.subject, issuer: cert.issuer, serialNumber: cert.serialNumber }, `device:${deviceId}`);
}

/** Insert or re-key a device; a revoked device stays revoked (re-enrolment does not undo it). */
export async function createDevice(ctx: BrokerContext, tenant: string, deviceId: string, kind: string, material: Record<string, string>, identity: Record<string, unknown>, actor: string) {
  const now = ctx.now();
  return transact(ctx, { type: 'device.enrolled', tenant, actor, data: { deviceId, kind, akName: material.akName ?? null, method: identity.method ?? 'admin' } }, async (trx) => {
    const existing = await trx.selectFrom('devices').select(['status', 'created_at']).where('tenant', '=', tenant).where('id', '=', deviceId).executeTakeFirst();
    if (existing?.status === 'revoked') throw refusal(403, 'broker.revoked', `device ${deviceId} is revoked; enrol it under a new id`, [failedRule('revocation.device', 'deviceId', 'not revoked', 'revoked')]);
    const values = { tenant, id: deviceId, kind, status: 'active', material: JSON.stringify(material), identity: JSON.stringify(identity), created_at: existing ? Number(existing.created_at) : now, updated_at: now };
    if (existing) await trx.updateTable('devices').set(values).where('tenant', '=', tenant).where('id', '=', deviceId).execute();
    else await trx.insertInto('devices').values(values).execute();
    return { tenant, deviceId, kind, status: 'active' as const, material, identity, createdAt: new Date(values.created_at).toISOString(), updatedAt: new Date(now).toISOString() };
  });
}
