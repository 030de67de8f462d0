import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { parseTdxQuote, verifyTdxQuote, type TdxQuote } from '../../../src/evidence/tdx/index.ts';
import { AT, QUOTES } from './support.ts';

/**
 * Single-bit tampering of every quote fixture, through the full verify (no collateral): every bit
 * of the attestation-key-signed header+body, of the quote signature and attestation key, of the QE
 * report and its signature and of the QE auth data (over 10,000 per quote). Each must be rejected,
 * and by the check that covers that byte. The PCK certificates are tampered in tamper-chain.test.ts.
 */
const FIXTURES = Object.keys(QUOTES) as (keyof typeof QUOTES)[];

/** Byte offsets of the quote's regions, from the parsed layout (sizes are fixed by the format). */
function regions(quote: TdxQuote): Record<string, [number, number]> {
  const signedEnd = quote.signedBytes.length;
  const sig = signedEnd + 4;
  const qe = sig + 128 + 6;
  const auth = qe + 384 + 64 + 2;
  return {
    header: [0, 48],
    body: [quote.header.version === 5 ? 54 : 48, signedEnd],
    descriptor: [48, quote.header.version === 5 ? 54 : 48],
    quoteSignature: [sig, sig + 64],
    attestationKey: [sig + 64, sig + 128],
    qeReport: [qe, qe + 384],
    qeReportSignature: [qe + 384, qe + 448],
    qeAuthData: [auth, auth + quote.qeAuthData.length],
  };
}

async function outcome(bytes: Uint8Array, at: Date): Promise<string> {
  try {
    await verifyTdxQuote(parseTdxQuote(bytes), { at });
    return 'accepted';
  } catch (error) {
    if (!(error instanceof SigilError)) return `non-SigilError: ${error}`;
    return error.code;
  }
}

async function flipAll(original: Uint8Array, at: Date, [start, end]: readonly [number, number], allowed: string[], step = 1): Promise<number> {
  let count = 0;
  const bytes = original.slice();
  for (let bit = start * 8; bit < end * 8; bit += step) {
    const index = bit >> 3;
    const mask = 1 << (bit & 7);
    bytes[index] ^= mask;
    const code = await outcome(bytes, at);
    bytes[index] ^= mask;
    assert.ok(allowed.includes(code), `bit ${bit - start * 8} of [${start}, ${end}) gave ${code}, expected one of ${allowed.join(', ')}`);
    count++;
  }
  return count;
}

const DESCRIPTOR_CODES = ['tdx.quote_not_tdx', 'tdx.quote_body_type_unsupported', 'tdx.quote_malformed', 'tdx.quote_truncated'];
// A version bit turns v4 into v5 (or back), so the layout checks may speak first.
const HEADER_CODES = ['tdx.quote_signature_invalid', 'tdx.quote_version_unsupported', 'tdx.attestation_key_type_unsupported', ...DESCRIPTOR_CODES];

for (const name of FIXTURES) {
  test(`tamper ${name}: every bit of the signed quote, signatures, key, QE report and auth data`, fixtureTest(), async () => {
    const original = fixture(QUOTES[name]);
    const at = AT[name];
    assert.equal(await outcome(original, at), 'accepted');
    const r = regions(parseTdxQuote(original));
    let flips = 0;
    flips += await flipAll(original, at, r.header, HEADER_CODES);
    flips += await flipAll(original, at, r.descriptor, DESCRIPTOR_CODES);
    flips += await flipAll(original, at, r.body, ['tdx.quote_signature_invalid']);
    flips += await flipAll(original, at, r.quoteSignature, ['tdx.quote_signature_invalid']);
    flips += await flipAll(original, at, r.attestationKey, ['tdx.qe_report_binding_mismatch']);
    flips += await flipAll(original, at, r.qeReport, ['tdx.qe_report_signature_invalid']);
    flips += await flipAll(original, at, r.qeReportSignature, ['tdx.qe_report_signature_invalid']);
    flips += await flipAll(original, at, r.qeAuthData, ['tdx.qe_report_binding_mismatch']);
    assert.ok(flips >= 2000, `${flips} flips`);
  });
}
