/**
 * Tamper: every single-bit flip of the signed region (0x000..0x29F, 5,376 bits) of every fixture
 * report is rejected with the failed check named. All positions go through parse + the signature
 * step with the fixture's key (the fast path); a spread sample also goes through the whole
 * verifySnpReport (chain, product, signature, TCB). The signature fields themselves are flipped too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { parseSnpCertificates } from '../../../src/evidence/snp/index.ts';
import { parseSnpReport, SNP_SIGNED_SIZE } from '../../../src/evidence/snp/report.ts';
import { importReportKey, verifyReportSignature } from '../../../src/evidence/snp/signature.ts';
import { verifySnpReport } from '../../../src/evidence/snp/verify.ts';
import { fixtureTest } from '../../support/fixtures.ts';
import { SNP_CASES, type SnpCase } from './cases.ts';

/** The failures a flipped report may produce, by where the bit is. */
const SIGNATURE_STEP_CODES = new Set(['snp.signature_invalid', 'snp.report_version_unsupported', 'snp.signature_algorithm_unsupported']);
const FULL_VERIFY_CODES = new Set([
  ...SIGNATURE_STEP_CODES,
  'snp.signing_key_mismatch', // SIGNING_KEY bits: VCEK ↔ VLEK
  'snp.report_unsigned',
  'snp.signing_key_invalid',
  'snp.product_mismatch', // CPUID bits (v3+)
  'snp.product_unknown',
]);

async function leafKey(c: SnpCase): Promise<CryptoKey> {
  const options = c.options();
  const certs = [options.vcek, options.vlek, ...(Array.isArray(options.chain) ? options.chain : [options.chain])]
    .filter((x) => x !== undefined)
    .flatMap((x) => parseSnpCertificates(x!));
  const leaf = certs.find((cert) => /CN=SEV-V(CE|LE)K$/.test(cert.subject))!;
  return importReportKey(new Uint8Array(leaf.publicKey.rawData));
}

function flip(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice();
  out[bit >> 3] ^= 1 << (bit & 7);
  return out;
}

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return 'accepted';
  } catch (error) {
    return isSigilError(error) ? error.code : `not a SigilError: ${String(error)}`;
  }
}

for (const c of SNP_CASES) {
  test(`tamper ${c.name}: all ${SNP_SIGNED_SIZE * 8} bits of the signed region are rejected`, fixtureTest(), async () => {
    const original = c.report();
    const key = await leafKey(c);
    await verifyReportSignature(parseSnpReport(original), key); // the untampered report verifies
    const codes = new Map<string, number>();
    const bits = Array.from({ length: SNP_SIGNED_SIZE * 8 }, (_, i) => i);
    for (let i = 0; i < bits.length; i += 64) {
      const batch = bits.slice(i, i + 64).map((bit) => codeOf((async () => verifyReportSignature(parseSnpReport(flip(original, bit)), key))()));
      for (const [j, code] of (await Promise.all(batch)).entries()) {
        assert.ok(SIGNATURE_STEP_CODES.has(code), `bit ${bits[i + j]}: ${code}`);
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
    }
    assert.equal([...codes.values()].reduce((a, b) => a + b, 0), SNP_SIGNED_SIZE * 8);
    assert.ok((codes.get('snp.signature_invalid') ?? 0) > 5300, JSON.stringify(Object.fromEntries(codes)));
  });

  test(`tamper ${c.name}: sampled flips through the full verification, and signature flips`, fixtureTest(), async () => {
    const original = c.report();
    const options = c.options();
    // Every 21st bit (256 positions spread over every field), plus the signing-key and CPUID bytes.
    const sample = [...Array.from({ length: 256 }, (_, i) => i * 21), ...Array.from({ length: 8 }, (_, i) => 0x48 * 8 + i), ...Array.from({ length: 24 }, (_, i) => 0x188 * 8 + i)];
    for (const bit of sample) {
      const code = await codeOf(verifySnpReport(flip(original, bit), options));
      assert.ok(FULL_VERIFY_CODES.has(code), `bit ${bit} (byte 0x${(bit >> 3).toString(16)}): ${code}`);
    }
    // R and S (0x2A0..0x32F): every bit.
    const key = await leafKey(c);
    for (let bit = SNP_SIGNED_SIZE * 8; bit < (SNP_SIGNED_SIZE + 144) * 8; bit++) {
      const code = await codeOf(verifyReportSignature(parseSnpReport(flip(original, bit)), key));
      assert.equal(code, 'snp.signature_invalid', `signature bit ${bit}`);
    }
  });
}
