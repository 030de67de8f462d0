import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { signEarFast, verifyEarFast } from '../../src/broker/ear-jws.ts';
import { SigilError } from '../../src/core/errors.ts';
import { EAR_PROFILE, verifyEar, VERIFIER_ID, type EarClaims } from '../../src/policy/ear.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const keys = { ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }), ES384: generateKeyPairSync('ec', { namedCurve: 'P-384' }) };
const claims: EarClaims = {
  eat_profile: EAR_PROFILE,
  iat: NOW.getTime() / 1000,
  exp: NOW.getTime() / 1000 + 60,
  jti: 'x',
  'ear.verifier-id': { ...VERIFIER_ID },
  submods: { tpm: { 'ear.status': 'affirming', 'ear.trustworthiness-vector': {}, 'ear.appraisal-policy-id': 'a/p' } },
  'sigil.tenant': 'acme',
  'sigil.kind': 'tpm',
};
const resolver = (alg: 'ES256' | 'ES384') => async (kid: string) => (kid === 'k' ? keys[alg].publicKey : undefined);
const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof SigilError ? e.code : String(e)));

test('broker-signed EARs verify with jose (src/policy/ear.ts), and jose-signed EARs verify here', async () => {
  for (const alg of ['ES256', 'ES384'] as const) {
    const token = signEarFast(claims, keys[alg].privateKey, { kid: 'k', alg });
    assert.deepEqual(await verifyEar(token, resolver(alg), NOW), claims);
    const fromJose = await new SignJWT(claims as never).setProtectedHeader({ alg, kid: 'k', typ: 'JWT' }).sign(keys[alg].privateKey);
    assert.deepEqual(await verifyEarFast(fromJose, resolver(alg), NOW), claims);
  }
});

test('refusals: expired, tampered, wrong key, alg none or HS256, alg/curve mismatch, crit, wrong profile, garbage', async () => {
  const token = signEarFast(claims, keys.ES256.privateKey, { kid: 'k', alg: 'ES256' });
  const [h, p, s] = token.split('.');
  const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  assert.equal(await codeOf(verifyEarFast(token, resolver('ES256'), new Date(NOW.getTime() + 60_000))), 'ear.expired');
  assert.equal(await codeOf(verifyEarFast(`${h}.${enc({ ...claims, 'sigil.tenant': 'evil' })}.${s}`, resolver('ES256'), NOW)), 'ear.signature_invalid');
  assert.equal(await codeOf(verifyEarFast(token, resolver('ES384'), NOW)), 'ear.signature_invalid');
  assert.equal(await codeOf(verifyEarFast(`${enc({ alg: 'none', kid: 'k' })}.${p}.`, resolver('ES256'), NOW)), 'ear.signature_invalid');
  assert.equal(await codeOf(verifyEarFast(`${enc({ alg: 'HS256', kid: 'k' })}.${p}.${s}`, resolver('ES256'), NOW)), 'ear.signature_invalid');
  assert.equal(await codeOf(verifyEarFast(`${enc({ alg: 'ES384', kid: 'k' })}.${p}.${s}`, resolver('ES256'), NOW)), 'ear.signature_invalid');
  assert.equal(await codeOf(verifyEarFast(`${enc({ alg: 'ES256', kid: 'k', crit: ['x'] })}.${p}.${s}`, resolver('ES256'), NOW)), 'ear.malformed');
  assert.equal(await codeOf(verifyEarFast(signEarFast({ ...claims, eat_profile: 'other' as typeof EAR_PROFILE }, keys.ES256.privateKey, { kid: 'k', alg: 'ES256' }), resolver('ES256'), NOW)), 'ear.profile_invalid');
  for (const garbage of ['', 'a.b', 'a.b.c.d', '!!.!!.!!', `${h}.bm90IGpzb24.${s}`]) assert.notEqual(await codeOf(verifyEarFast(garbage, resolver('ES256'), NOW)), 'ok');
});
