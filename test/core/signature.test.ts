import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, constants, type KeyObject } from 'node:crypto';
import { test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import type { HashName } from '../../src/core/hash.ts';
import { verifySignature, verifyWebCrypto, assertPublicKey, type NamedCurve, type PublicKeyInput, type SignatureCheck } from '../../src/core/signature.ts';

/** Both paths of core/signature.ts — node:crypto (Node) and WebCrypto (browsers) — must agree on every case. */
async function both(check: SignatureCheck): Promise<boolean | string> {
  const run = async (f: (c: SignatureCheck) => Promise<boolean>) => {
    try {
      return await f(check);
    } catch (error) {
      assert.ok(isSigilError(error), String(error));
      return error.code;
    }
  };
  const node = await run(verifySignature);
  const web = await run(verifyWebCrypto);
  assert.equal(node, web, `node:crypto and WebCrypto disagree (${check.alg} ${check.namedCurve ?? ''})`);
  return node;
}

const NODE_HASH: Record<HashName, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };
const CURVES: [NamedCurve, number, HashName][] = [['P-256', 32, 'SHA-256'], ['P-384', 48, 'SHA-384'], ['P-521', 66, 'SHA-512']];

function forms(publicKey: KeyObject, size: number): PublicKeyInput[] {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = new Uint8Array(2 * size);
  point.set(Buffer.from(jwk.x!, 'base64url'), 0);
  point.set(Buffer.from(jwk.y!, 'base64url'), size);
  return [{ spki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })) }, { jwk }, { ecPoint: point }];
}

test('ECDSA P-256/384/521: every key form, r and s of every shape, tampering and bad lengths', async () => {
  for (const [curve, size, hash] of CURVES) {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
    const other = generateKeyPairSync('ec', { namedCurve: curve === 'P-256' ? 'P-384' : 'P-256' }).publicKey;
    let leadingZero = 0;
    let highBit = 0;
    // Enough signatures to meet r or s with a set high bit and (over all curves) with leading zero bytes.
    for (let i = 0; i < 300; i++) {
      const data = new TextEncoder().encode(`message ${curve} ${i}`);
      const signature = new Uint8Array(sign(NODE_HASH[hash], data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
      if (signature[0] === 0 || signature[size] === 0) leadingZero++;
      if (signature[0] & 0x80 || signature[size] & 0x80) highBit++;
      const key = forms(publicKey, size)[i % 3];
      assert.equal(await both({ alg: 'ECDSA', hash, namedCurve: curve, key, data, signature }), true);
      if (i % 10 === 0) {
        const tampered = data.slice();
        tampered[0] ^= 1;
        assert.equal(await both({ alg: 'ECDSA', hash, namedCurve: curve, key, data: tampered, signature }), false);
        const flipped = signature.slice();
        flipped[size + 3] ^= 0x40;
        assert.equal(await both({ alg: 'ECDSA', hash, namedCurve: curve, key, data, signature: flipped }), false);
        assert.equal(await both({ alg: 'ECDSA', hash, namedCurve: curve, key, data, signature: signature.subarray(1) }), false);
        assert.equal(await both({ alg: 'ECDSA', hash, namedCurve: curve, key, data, signature: new Uint8Array(2 * size) }), false);
      }
    }
    if (curve !== 'P-521') assert.ok(highBit > 0, `${curve}: no signature with a high bit set`);
    if (curve === 'P-521') assert.ok(leadingZero > 0, 'P-521 r or s always have a leading zero byte');
    // A key on another curve, or of another type, is the key's problem, not "does not verify".
    const data = new Uint8Array([1, 2, 3]);
    const signature = new Uint8Array(2 * size);
    assert.equal(await both({ alg: 'ECDSA', hash, namedCurve: curve, key: { spki: new Uint8Array(other.export({ format: 'der', type: 'spki' })) }, data, signature }), 'core.public_key_invalid');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    assert.equal(await both({ alg: 'ECDSA', hash, namedCurve: curve, key: { spki: new Uint8Array(rsa.export({ format: 'der', type: 'spki' })) }, data, signature }), 'core.public_key_invalid');
  }
});

test('an EC point that is not on the curve, or of the wrong size, is refused as a key', async () => {
  const point = new Uint8Array(64).fill(7);
  const check = { alg: 'ECDSA', hash: 'SHA-256', namedCurve: 'P-256', data: new Uint8Array(1), signature: new Uint8Array(64) } as const;
  assert.equal(await both({ ...check, key: { ecPoint: point } }), 'core.public_key_invalid');
  assert.equal(await both({ ...check, key: { ecPoint: point.subarray(1) } }), 'core.public_key_invalid');
  assert.equal(await both({ ...check, key: { spki: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]) } }), 'core.public_key_invalid');
  await assert.rejects(assertPublicKey({ ...check, key: { ecPoint: point } }), (e: unknown) => isSigilError(e, 'core.public_key_invalid'));
});

test('RSASSA-PKCS1-v1_5 and RSA-PSS (exact salt length) with SPKI, JWK and modulus/exponent keys', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const keys: PublicKeyInput[] = [
    { spki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })) },
    { jwk },
    { rsaModulus: new Uint8Array(Buffer.from(jwk.n!, 'base64url')), rsaExponent: 65537 },
  ];
  const data = new TextEncoder().encode('quote');
  for (const hash of ['SHA-1', 'SHA-256', 'SHA-384'] as HashName[]) {
    const pkcs1 = new Uint8Array(sign(NODE_HASH[hash], data, privateKey));
    for (const key of keys) {
      assert.equal(await both({ alg: 'RSASSA-PKCS1-v1_5', hash, key, data, signature: pkcs1 }), true);
      assert.equal(await both({ alg: 'RSASSA-PKCS1-v1_5', hash, key, data: data.subarray(1), signature: pkcs1 }), false);
      assert.equal(await both({ alg: 'RSASSA-PKCS1-v1_5', hash, key, data, signature: pkcs1.subarray(1) }), false);
    }
    const saltLength = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-384': 48, 'SHA-512': 64 }[hash];
    const pss = new Uint8Array(sign(NODE_HASH[hash], data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }));
    for (const key of keys) {
      assert.equal(await both({ alg: 'RSA-PSS', hash, key, data, signature: pss, saltLength }), true);
      assert.equal(await both({ alg: 'RSA-PSS', hash, key, data, signature: pss, saltLength: 256 - saltLength - 2 }), false);
      assert.equal(await both({ alg: 'RSASSA-PKCS1-v1_5', hash, key, data, signature: pss }), false);
    }
  }
  // The wrong exponent is another key: its signatures do not verify.
  assert.equal(await both({ alg: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', key: { rsaModulus: new Uint8Array(Buffer.from(jwk.n!, 'base64url')), rsaExponent: 3 }, data, signature: new Uint8Array(sign('sha256', data, privateKey)) }), false);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  assert.equal(await both({ alg: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', key: { spki: new Uint8Array(ec.export({ format: 'der', type: 'spki' })) }, data, signature: new Uint8Array(256) }), 'core.public_key_invalid');
});

test('a cached key is still checked against each call’s algorithm and curve', async () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const key = { spki: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' })) };
  const data = new Uint8Array([9]);
  const signature = new Uint8Array(sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }));
  assert.equal(await both({ alg: 'ECDSA', hash: 'SHA-256', namedCurve: 'P-256', key, data, signature }), true);
  assert.equal(await both({ alg: 'ECDSA', hash: 'SHA-256', namedCurve: 'P-384', key, data, signature }), 'core.public_key_invalid');
  assert.equal(await both({ alg: 'RSA-PSS', hash: 'SHA-256', key, data, signature, saltLength: 32 }), 'core.public_key_invalid');
});
