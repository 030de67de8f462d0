import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { SigilError } from '../../src/core/errors.ts';
import { ReleasePolicySchema, mergeReferenceValues } from '../../src/policy/document.ts';
import { EAR_PROFILE, earStatus, signEar, verifyEar, VERIFIER_ID, type EarClaims } from '../../src/policy/ear.ts';
import { evaluateRelease } from '../../src/policy/release.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const NOW = new Date('2026-01-01T00:00:00Z');

function claims(overrides: Partial<EarClaims> = {}): EarClaims {
  const iat = Math.floor(NOW.getTime() / 1000);
  return {
    eat_profile: EAR_PROFILE,
    iat,
    exp: iat + 300,
    jti: 'j1',
    'ear.verifier-id': { ...VERIFIER_ID },
    submods: { tpm: { 'ear.status': 'affirming', 'ear.trustworthiness-vector': { configuration: 2, executables: 2 }, 'ear.appraisal-policy-id': 'acme/golden' } },
    'sigil.tenant': 'acme',
    'sigil.kind': 'tpm',
    'sigil.device': 'edge-1',
    'sigil.use': 'release',
    ...overrides,
  };
}

const resolve = async (kid: string) => (kid === 'k1' ? publicKey : undefined);

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof SigilError);
    return error.code;
  }
}

test('an EAR signs and verifies with the profile, kid and claims intact', async () => {
  const token = await signEar(claims(), privateKey, { kid: 'k1', alg: 'ES256' });
  const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
  assert.deepEqual(header, { alg: 'ES256', kid: 'k1', typ: 'JWT' });
  const verified = await verifyEar(token, resolve, NOW);
  assert.equal(verified.eat_profile, 'tag:github.com,2023:veraison/ear');
  assert.equal(verified.submods.tpm['ear.appraisal-policy-id'], 'acme/golden');
});

test('EAR refusals: expired, unknown key, wrong key, tampered, wrong profile, not a JWT', async () => {
  const token = await signEar(claims(), privateKey, { kid: 'k1', alg: 'ES256' });
  assert.equal(await code(verifyEar(token, resolve, new Date(NOW.getTime() + 301_000))), 'ear.expired');
  assert.equal(await code(verifyEar(await signEar(claims(), privateKey, { kid: 'k9', alg: 'ES256' }), resolve, NOW)), 'ear.signature_invalid');
  assert.equal(await code(verifyEar(await signEar(claims(), other.privateKey, { kid: 'k1', alg: 'ES256' }), resolve, NOW)), 'ear.signature_invalid');
  const [header, , signature] = token.split('.');
  const forged = Buffer.from(JSON.stringify({ ...claims(), 'sigil.tenant': 'other' })).toString('base64url');
  assert.equal(await code(verifyEar(`${header}.${forged}.${signature}`, resolve, NOW)), 'ear.signature_invalid');
  assert.equal(await code(verifyEar(await signEar(claims({ eat_profile: 'x' as typeof EAR_PROFILE }), privateKey, { kid: 'k1', alg: 'ES256' }), resolve, NOW)), 'ear.profile_invalid');
  assert.equal(await code(verifyEar('garbage', resolve, NOW)), 'ear.malformed');
});

test('the EAR status is the worst submodule status', () => {
  const vector = {};
  const sub = (status: 'affirming' | 'warning' | 'contraindicated') => ({ 'ear.status': status, 'ear.trustworthiness-vector': vector, 'ear.appraisal-policy-id': 'p' });
  assert.equal(earStatus({ submods: { a: sub('affirming'), b: sub('warning') } }), 'warning');
  assert.equal(earStatus({ submods: { a: sub('contraindicated'), b: sub('warning') } }), 'contraindicated');
  assert.equal(earStatus({ submods: {} }), 'none');
});

test('release rules: each leaves a trace entry; any failure names its rule', () => {
  const policy = ReleasePolicySchema.parse({ policies: ['golden'], kinds: ['tpm'], devices: ['edge-1'], trustVector: { configuration: 2 } });
  const pass = evaluateRelease(claims(), policy);
  assert.deepEqual(pass.map((t) => [t.rule, t.result]), [
    ['release.status', 'pass'],
    ['release.policy', 'pass'],
    ['release.kind', 'pass'],
    ['release.device', 'pass'],
    ['release.trust-vector.configuration', 'pass'],
  ]);
  const warning = claims({ submods: { tpm: { 'ear.status': 'warning', 'ear.trustworthiness-vector': { configuration: 32 }, 'ear.appraisal-policy-id': 'acme/other' } }, 'sigil.device': 'edge-2' });
  const failed = evaluateRelease(warning, policy).filter((t) => t.result === 'fail').map((t) => t.rule);
  assert.deepEqual(failed, ['release.status', 'release.policy', 'release.device', 'release.trust-vector.configuration']);
  // A warning may be accepted explicitly; an absent trust claim never meets a bound.
  assert.equal(evaluateRelease(warning, ReleasePolicySchema.parse({ minStatus: 'warning' }))[0].result, 'pass');
  assert.equal(evaluateRelease(claims(), ReleasePolicySchema.parse({ trustVector: { hardware: 2 } }))[1].result, 'fail');
  assert.throws(() => ReleasePolicySchema.parse({ minStatus: 'contraindicated' }));
  assert.throws(() => ReleasePolicySchema.parse({ allowEverything: true }));
});

test('reference values merge: objects by key, value lists as a union', () => {
  const merged = mergeReferenceValues({ pcrs: { sha256: { '0': ['a'], '7': 'b' } } }, { pcrs: { sha256: { '7': ['c'], '16': ['d'] } } }, { requireSafeClock: true });
  assert.deepEqual(merged, { pcrs: { sha256: { '0': ['a'], '7': ['b', 'c'], '16': ['d'] } }, requireSafeClock: true });
});
