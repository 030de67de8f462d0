/**
 * EK interop with tpm2-tools 5.4 on a swtpm manufactured by swtpm_setup (EK certificates in NV,
 * signed by a private swtpm-localca): Sigil reads the same certificate bytes as tpm2_nvread,
 * validates them against the local CA (and refuses another CA), and recreates the same EK public
 * areas as tpm2_createek.
 */
import 'reflect-metadata';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as x509 from '@peculiar/x509';
import { isSigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import { parseCertificate, parseCertificates, verifyEkCertificate } from '../../../src/evidence/tpm/ek-certificate.ts';
import { marshal } from '../../../src/tpm/marshal/codec.ts';
import { TPM2B_PUBLIC } from '../../../src/tpm/structures/public.ts';
import { EK_CERT_NV_INDEX, endorsementKey, readEkCertificate } from '../../../src/tpm/tpm-keys.ts';
import { InteropFixture, toolsMissing } from './interop-fixture.ts';

const skip = await toolsMissing();
let fx: InteropFixture;
let roots: x509.X509Certificate[];
let intermediates: x509.X509Certificate[];

before(async () => {
  if (skip) return;
  fx = await InteropFixture.start({ ekCert: true });
  roots = parseCertificates(await readFile(fx.swtpm.localCa!.rootCert, 'utf8'));
  intermediates = parseCertificates(await readFile(fx.swtpm.localCa!.intermediateCert, 'utf8'));
});

after(async () => {
  await fx?.stop();
});

/** A self-signed CA that signed nothing on this TPM. */
async function otherCa(): Promise<x509.X509Certificate> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await globalThis.crypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=Not the swtpm-localca',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
}

test('the RSA EK certificate Sigil reads equals tpm2_nvread 0x1c00002, and validates against the swtpm local CA only', { skip }, async () => {
  const { cert, ekPublic, eccPublic } = await fx.sigil(async (tpm) => {
    const ek = await endorsementKey(tpm, 'rsa');
    await tpm.flush(ek.handle);
    const ecc = await endorsementKey(tpm, 'ecc');
    await tpm.flush(ecc.handle);
    return { cert: await readEkCertificate(tpm, 'rsa'), ekPublic: ek.publicArea, eccPublic: ecc.publicArea };
  });
  assert.ok(cert, 'swtpm_setup stored an RSA EK certificate');
  assert.equal(EK_CERT_NV_INDEX.rsa, 0x01c00002);
  await fx.toolOk('tpm2_nvread', ['0x1c00002', '-C', 'o', '-o', 'ek-rsa.der']);
  const fromTools = new Uint8Array(await readFile(fx.file('ek-rsa.der')));
  assert.equal(cert.length, fromTools.length);
  assert.equal(toHex(cert), toHex(fromTools));

  const info = await verifyEkCertificate(cert, { roots, intermediates, ekPublic });
  assert.equal(info.issuer, intermediates[0].subject);
  assert.equal(info.tpmManufacturer, 'id:00001014'); // IBM, the libtpms manufacturer ID
  assert.ok(info.notBefore.getTime() <= Date.now());

  const wrong = await otherCa();
  await assert.rejects(verifyEkCertificate(cert, { roots: [wrong], ekPublic }), (e) => isSigilError(e, 'tpm.ek_cert_untrusted'));
  // The right intermediate but a root that did not sign it: the chain still does not reach a trusted root.
  await assert.rejects(verifyEkCertificate(cert, { roots: [wrong], intermediates, ekPublic }), (e) => isSigilError(e, 'tpm.ek_cert_untrusted'));
  // A valid chain for a key the TPM's RSA EK is not.
  await assert.rejects(verifyEkCertificate(cert, { roots, intermediates, ekPublic: eccPublic }), (e) => isSigilError(e, 'tpm.ek_cert_key_mismatch'));
});

test('swtpm_setup stores its ECC EK certificate at 0x1c00016 (P-384), not 0x1c0000a: readEkCertificate(ecc) returns undefined', { skip }, async () => {
  const handles = await fx.toolOk('tpm2_getcap', ['handles-nv-index']);
  const listed = handles.split('\n').map((l) => l.replace(/^-\s*/, '').trim().toLowerCase()).filter(Boolean);
  assert.ok(listed.includes('0x1c00002'));
  assert.ok(listed.includes('0x1c00016'));
  assert.ok(!listed.includes('0x1c0000a'));
  const missing = await fx.tool('tpm2_nvreadpublic', ['0x1c0000a']);
  await fx.flushAll();
  assert.notEqual(missing.rc, 0);

  assert.equal(await fx.sigil((tpm) => readEkCertificate(tpm, 'ecc')), undefined);

  await fx.toolOk('tpm2_nvread', ['0x1c00016', '-C', 'o', '-o', 'ek-ecc384.der']);
  const p384 = parseCertificate(new Uint8Array(await readFile(fx.file('ek-ecc384.der'))));
  assert.equal((p384.publicKey.algorithm as EcKeyAlgorithm).namedCurve, 'P-384');
  const info = await verifyEkCertificate(new Uint8Array(p384.rawData), { roots, intermediates });
  assert.equal(info.issuer, intermediates[0].subject);
});

for (const type of ['rsa', 'ecc'] as const) {
  test(`Sigil's ${type.toUpperCase()} EK public area equals tpm2_createek -G ${type} -u (TPM2B_PUBLIC), byte for byte`, { skip }, async () => {
    const ek = await fx.sigil(async (tpm) => {
      const key = await endorsementKey(tpm, type);
      await tpm.flush(key.handle);
      return key;
    });
    await fx.toolOk('tpm2_createek', ['-G', type, '-u', `ek-${type}.pub`, '-c', `ek-${type}.ctx`]);
    await fx.toolOk('tpm2_readpublic', ['-c', `ek-${type}.ctx`, '-n', `ek-${type}.name`]);
    assert.equal(toHex(new Uint8Array(await readFile(fx.file(`ek-${type}.pub`)))), toHex(marshal(TPM2B_PUBLIC, ek.publicArea)));
    assert.equal(toHex(new Uint8Array(await readFile(fx.file(`ek-${type}.name`)))), toHex(ek.name));
  });
}
