/** TPM public areas and signatures ↔ node:crypto, without a TPM (the TPM-backed checks are in commands/). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { SigilError, isSigilError } from '../../src/core/errors.ts';
import { utf8 } from '../../src/core/bytes.ts';
import { TPM_ALG, TPM_ECC_CURVE } from '../../src/tpm/constants.ts';
import {
  ecdsaDerToTpmSignature,
  ecdsaSignatureToDer,
  ecdsaSignatureToP1363,
  keyObjectToTpmPublic,
  keyObjectToTpmSensitive,
  tpmPublicToKeyObject,
  tpmPublicToPem,
  tpmSignatureToNode,
  verifyTpmSignature,
} from '../../src/tpm/public-key.ts';
import { rsaSigningTemplate, eccSigningTemplate } from '../../src/tpm/templates.ts';

function spki(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'der' }).toString('hex');
}

test('node keys → TpmPublic → node keys keep the same SubjectPublicKeyInfo (P-256/384/521, RSA 1024-4096)', () => {
  const pairs: [string, KeyObject, number][] = [
    ['P-256', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, TPM_ECC_CURVE.NIST_P256],
    ['P-384', generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, TPM_ECC_CURVE.NIST_P384],
    ['P-521', generateKeyPairSync('ec', { namedCurve: 'P-521' }).publicKey, TPM_ECC_CURVE.NIST_P521],
  ];
  for (const [label, key, curveId] of pairs) {
    const publicArea = keyObjectToTpmPublic(key);
    assert.ok(publicArea.type === TPM_ALG.ECC && publicArea.curveId === curveId, label);
    assert.equal(spki(tpmPublicToKeyObject(publicArea)), spki(key), label);
  }
  for (const bits of [1024, 2048, 3072, 4096]) {
    const key = generateKeyPairSync('rsa', { modulusLength: bits }).publicKey;
    const publicArea = keyObjectToTpmPublic(key);
    assert.ok(publicArea.type === TPM_ALG.RSA && publicArea.keyBits === bits && publicArea.unique.length === bits / 8);
    assert.equal(publicArea.exponent, 0, 'the default exponent 65537 is written as 0, as the TPM does');
    assert.equal(spki(tpmPublicToKeyObject(publicArea)), spki(key), `RSA-${bits}`);
  }
  assert.match(tpmPublicToPem(keyObjectToTpmPublic(pairs[0][1])), /^-----BEGIN PUBLIC KEY-----\n/);
});

test('a non-default RSA exponent survives the round trip', () => {
  const key = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 3 }).publicKey;
  const publicArea = keyObjectToTpmPublic(key);
  assert.ok(publicArea.type === TPM_ALG.RSA && publicArea.exponent === 3);
  assert.equal(spki(tpmPublicToKeyObject(publicArea)), spki(key));
});

test('impossible public areas give typed errors', () => {
  const rsa = rsaSigningTemplate();
  const expectInvalid = (fn: () => unknown, code = 'tpm.public_key_invalid') => assert.throws(fn, (e: unknown) => isSigilError(e, code));
  expectInvalid(() => tpmPublicToKeyObject({ ...rsa, unique: new Uint8Array(255).fill(0xff) }), 'tpm.public_key_invalid');
  expectInvalid(() => tpmPublicToKeyObject({ ...rsa, keyBits: 8192, unique: new Uint8Array(1024).fill(0xff) }));
  expectInvalid(() => tpmPublicToKeyObject({ ...rsa, keyBits: 512, unique: new Uint8Array(64).fill(0xff) }));
  const ecc = eccSigningTemplate();
  expectInvalid(() => tpmPublicToKeyObject({ ...ecc, unique: { x: new Uint8Array(33).fill(1), y: new Uint8Array(32) } }));
  expectInvalid(() => tpmPublicToKeyObject({ ...ecc, unique: { x: new Uint8Array(32).fill(1), y: new Uint8Array(32).fill(2) } }), 'tpm.public_key_invalid');
  expectInvalid(() => tpmPublicToKeyObject({ ...ecc, curveId: TPM_ECC_CURVE.BN_P256, unique: { x: new Uint8Array(32), y: new Uint8Array(32) } }), 'tpm.curve_unsupported');
  expectInvalid(() => keyObjectToTpmPublic(generateKeyPairSync('ed25519').publicKey));
  expectInvalid(() => keyObjectToTpmSensitive(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
});

test('keyObjectToTpmSensitive carries the ECC scalar (curve-sized) or one RSA prime', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const ecSensitive = keyObjectToTpmSensitive(ec, utf8.encode('pw'));
  assert.equal(ecSensitive.sensitiveType, TPM_ALG.ECC);
  assert.equal(ecSensitive.sensitive.length, 48);
  assert.deepEqual(ecSensitive.authValue, utf8.encode('pw'));
  const rsa = keyObjectToTpmSensitive(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  assert.equal(rsa.sensitiveType, TPM_ALG.RSA);
  assert.equal(rsa.sensitive.length, 128);
});

test('ECDSA signatures: DER and P1363 forms that node accepts, and DER → TPMT_SIGNATURE', () => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  for (let i = 0; i < 20; i++) {
    const message = randomBytes(40);
    const der = new Uint8Array(nodeSign('sha256', message, privateKey));
    const signature = ecdsaDerToTpmSignature(der, TPM_ALG.SHA256);
    if (signature.sigAlg !== TPM_ALG.ECDSA) throw new Error('unreachable');
    assert.deepEqual(ecdsaSignatureToDer(signature.r, signature.s), der, 'minimal DER round-trips exactly');
    const p1363 = ecdsaSignatureToP1363(signature.r, signature.s, 32);
    assert.equal(p1363.length, 64);
    assert.equal(nodeVerify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, p1363), true);
    assert.equal(verifyTpmSignature(publicKey, message, signature), true);
    assert.equal(verifyTpmSignature(keyObjectToTpmPublic(publicKey), message, signature), true);
  }
  // A high bit in r needs a leading zero octet in DER.
  assert.deepEqual(ecdsaSignatureToDer(new Uint8Array([0x80]), new Uint8Array([0x01])), new Uint8Array([0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x01]));
});

test('garbled DER signatures and unsupported schemes give typed errors, never a crash', () => {
  const der = new Uint8Array(nodeSign('sha256', utf8.encode('x'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
  for (let i = 0; i < 500; i++) {
    const garbled = der.slice(0, 1 + (i % der.length));
    if (i % 3 === 0) garbled[i % garbled.length] ^= 1 << i % 8;
    const input = i % 5 === 0 ? new Uint8Array(randomBytes(i % 80)) : garbled;
    try {
      ecdsaDerToTpmSignature(input, TPM_ALG.SHA256);
    } catch (error) {
      assert.ok(error instanceof SigilError && error.code === 'tpm.signature_invalid', String(error));
    }
  }
  assert.throws(
    () => tpmSignatureToNode({ sigAlg: TPM_ALG.HMAC, hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32) }),
    (e: unknown) => isSigilError(e, 'tpm.signature_unsupported'),
  );
  assert.throws(() => tpmSignatureToNode({ sigAlg: TPM_ALG.RSASSA, hashAlg: 0x99, sig: new Uint8Array(256) }), (e: unknown) => isSigilError(e, 'tpm.hash_unsupported'));
});
