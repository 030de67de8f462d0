import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import {
  buildCertificateChain,
  certificateAndSha256,
  certificateFromDer,
  certificateSignedBy,
  contentId,
  crlFrom,
  crlIssuer,
  crlSignedBy,
  revokedEntry,
  sameCertificate,
  validAt,
} from '../../src/core/x509-cache.ts';
import { fromHex } from '../../src/core/hex.ts';
import { fixture, fixtureTest, fixtureText } from '../support/fixtures.ts';

const AK = 'tpm/gotpmtools_gce_cos85_ak_cert.der';
const INTERMEDIATE = 'tpm/gce_ek_intermediate_ca2.crt';
const ROOT = 'tpm/gce_ek_root_ca.cer';

test('parsed once per content: equal bytes in any array give the same object; changed bytes do not', fixtureTest(), () => {
  const der = fixture(AK);
  const first = certificateFromDer(der);
  assert.equal(certificateFromDer(der.slice()), first);
  assert.equal(certificateFromDer(der), first); // the same array again (the identity shortcut)
  assert.equal(first.subject, new x509.X509Certificate(der.slice()).subject);
  // The caller's array changing afterwards changes neither the parsed object nor the next lookup.
  const mutable = der.slice();
  const parsed = certificateFromDer(mutable);
  assert.equal(parsed, first);
  const serialOffset = 15; // inside the serial number: still a parseable certificate
  mutable[serialOffset] ^= 0xff;
  assert.notEqual(certificateFromDer(mutable), first);
  assert.deepEqual(new Uint8Array(first.rawData), der);
  assert.notEqual(contentId(certificateFromDer(mutable)), contentId(first));
  assert.ok(sameCertificate(first, new x509.X509Certificate(der.slice())));
  // Garbage still throws the parser's error, every time (failures are not cached).
  assert.throws(() => certificateFromDer(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])));
  assert.throws(() => certificateFromDer(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])));
});

test('chain building and signatures agree with @peculiar/x509; dates are never cached', fixtureTest(), async () => {
  const [ak, intermediate, root] = [AK, INTERMEDIATE, ROOT].map((f) => certificateFromDer(fixture(f)));
  const pool = [intermediate, root];
  const ours = await buildCertificateChain(ak, pool);
  const theirs = await new x509.X509ChainBuilder({ certificates: pool }).build(ak);
  assert.deepEqual(ours.map((c) => c.subject), [...theirs].map((c) => c.subject));
  assert.equal(ours.length, 3);
  assert.equal(await certificateSignedBy(ak, intermediate), true);
  assert.equal(await certificateSignedBy(intermediate, root), true);
  assert.equal(await certificateSignedBy(ak, root), false);
  assert.equal(await certificateSignedBy(root, root), true);
  // Memoized, and equal to the library's own answer for the same pair.
  assert.equal(await certificateSignedBy(ak, intermediate), await ak.verify({ publicKey: intermediate.publicKey, signatureOnly: true }));
  // Without its issuer in the pool, the chain stops at the leaf.
  assert.deepEqual(await buildCertificateChain(ak, [root]), [ak]);
  // validAt is @peculiar/x509's rule (strictly inside notBefore..notAfter), asked afresh each time.
  const inside = new Date((ak.notBefore.getTime() + ak.notAfter.getTime()) / 2);
  assert.equal(validAt(ak, inside), true);
  assert.equal(validAt(ak, ak.notBefore), false);
  assert.equal(validAt(ak, ak.notAfter), false);
  assert.equal(validAt(ak, new Date(ak.notAfter.getTime() + 1)), false);
  assert.equal(validAt(ak, inside), await ak.verify({ publicKey: intermediate.publicKey, date: inside }));
});

test('CRLs: parsed once, signature memoized, revocation lookups equal findRevoked', fixtureTest(), async () => {
  const collateral = JSON.parse(fixtureText('tdx/dcapqvl_tdx_quote_v4_collateral.json')) as { pck_crl: string; root_ca_crl: string };
  const pckCrlDer = fromHex(collateral.pck_crl);
  const crl = crlFrom(pckCrlDer);
  assert.equal(crlFrom(pckCrlDer.slice()), crl);
  assert.equal(crlIssuer(crl), crl.issuer);
  const rootCrl = crlFrom(fromHex(collateral.root_ca_crl));
  const someCert = certificateFromDer(fixture(AK));
  assert.equal(revokedEntry(crl, someCert), crl.findRevoked(someCert));
  assert.equal(revokedEntry(rootCrl, someCert), null);
  // A CRL is not signed by an unrelated certificate.
  assert.equal(await crlSignedBy(crl, someCert), false);
});

test('certificateAndSha256 hashes once and parses certificates; other bytes give only the digest', fixtureTest(), async () => {
  const der = fixture(ROOT);
  const { sha256, certificate } = await certificateAndSha256(der);
  assert.equal(Buffer.from(sha256).toString('hex'), createHash('sha256').update(der).digest('hex'));
  assert.equal(certificate, certificateFromDer(der));
  const text = new TextEncoder().encode('not a certificate');
  const other = await certificateAndSha256(text);
  assert.equal(other.certificate, undefined);
  assert.equal(Buffer.from(other.sha256).toString('hex'), createHash('sha256').update(text).digest('hex'));
});
