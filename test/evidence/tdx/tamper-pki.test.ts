import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureTest } from '../../support/fixtures.ts';
import { utf8 } from '../../../src/core/bytes.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { fromBase64, toBase64 } from '../../../src/core/hex.ts';
import { parseTdxQuote, verifyTdxQuote } from '../../../src/evidence/tdx/index.ts';
import { AT, QUOTES } from './support.ts';

/**
 * Single-bit tampering of the PCK leaf and PCK CA certificates inside every quote (DER
 * re-encoded into the PEM, every 16th bit, about 1,000 per quote); the
 * collateral is tampered in tamper-collateral.test.ts.
 */
async function code(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'accepted';
  } catch (error) {
    return error instanceof SigilError ? error.code : `non-SigilError: ${error}`;
  }
}

for (const name of Object.keys(QUOTES) as (keyof typeof QUOTES)[]) {
  test(`tamper ${name}: bits of the PCK leaf and PCK CA certificates`, fixtureTest(), async () => {
    const original = fixture(QUOTES[name]);
    const quote = parseTdxQuote(original);
    const pemText = utf8.encode(quote.pckCertChainPem);
    const pemAt = indexOf(original, pemText);
    assert.ok(pemAt > 0);
    const blocks = [...quote.pckCertChainPem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
    let flips = 0;
    for (const block of blocks.slice(0, 2)) {
      const der = fromBase64(block[1]);
      // Keep the original line layout so the PEM, and with it the quote, keeps its size.
      const lines = block[1].split('\n');
      for (let bit = 0; bit < der.length * 8; bit += 16) {
        const tampered = der.slice();
        tampered[bit >> 3] ^= 1 << (bit & 7);
        let base64 = toBase64(tampered);
        const rewrapped = lines.map((line) => {
          const part = base64.slice(0, line.length);
          base64 = base64.slice(line.length);
          return part;
        });
        const pem = quote.pckCertChainPem.replace(block[1], rewrapped.join('\n'));
        const bytes = original.slice();
        bytes.set(utf8.encode(pem), pemAt);
        const result = await code(() => verifyTdxQuote(parseTdxQuote(bytes), { at: AT[name] }));
        assert.ok(['tdx.pck_chain_invalid', 'tdx.pck_chain_malformed'].includes(result), `certificate bit ${bit} gave ${result}`);
        flips++;
      }
    }
    assert.ok(flips >= 800, `${flips} flips`);
  });
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
