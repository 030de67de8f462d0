/**
 * Signed reference values: round trips for every supported key type, and every refusal the loader
 * owes a verifier (changed value, bad signature, untrusted key, expired, not yet valid, foreign
 * algorithm or type, malformed document) as its typed error.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { test } from 'node:test';
import { CompactSign } from 'jose';
import { SigilError } from '../../../src/core/errors.ts';
import { checkReferenceValueDocument, findReferenceValues, referenceValueDocument, type ReferenceValue } from '../../../src/measure/reference-values/document.ts';
import { importRvSigningKey, importRvTrustedKeys, loadReferenceValues, publicJwk, signReferenceValues, type RvKey } from '../../../src/measure/reference-values/jws.ts';

const hex = (bytes: number, fill = 'ab') => fill.repeat(bytes);
const VALUES: ReferenceValue[] = [
  { kind: 'snp-measurement', value: hex(48), sources: [{ name: 'ovmf', sha256: hex(32, '01') }], parameters: { vcpus: 4, vcpuType: 'EPYC-v4', mode: 'snp' } },
  { kind: 'sev-measurement', value: hex(32) },
  { kind: 'tdx-mrtd', value: hex(48, 'cd') },
  { kind: 'tdx-rtmr', index: 0, value: hex(48, 'ef') },
  { kind: 'tpm-pcr', index: 4, bank: 'sha256', value: hex(32, '44'), label: 'UKI boot' },
  { kind: 'tpm-pcr', index: 11, bank: 'sha384', value: hex(48, '11') },
];

function pemPair(type: 'ec' | 'ed25519' | 'rsa', options: Record<string, unknown> = {}): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync(type as 'ec', { ...options, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } } as never) as unknown as { privateKey: string; publicKey: string };
  return { privatePem: privateKey, publicPem: publicKey };
}

const P256 = pemPair('ec', { namedCurve: 'P-256' });
const P384 = pemPair('ec', { namedCurve: 'P-384' });
const OTHER = pemPair('ec', { namedCurve: 'P-384' });

function b64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}

async function refused(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SigilError, `expected SigilError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

for (const [name, pair, alg] of [
  ['P-256', P256, 'ES256'],
  ['P-384', P384, 'ES384'],
  ['P-521', pemPair('ec', { namedCurve: 'P-521' }), 'ES512'],
  ['Ed25519', pemPair('ed25519'), 'EdDSA'],
  ['RSA', pemPair('rsa', { modulusLength: 2048 }), 'PS256'],
] as const) {
  test(`sign and load reference values with a ${name} key (${alg})`, async () => {
    const key = await importRvSigningKey(pair.privatePem, 'rv-2026');
    assert.equal(key.alg, alg);
    const doc = referenceValueDocument(VALUES, { issuer: 'Sigil CI', notAfter: new Date(Date.now() + 86_400_000) });
    const jws = await signReferenceValues(doc, key);
    const header = JSON.parse(Buffer.from(jws.split('.')[0], 'base64url').toString());
    assert.deepEqual(header, { alg, typ: 'sigil-rv+json', kid: 'rv-2026' });
    const loaded = await loadReferenceValues(jws, await importRvTrustedKeys(pair.publicPem));
    assert.deepEqual(loaded.document, doc);
    assert.equal(loaded.signer.alg, alg);
    // The same key published as a JWK (set) is trusted the same way.
    const jwks = JSON.stringify({ keys: [await publicJwk(key)] });
    assert.deepEqual((await loadReferenceValues(jws, await importRvTrustedKeys(jwks))).document, doc);
  });
}

test('a changed value, a bad signature or an untrusted key is refused: rv.signature_invalid', async () => {
  const key = await importRvSigningKey(P384.privatePem);
  const trusted = await importRvTrustedKeys(P384.publicPem);
  const jws = await signReferenceValues(referenceValueDocument(VALUES), key);
  const [header, payload, signature] = jws.split('.');
  const document = JSON.parse(Buffer.from(payload, 'base64url').toString());
  document.values[0].value = hex(48, 'ac');
  await refused(loadReferenceValues(`${header}.${b64url(JSON.stringify(document))}.${signature}`, trusted), 'rv.signature_invalid');
  const sig = Buffer.from(signature, 'base64url');
  sig[10] ^= 1;
  await refused(loadReferenceValues(`${header}.${payload}.${sig.toString('base64url')}`, trusted), 'rv.signature_invalid');
  await refused(loadReferenceValues(jws, await importRvTrustedKeys(OTHER.publicPem)), 'rv.signature_invalid');
  await refused(loadReferenceValues(jws, await importRvTrustedKeys(P256.publicPem)), 'rv.signature_invalid');
  await refused(loadReferenceValues(jws, []), 'rv.signature_invalid');
  // A key id narrows the trusted keys; it never adds one.
  const withKid = await signReferenceValues(referenceValueDocument(VALUES), { ...key, kid: 'a' });
  await refused(loadReferenceValues(withKid, trusted.map((k) => ({ ...k, kid: 'b' }))), 'rv.signature_invalid');
  assert.ok(await loadReferenceValues(withKid, [...(await importRvTrustedKeys(OTHER.publicPem)), ...trusted.map((k) => ({ ...k, kid: 'a' }))]));
});

test('a key carried in the token is never trusted', async () => {
  const attacker = await importRvSigningKey(OTHER.privatePem);
  const payload = new TextEncoder().encode(JSON.stringify(referenceValueDocument(VALUES)));
  const jws = await new CompactSign(payload).setProtectedHeader({ alg: 'ES384', typ: 'sigil-rv+json', jwk: await publicJwk(attacker) } as never).sign(attacker.key);
  await refused(loadReferenceValues(jws, await importRvTrustedKeys(P384.publicPem)), 'rv.signature_invalid');
});

test('expired and not-yet-valid documents are refused after the signature checks', async () => {
  const key = await importRvSigningKey(P256.privatePem);
  const trusted = await importRvTrustedKeys(P256.publicPem);
  const now = new Date('2026-06-01T00:00:00Z');
  const doc = referenceValueDocument(VALUES, { now, notBefore: new Date('2026-05-01T00:00:00Z'), notAfter: new Date('2026-07-01T00:00:00Z') });
  const jws = await signReferenceValues(doc, key);
  assert.equal((await loadReferenceValues(jws, trusted, { now })).document.id, doc.id);
  await refused(loadReferenceValues(jws, trusted, { now: new Date('2026-07-01T00:00:01Z') }), 'rv.expired');
  await refused(loadReferenceValues(jws, trusted, { now: new Date('2026-04-30T23:59:59Z') }), 'rv.not_yet_valid');
});

test('foreign algorithms, types and payloads are refused', async () => {
  const key = await importRvSigningKey(P256.privatePem);
  const trusted = await importRvTrustedKeys(P256.publicPem);
  const body = b64url(JSON.stringify(referenceValueDocument(VALUES)));
  await refused(loadReferenceValues(`${b64url('{"alg":"none","typ":"sigil-rv+json"}')}.${body}.`, trusted), 'rv.algorithm_unsupported');
  await refused(loadReferenceValues(`${b64url('{"alg":"HS256","typ":"sigil-rv+json"}')}.${body}.c2ln`, trusted), 'rv.algorithm_unsupported');
  await refused(loadReferenceValues('not a jws', trusted), 'rv.malformed');
  const signRaw = (payload: string, typ = 'sigil-rv+json') => new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'ES256', typ }).sign(key.key);
  await refused(loadReferenceValues(await signRaw(JSON.stringify(referenceValueDocument(VALUES)), 'JWT'), trusted), 'rv.malformed');
  await refused(loadReferenceValues(await signRaw('{"profile":"sigil-reference-values/1"'), trusted), 'rv.malformed');
  await refused(loadReferenceValues(await signRaw(JSON.stringify({ ...referenceValueDocument(VALUES), extra: 1 })), trusted), 'rv.malformed');
});

test('document checks: each kind has its value size, index and bank rules', () => {
  const doc = (values: unknown[]) => () => checkReferenceValueDocument({ profile: 'sigil-reference-values/1', id: 'x', issuedAt: '2026-01-01T00:00:00Z', values });
  assert.equal(doc(VALUES)().values.length, VALUES.length);
  for (const bad of [
    { kind: 'snp-measurement', value: hex(32) },
    { kind: 'snp-measurement', value: hex(48).toUpperCase() },
    { kind: 'tdx-rtmr', value: hex(48) },
    { kind: 'tdx-rtmr', index: 4, value: hex(48) },
    { kind: 'tdx-mrtd', index: 0, value: hex(48) },
    { kind: 'tpm-pcr', index: 4, value: hex(32) },
    { kind: 'tpm-pcr', index: 24, bank: 'sha256', value: hex(32) },
    { kind: 'tpm-pcr', index: 4, bank: 'sha256', value: hex(48) },
    { kind: 'tpm-pcr', index: 4, bank: 'md5', value: hex(16) },
    { kind: 'snp-measurement', value: hex(48), sources: [{ name: 'x', sha256: hex(31) }] },
    { kind: 'snp-measurement', value: hex(48), parameters: { nested: {} } },
    { kind: 'snp-measurement', value: hex(48), surprise: true },
    { kind: 'pcr', value: hex(32) },
  ]) {
    assert.throws(doc([bad]), { code: 'rv.malformed' }, JSON.stringify(bad));
  }
  assert.throws(doc([]), { code: 'rv.malformed' });
  assert.throws(() => checkReferenceValueDocument({ profile: 'other', id: 'x', issuedAt: '2026-01-01T00:00:00Z', values: VALUES }), { code: 'rv.malformed' });
});

test('a verifier finds the values it compares claims with', () => {
  const doc = referenceValueDocument(VALUES);
  assert.deepEqual(findReferenceValues(doc, 'tpm-pcr', { index: 4, bank: 'sha256' }).map((v) => v.value), [hex(32, '44')]);
  assert.equal(findReferenceValues(doc, 'tpm-pcr').length, 2);
  assert.equal(findReferenceValues(doc, 'tdx-rtmr', { index: 1 }).length, 0);
});

test('signing keys must be private and trusted keys public', async () => {
  await refused(importRvSigningKey(P256.publicPem), 'rv.key_invalid');
  await refused(importRvSigningKey('garbage'), 'rv.key_invalid');
  const key: RvKey = await importRvSigningKey(P256.privatePem);
  const { ...privateJwk } = await (await import('jose')).exportJWK(key.key);
  await refused(importRvTrustedKeys(JSON.stringify(privateJwk)), 'rv.key_invalid');
  await refused(importRvTrustedKeys('{"kty":"oct","k":"AAAA"}'), 'rv.key_invalid');
});
