/**
 * Mutation fuzzing of every SNP parser and of verification on mutated inputs: more than 100,000
 * inputs in all, 0 crashes, and only SigilError with an "snp." code comes out.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { parseCrl } from '../../../src/evidence/snp/chain.ts';
import { describeEndorsement, parseCertificates } from '../../../src/evidence/snp/endorsement.ts';
import { parseSnpReport, SNP_REPORT_SIZE } from '../../../src/evidence/snp/report.ts';
import { verifySnp, verifySnpReport } from '../../../src/evidence/snp/verify.ts';
import { fixture, fixturesAvailable, fixtureTest, fixtureText } from '../../support/fixtures.ts';
import { mutate, prng } from '../../support/fuzz.ts';
import { SNP_CASES } from './cases.ts';
import { makeCrl, makeTestPki } from './synthetic.ts';

let reports: Uint8Array[] = [];
let crl: Uint8Array;

before(async () => {
  crl = await makeCrl(await makeTestPki('Milan'), { revoked: ['010001', '020002'] });
  if (fixturesAvailable()) reports = SNP_CASES.map((c) => c.report());
});

function expectSnpError(error: unknown, what: string): string {
  assert.ok(isSigilError(error), `${what}: not a SigilError: ${String(error)}`);
  assert.ok(error.code.startsWith('snp.'), `${what}: ${error.code}`);
  return error.code;
}

test('fuzz: 80,000 mutated reports through parseSnpReport', fixtureTest(), () => {
  const random = prng(0x5e5a);
  const codes = new Map<string, number>();
  let parsed = 0;
  for (let i = 0; i < 80_000; i++) {
    const input = mutate(reports[i % reports.length], random);
    try {
      const report = parseSnpReport(input);
      assert.equal(input.length, SNP_REPORT_SIZE);
      assert.ok(report.version >= 2);
      parsed++;
    } catch (error) {
      const code = expectSnpError(error, `input ${i}`);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  }
  assert.ok(parsed > 10_000, `only ${parsed} same-size inputs parsed`);
  assert.deepEqual([...codes.keys()].sort(), ['snp.report_trailing_bytes', 'snp.report_truncated', 'snp.report_version_unsupported']);
});

test('fuzz: 6,000 same-size mutated reports through the whole verification', fixtureTest(), async () => {
  const random = prng(0x7e41f);
  let accepted = 0;
  for (let i = 0; i < 6_000; i++) {
    const index = i % SNP_CASES.length;
    const input = reports[index].slice();
    // Flip 1-8 bytes anywhere (size preserved, so parsing mostly succeeds and verify is reached).
    for (let n = 1 + Math.floor(random() * 8); n > 0; n--) input[Math.floor(random() * input.length)] ^= 1 + Math.floor(random() * 255);
    try {
      await verifySnpReport(input, SNP_CASES[index].options());
      accepted++; // only possible when every flip landed in the unsigned reserved tail
    } catch (error) {
      expectSnpError(error, `input ${i}`);
    }
  }
  assert.ok(accepted < 600, `${accepted} mutated reports were accepted`);
});

test('fuzz: 12,000 mutated VCEK/VLEK and chain certificates through parse and describe', fixtureTest(), () => {
  const random = prng(0xce47);
  const seeds = [
    fixture('snp/gosevguest_milan_vcek.der'),
    fixture('snp/trustee_milan_vlek.der'),
    fixture('snp/virteesev_milan_vcek.der'),
    ...parseCertificates(fixtureText('snp/amd_genoa_vcek_ask_ark.pem')).map((c) => new Uint8Array(c.rawData)),
  ];
  let described = 0;
  for (let i = 0; i < 12_000; i++) {
    const input = mutate(seeds[i % seeds.length], random);
    try {
      const [cert] = parseCertificates(input);
      describeEndorsement(cert);
      described++;
    } catch (error) {
      expectSnpError(error, `certificate ${i}`);
    }
  }
  assert.ok(described > 0);
});

test('fuzz: 2,000 mutated VCEKs through chain verification', fixtureTest(), async () => {
  const random = prng(0xc4a1);
  const report = parseSnpReport(fixture('snp/trustee_milan_vcek_report.bin'));
  const vcek = fixture('snp/trustee_milan_vcek.der');
  let accepted = 0;
  for (let i = 0; i < 2_000; i++) {
    try {
      await verifySnp(report, { at: new Date('2025-06-01T00:00:00Z'), endorsementKey: mutate(vcek, random) });
      accepted++;
    } catch (error) {
      expectSnpError(error, `vcek ${i}`);
    }
  }
  // A mutation confined to the unsigned outer signature-algorithm or signature bits cannot verify.
  assert.equal(accepted, 0);
});

test('fuzz: 4,000 mutated CRLs and 1,000 mutated PEM texts', fixtureTest(), () => {
  const random = prng(0xc41);
  for (let i = 0; i < 4_000; i++) {
    try {
      parseCrl(mutate(crl, random));
    } catch (error) {
      expectSnpError(error, `crl ${i}`);
    }
  }
  const pem = new TextEncoder().encode(fixtureText('snp/amd_milan_vcek_ask_ark.pem'));
  for (let i = 0; i < 1_000; i++) {
    const text = new TextDecoder().decode(mutate(pem, random));
    try {
      parseCertificates(text);
    } catch (error) {
      expectSnpError(error, `pem ${i}`);
    }
    try {
      parseCrl(text);
    } catch (error) {
      expectSnpError(error, `pem-as-crl ${i}`);
    }
  }
});
