/**
 * The vendor side without a TPM: keyset files (modes, encrypted PKCS#8 that OpenSSL opens too),
 * the certificate hierarchy (checked by Sigil and `openssl verify`), the trust bundle and its
 * refusals, escrow encryption, and signing boot policies and releases in software.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { isSigilError } from '../../src/core/errors.ts';
import { fromHex } from '../../src/core/hex.ts';
import { approvedBootPolicy, bootPolicyRef, parseBootPolicy, sealingPolicy, signBootPolicy, verifyBootPolicy } from '../../src/device/boot-policy.ts';
import { platformClaims } from '../../src/device/certificates.ts';
import { escrowDecrypt, escrowEncrypt } from '../../src/device/escrow.ts';
import { checkProductId } from '../../src/device/identifiers.ts';
import { parsePrivateKeyPem, privateKeyPem, writeKeyFile } from '../../src/device/key-files.ts';
import { createKeyset, Keyset } from '../../src/device/keyset.ts';
import { releaseFloorName, releaseOperand } from '../../src/device/release-floor.ts';
import { parseSignedRelease, signRelease, verifySignedRelease } from '../../src/device/release.ts';
import { loadVendorTrust } from '../../src/device/trust.ts';
import { TPM_ALG, TPM_CC, TPM_EO } from '../../src/tpm/constants.ts';
import { PolicyCalculator } from '../../src/tpm/policy/index.ts';
import { makeVendor, OTHER_PRODUCT, PRODUCT, type VendorFixture } from './support.ts';

const exec = promisify(execFile);
const PASSPHRASE = 'correct horse battery staple';
let vendor: VendorFixture;

before(async () => {
  vendor = await makeVendor({ passphrase: PASSPHRASE });
});

after(async () => {
  await vendor?.remove();
});

function refusedWith(code: string, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(isSigilError(error, code), `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

const sha256Values = (pcrs: Record<number, string>) => new Map([[TPM_ALG.SHA256, new Map(Object.entries(pcrs).map(([k, v]) => [Number(k), fromHex(v)]))]]);

test('the keyset folder is 0700, every file 0600, every private key encrypted PKCS#8', () => {
  const dir = vendor.keyset.dir;
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const files = [...readdirSync(dir), ...readdirSync(path.join(dir, 'products')).map((f) => `products/${f}`)].filter((f) => f !== 'products').sort();
  assert.deepEqual(files, [
    'escrow.key', 'escrow.pub', 'keyset.json', 'manufacturing-ca.crt', 'manufacturing-ca.key', 'policy-signing.crt', 'policy-signing.key',
    'product-ca.crt', 'product-ca.key', 'products/acme-cam.crt', 'products/acme-cam.key', 'products/acme-gw.crt', 'products/acme-gw.key', 'root-ca.crt', 'root-ca.key',
  ]);
  for (const file of files) assert.equal(statSync(path.join(dir, file)).mode & 0o777, 0o600, file);
  for (const file of files.filter((f) => f.endsWith('.key'))) {
    assert.match(readFileSync(path.join(dir, file), 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/, file);
  }
});

test('encrypted key files are PBES2 scrypt + AES-256-CBC that OpenSSL opens with the passphrase, and nothing else does', async () => {
  const file = path.join(vendor.keyset.dir, 'policy-signing.key');
  const parsed = (await exec('openssl', ['asn1parse', '-in', file])).stdout;
  assert.match(parsed, /:PBES2/);
  assert.match(parsed, /:scrypt/);
  assert.match(parsed, /:aes-256-cbc/);
  const text = (await exec('openssl', ['pkey', '-in', file, '-passin', `pass:${PASSPHRASE}`, '-noout', '-text'])).stdout;
  assert.match(text, /ASN1 OID: prime256v1/);
  const viaOpenssl = (await exec('openssl', ['pkey', '-in', file, '-passin', `pass:${PASSPHRASE}`, '-pubout'])).stdout;
  assert.equal(viaOpenssl, createPublicKey(vendor.keyset.privateKey('policy-signing')).export({ type: 'spki', format: 'pem' }).toString());
  assert.throws(() => parsePrivateKeyPem(readFileSync(file, 'utf8'), 'wrong passphrase'), refusedWith('keyset.passphrase_wrong'));
  assert.throws(() => parsePrivateKeyPem(readFileSync(file, 'utf8')), refusedWith('keyset.passphrase_required'));
  const plain = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  assert.ok(parsePrivateKeyPem(privateKeyPem(plain)).equals(plain));
  assert.throws(() => privateKeyPem(plain, ''), refusedWith('keyset.passphrase_empty'));
  assert.throws(() => writeKeyFile(file, plain), refusedWith('keyset.file_exists'), 'a key file is never overwritten');
  assert.throws(() => parsePrivateKeyPem('not a key'), refusedWith('keyset.key_invalid'));
});

test('opening the keyset without its passphrase gives certificates but no private key', async () => {
  const opened = await Keyset.open(vendor.keyset.dir);
  assert.equal(opened.certificate('root-ca').subject, 'CN=Acme Devices Sigil root CA, O=Acme Devices');
  assert.throws(() => opened.privateKey('manufacturing-ca'), refusedWith('keyset.passphrase_required'));
  await assert.rejects(createKeyset({ dir: vendor.keyset.dir, vendor: 'again' }), refusedWith('keyset.file_exists'));
  await assert.rejects(Keyset.open(path.join(vendor.dir, 'nowhere')), refusedWith('keyset.not_found'));
});

test('the certificate hierarchy: a P-384 root over P-256 CAs; product certificates carry the product ID', async () => {
  const root = vendor.keyset.certificate('root-ca');
  assert.equal(root.subject, root.issuer);
  assert.equal(root.getExtension(x509.BasicConstraintsExtension)?.pathLength, 1);
  assert.equal((root.publicKey.algorithm as EcKeyAlgorithm).namedCurve, 'P-384');
  assert.equal((vendor.keyset.certificate('manufacturing-ca').publicKey.algorithm as EcKeyAlgorithm).namedCurve, 'P-256');
  for (const role of ['manufacturing-ca', 'product-ca'] as const) {
    const ca = vendor.keyset.certificate(role);
    assert.equal(ca.issuer, root.subject);
    assert.deepEqual([ca.getExtension(x509.BasicConstraintsExtension)?.ca, ca.getExtension(x509.BasicConstraintsExtension)?.pathLength], [true, 0]);
  }
  const product = vendor.keyset.productCertificate(PRODUCT);
  assert.deepEqual(platformClaims(product), { vendor: 'Acme Devices', productId: PRODUCT, serial: undefined });
  const files = { root: path.join(vendor.keyset.dir, 'root-ca.crt'), ca: path.join(vendor.keyset.dir, 'product-ca.crt'), product: path.join(vendor.keyset.dir, 'products/acme-gw.crt') };
  assert.match((await exec('openssl', ['verify', '-CAfile', files.root, '-untrusted', files.ca, files.product])).stdout, /acme-gw\.crt: OK/);
  const text = (await exec('openssl', ['x509', '-in', files.product, '-noout', '-text'])).stdout;
  assert.match(text, /DirName:\/2\.23\.133\.5\.1\.1=Acme Devices\/2\.23\.133\.5\.1\.4=acme-gw/);
  assert.match(text, /Code Signing/);
  // The TCG profile wants UTF8String values: 0x0c before "acme-gw".
  assert.match(Buffer.from(product.rawData).toString('hex'), /0c0761636d652d6777/);
  assert.throws(() => checkProductId('has space'), refusedWith('device.product_id_invalid'));
  assert.throws(() => checkProductId('x'.repeat(65)), refusedWith('device.product_id_invalid'));
});

test('the trust bundle loads, and refuses certificates from elsewhere or one key in two roles', async () => {
  const doc = vendor.keyset.trustDocument();
  const trust = await loadVendorTrust(JSON.stringify(doc));
  assert.deepEqual([...trust.products.keys()].sort(), [OTHER_PRODUCT, PRODUCT]);
  assert.match(Buffer.from(trust.policySigning.name).toString('hex'), /^000b/);
  const other = await makeVendor();
  try {
    const foreign = other.keyset.productCertificate(PRODUCT).toString('pem');
    await assert.rejects(loadVendorTrust({ ...doc, productCertificates: [foreign] }), refusedWith('device.trust_untrusted'));
    await assert.rejects(loadVendorTrust({ ...doc, manufacturingCaCertificate: doc.productCaCertificate }), refusedWith('device.trust_invalid', /one key for two roles/));
    await assert.rejects(loadVendorTrust({ ...doc, productCertificates: [doc.productCertificates[0], doc.productCertificates[0]] }), refusedWith('device.trust_invalid', /two certificates for product/));
    await assert.rejects(loadVendorTrust({ ...doc, policySigningCertificate: other.keyset.trustDocument().policySigningCertificate }), refusedWith('device.trust_untrusted'));
  } finally {
    await other.remove();
  }
});

test('escrow: opens with the vendor key for the same context only, detects any change', () => {
  const key = vendor.keyset.privateKey('escrow');
  const context = new TextEncoder().encode('device SN-1');
  const blob = escrowEncrypt(vendor.keyset.escrowPublicKey(), new TextEncoder().encode('owner auth'), context);
  assert.equal(blob.alg, 'ECDH-ES-P256+HKDF-SHA256+A256GCM');
  assert.equal(new TextDecoder().decode(escrowDecrypt(key, blob, context)), 'owner auth');
  assert.throws(() => escrowDecrypt(key, blob, new TextEncoder().encode('device SN-2')), refusedWith('device.escrow_open_failed'));
  const flipped = { ...blob, ciphertext: (blob.ciphertext[0] === '0' ? '1' : '0') + blob.ciphertext.slice(1) };
  assert.throws(() => escrowDecrypt(key, flipped, context), refusedWith('device.escrow_open_failed'));
  assert.throws(() => escrowDecrypt(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, blob, context), refusedWith('device.escrow_open_failed'));
  assert.throws(() => escrowEncrypt(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey, new Uint8Array(1), context), refusedWith('device.escrow_key_invalid'));
});

test('a signed boot policy is PolicyPCR → PolicyNV(floor ≤ release) → PolicyCommandCode(Unseal), signed over approvedPolicy ‖ ref', async () => {
  const values = sha256Values({ 7: '11'.repeat(32), 11: '22'.repeat(32) });
  const doc = await signBootPolicy({ policyKey: vendor.keyset.privateKey('policy-signing'), productId: PRODUCT, release: 5, pcrValues: values });
  assert.deepEqual(doc.pcrs, [{ bank: 'sha256', values: { 7: '11'.repeat(32), 11: '22'.repeat(32), 15: '00'.repeat(32) } }], 'the lock-out PCR joins at zero');
  const expected = await new PolicyCalculator(TPM_ALG.SHA256)
    .policyPCR([{ hash: TPM_ALG.SHA256, pcrs: [7, 11, 15] }], [fromHex('11'.repeat(32)), fromHex('22'.repeat(32)), new Uint8Array(32)])
    .policyNV(await releaseFloorName(), fromHex('0000000000000005'), 0, TPM_EO.UNSIGNED_LE)
    .policyCommandCode(TPM_CC.Unseal)
    .digest();
  assert.equal(doc.approvedPolicy, Buffer.from(expected).toString('hex'));
  assert.deepEqual(releaseOperand(5), fromHex('0000000000000005'));
  const policy = parseBootPolicy(JSON.stringify(doc));
  assert.deepEqual(policy.approvedPolicy, await approvedBootPolicy(policy.selection, policy.values, 5));
  assert.deepEqual(policy.policyRef, await bootPolicyRef(PRODUCT));
  await verifyBootPolicy(policy, vendor.trust, PRODUCT);
  const sealing = await new PolicyCalculator(TPM_ALG.SHA256).policyAuthorize(vendor.trust.policySigning.name, await bootPolicyRef(PRODUCT)).digest();
  assert.deepEqual(await sealingPolicy(vendor.trust.policySigning.name, PRODUCT), sealing);
  assert.notDeepEqual(await sealingPolicy(vendor.trust.policySigning.name, OTHER_PRODUCT), sealing, 'each product has its own sealing policy');

  await assert.rejects(verifyBootPolicy(policy, vendor.trust, OTHER_PRODUCT), refusedWith('device.product_mismatch'));
  const badSignature = { ...doc, signature: { ...doc.signature, s: (doc.signature.s[0] === '0' ? '1' : '0') + doc.signature.s.slice(1) } };
  await assert.rejects(verifyBootPolicy(parseBootPolicy(JSON.stringify(badSignature)), vendor.trust, PRODUCT), refusedWith('device.policy_signature_invalid'));
  const otherRelease = { ...doc, release: 6 };
  await assert.rejects(verifyBootPolicy(parseBootPolicy(JSON.stringify(otherRelease)), vendor.trust, PRODUCT), refusedWith('device.policy_invalid', /does not match the PCRs and release/));
});

test('boot policies refuse resettable PCRs and a lock-out PCR that a reset could undo', async () => {
  const policyKey = vendor.keyset.privateKey('policy-signing');
  await assert.rejects(signBootPolicy({ policyKey, productId: PRODUCT, release: 1, pcrValues: sha256Values({ 7: '00'.repeat(32), 16: '00'.repeat(32) }) }), refusedWith('device.policy_invalid', /PCR 16 can be reset by software/));
  await assert.rejects(signBootPolicy({ policyKey, productId: PRODUCT, release: 1, pcrValues: sha256Values({ 7: '00'.repeat(32) }), lockoutPcr: 23 }), refusedWith('device.policy_invalid', /lock-out PCR must be one of 0-15/));
  await assert.rejects(signBootPolicy({ policyKey, productId: PRODUCT, release: 0, pcrValues: sha256Values({ 7: '00'.repeat(32) }) }), refusedWith('device.release_invalid'));
  await assert.rejects(signBootPolicy({ policyKey, productId: PRODUCT, release: 1, pcrValues: sha256Values({ 7: '00'.repeat(31) }) }), refusedWith('device.policy_invalid', /must be 32 bytes/));
});

test('signed releases verify for their product only', async () => {
  const signed = signRelease({ productId: PRODUCT, release: 4, issuedAt: '2025-01-01T00:00:00Z' }, vendor.keyset.productKey(PRODUCT), vendor.keyset.productCertificate(PRODUCT));
  const statement = await verifySignedRelease(parseSignedRelease(JSON.stringify(signed)), vendor.trust, PRODUCT);
  assert.equal(statement.release, 4);
  await assert.rejects(verifySignedRelease(parseSignedRelease(JSON.stringify(signed)), vendor.trust, OTHER_PRODUCT), refusedWith('device.product_mismatch'));
  assert.throws(() => signRelease({ productId: PRODUCT, release: 4, issuedAt: '2025-01-01T00:00:00Z' }, vendor.keyset.productKey(OTHER_PRODUCT), vendor.keyset.productCertificate(OTHER_PRODUCT)), refusedWith('device.product_mismatch'));
  const edited = JSON.parse(Buffer.from(signed.payload, 'base64').toString());
  edited.release = 9;
  const tampered = { ...signed, payload: Buffer.from(JSON.stringify(edited)).toString('base64') };
  await assert.rejects(verifySignedRelease(parseSignedRelease(JSON.stringify(tampered)), vendor.trust, PRODUCT), refusedWith('device.release_signature_invalid'));
  // Keys written by Sigil open with node too (they are plain PKCS#8 underneath).
  writeFileSync(path.join(vendor.dir, 'plain.pem'), privateKeyPem(vendor.keyset.productKey(PRODUCT)));
  assert.equal(createPrivateKey(readFileSync(path.join(vendor.dir, 'plain.pem'))).asymmetricKeyType, 'ec');
});
