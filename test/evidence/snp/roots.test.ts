import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { digest } from '../../../src/core/hash.ts';
import { toHex } from '../../../src/core/hex.ts';
import { verifyEndorsementChain } from '../../../src/evidence/snp/chain.ts';
import { commonName, parseCertificates } from '../../../src/evidence/snp/endorsement.ts';
import { SNP_PRODUCTS } from '../../../src/evidence/snp/product.ts';
import { AMD_AUTHORITIES } from '../../../src/evidence/snp/roots.ts';
import { fixture, fixtureTest, fixtureText } from '../../support/fixtures.ts';

const one = (pem: string) => parseCertificates(pem)[0];

test('embedded AMD roots: pinned SHA-256, self-signed ARK, ASK and ASVK signed by it, 25-year validity', async () => {
  // The pins also appear in independent sources (see roots.ts); restated here so a change to
  // roots.ts cannot silently change them.
  const pins = {
    Milan: '69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd',
    Genoa: '4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1',
    Turin: '1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a',
  };
  for (const product of SNP_PRODUCTS) {
    const authority = AMD_AUTHORITIES[product];
    const [ark, ask, asvk] = [one(authority.ark), one(authority.ask), one(authority.asvk)];
    assert.equal(authority.arkSha256, pins[product]);
    assert.equal(toHex(await digest('SHA-256', new Uint8Array(ark.rawData))), pins[product]);
    assert.deepEqual([commonName(ark.subject), commonName(ark.issuer)], [`ARK-${product}`, `ARK-${product}`]);
    assert.deepEqual([commonName(ask.subject), commonName(ask.issuer)], [`SEV-${product}`, `ARK-${product}`]);
    assert.deepEqual([commonName(asvk.subject), commonName(asvk.issuer)], [`SEV-VLEK-${product}`, `ARK-${product}`]);
    for (const cert of [ark, ask, asvk]) {
      assert.equal(await cert.verify({ publicKey: ark.publicKey, signatureOnly: true }), true, `${cert.subject} under ARK-${product}`);
      assert.equal(cert.signatureAlgorithm.name, 'RSA-PSS');
      assert.ok(cert.notAfter.getFullYear() >= 2045, cert.subject);
    }
  }
});

test('embedded Milan and Genoa certificates are the ones in the shared fixtures', fixtureTest(), () => {
  const der = (pem: string) => parseCertificates(pem).map((c) => toHex(new Uint8Array(c.rawData)));
  const [milanAsk, milanArk] = der(fixtureText('snp/amd_milan_vcek_ask_ark.pem'));
  const [milanAsvk] = der(fixtureText('snp/amd_milan_vlek_asvk_ark.pem'));
  const [genoaAsk, genoaArk] = der(fixtureText('snp/amd_genoa_vcek_ask_ark.pem'));
  assert.deepEqual(der(AMD_AUTHORITIES.Milan.ark + AMD_AUTHORITIES.Milan.ask + AMD_AUTHORITIES.Milan.asvk), [milanArk, milanAsk, milanAsvk]);
  assert.deepEqual(der(AMD_AUTHORITIES.Genoa.ark + AMD_AUTHORITIES.Genoa.ask), [genoaArk, genoaAsk]);
});

test('a changed pin or a substituted root is refused (snp.ark_untrusted)', fixtureTest(), async () => {
  const [vcek] = parseCertificates(fixture('snp/trustee_milan_vcek.der'));
  const at = new Date('2025-06-01T00:00:00Z');
  const wrongPin = { ...AMD_AUTHORITIES, Milan: { ...AMD_AUTHORITIES.Milan, arkSha256: '00'.repeat(32) } };
  await assert.rejects(verifyEndorsementChain(vcek, { kind: 'vcek', product: 'Milan', supplied: [], at, crls: [], authorities: wrongPin }), (e) => isSigilError(e, 'snp.ark_untrusted'));
  const swapped = { ...AMD_AUTHORITIES, Milan: { ...AMD_AUTHORITIES.Genoa, ask: AMD_AUTHORITIES.Milan.ask } };
  await assert.rejects(verifyEndorsementChain(vcek, { kind: 'vcek', product: 'Milan', supplied: [], at, crls: [], authorities: swapped }), (e) => isSigilError(e, 'snp.ark_untrusted'));
  const ok = await verifyEndorsementChain(vcek, { kind: 'vcek', product: 'Milan', supplied: [], at, crls: [] });
  assert.equal(commonName(ok.ark.subject), 'ARK-Milan');
  assert.equal(commonName(ok.intermediate.subject), 'SEV-Milan');
});
