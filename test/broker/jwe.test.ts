import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { compactDecrypt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { encryptToRuntimeKey } from '../../src/broker/jwe.ts';

// jose is the oracle: every JWE the broker makes must open with jose's compactDecrypt.
test('ECDH-ES+A256KW / A256GCM on P-256, P-384 and P-521 opens with jose', async () => {
  for (const crv of ['P-256', 'P-384', 'P-521']) {
    const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv, extractable: true });
    const recipient = createPublicKey({ key: (await exportJWK(publicKey)) as never, format: 'jwk' });
    for (const size of [0, 1, 32, 1000]) {
      const secret = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff);
      const jwe = await encryptToRuntimeKey(secret, recipient, { kid: 'k1', cty: 'application/octet-stream' });
      const header = decodeProtectedHeader(jwe);
      assert.equal(header.alg, 'ECDH-ES+A256KW');
      assert.equal(header.enc, 'A256GCM');
      assert.equal(header.kid, 'k1');
      assert.equal((header.epk as { crv: string }).crv, crv);
      const { plaintext } = await compactDecrypt(jwe, privateKey);
      assert.deepEqual(plaintext, secret, `${crv}, ${size} bytes`);
    }
    // Tampering with the ciphertext or the header fails authentication.
    const jwe = await encryptToRuntimeKey(new Uint8Array([1, 2, 3]), recipient, { kid: 'k', cty: 'x' });
    const parts = jwe.split('.');
    const flipped = Buffer.from(parts[3], 'base64url');
    flipped[0] ^= 1;
    await assert.rejects(compactDecrypt([parts[0], parts[1], parts[2], flipped.toString('base64url'), parts[4]].join('.'), privateKey));
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString());
    await assert.rejects(compactDecrypt([Buffer.from(JSON.stringify({ ...header, kid: 'other' })).toString('base64url'), ...parts.slice(1)].join('.'), privateKey));
  }
});

test('RSA runtime keys get RSA-OAEP-256 (through jose)', async () => {
  const { publicKey, privateKey } = await generateKeyPair('RSA-OAEP-256', { modulusLength: 2048, extractable: true });
  const recipient = createPublicKey({ key: (await exportJWK(publicKey)) as never, format: 'jwk' });
  const jwe = await encryptToRuntimeKey(new TextEncoder().encode('rsa secret'), recipient, { kid: 'k', cty: 'x' });
  assert.equal(decodeProtectedHeader(jwe).alg, 'RSA-OAEP-256');
  assert.equal(new TextDecoder().decode((await compactDecrypt(jwe, privateKey)).plaintext), 'rsa secret');
});
