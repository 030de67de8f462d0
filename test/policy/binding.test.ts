import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { SigilError } from '../../src/core/errors.ts';
import { bindingFromThumbprint, bindingMatches, checkRuntimeJwk, jwkThumbprint, runtimeKeyBinding } from '../../src/policy/binding.ts';

// RFC 7638 section 3.1: the example RSA key and its thumbprint.
const RFC7638_KEY = {
  kty: 'RSA' as const,
  n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  e: 'AQAB',
};

test('the JWK thumbprint is RFC 7638 (the RFC\'s own example)', async () => {
  assert.equal(await jwkThumbprint(RFC7638_KEY), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
});

test('binding = SHA-256(nonce ‖ thumbprint bytes), recomputed by hand', async () => {
  const nonce = new Uint8Array(32).map((_, i) => i);
  const thumbprint = Buffer.from('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs', 'base64url');
  const expected = createHash('sha256').update(nonce).update(thumbprint).digest();
  assert.deepEqual(Buffer.from(await runtimeKeyBinding(nonce, RFC7638_KEY)), expected);
  assert.deepEqual(Buffer.from(await bindingFromThumbprint(nonce, 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs')), expected);
});

test('binding data matches exactly, or as binding ‖ zero padding (64-byte report_data)', () => {
  const binding = new Uint8Array(32).fill(0xab);
  const padded = new Uint8Array(64);
  padded.set(binding);
  assert.equal(bindingMatches(binding, binding), true);
  assert.equal(bindingMatches(padded, binding), true);
  padded[40] = 1;
  assert.equal(bindingMatches(padded, binding), false, 'non-zero padding is another binding');
  assert.equal(bindingMatches(binding.subarray(0, 31), binding), false);
  const other = binding.slice();
  other[0] ^= 1;
  assert.equal(bindingMatches(other, binding), false);
});

test('runtime keys: public EC P-256/384/521 and RSA ≥ 2048 only', () => {
  const x = Buffer.alloc(32, 1).toString('base64url');
  assert.deepEqual(checkRuntimeJwk({ kty: 'EC', crv: 'P-256', x, y: x, use: 'enc' }), { kty: 'EC', crv: 'P-256', x, y: x });
  const cases: [unknown, RegExp][] = [
    [{ kty: 'EC', crv: 'P-256', x, y: x, d: x }, /private key members/],
    [{ kty: 'EC', crv: 'secp256k1', x, y: x }, /curve/],
    [{ kty: 'EC', crv: 'P-384', x, y: x }, /wrong length/],
    [{ kty: 'RSA', n: Buffer.alloc(128, 1).toString('base64url'), e: 'AQAB' }, /1024 bits/],
    [{ kty: 'oct', k: x }, /private key members/],
    [{ kty: 'OKP', crv: 'Ed25519', x }, /not EC or RSA/],
    ['not an object', /JWK object/],
    [null, /JWK object/],
  ];
  for (const [input, message] of cases) {
    assert.throws(() => checkRuntimeJwk(input), (error: unknown) => error instanceof SigilError && error.code === 'policy.runtime_key_invalid' && message.test(error.message));
  }
});
