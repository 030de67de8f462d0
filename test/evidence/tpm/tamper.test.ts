import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { fromHex } from '../../../src/core/hex.ts';
import { parseAkPublic } from '../../../src/evidence/tpm/bundle.ts';
import { parseQuote, verifyQuote } from '../../../src/evidence/tpm/quote.ts';
import { hashAlgFromLabel } from '../../../src/tpm/algorithms.ts';
import { fixture, fixtureTest } from '../../support/fixtures.ts';
import { GCE_NONCE, gceQuotes } from './gce-bundle.ts';

/**
 * Every single-bit flip of every signed byte (TPMS_ATTEST) and of the TPMT_SIGNATURE of the three
 * GCE quotes is rejected, with the failed check named. The fast path runs parse + quote
 * verification only (the AK chain does not depend on these bytes).
 */
const NAMED = new Set([
  'tpm.quote_signature_invalid',
  'tpm.quote_malformed',
  'tpm.signature_malformed',
  'tpm.quote_not_tpm_generated',
  'tpm.quote_wrong_type',
  'tpm.attest_malformed',
  'tpm.quote_nonce_mismatch',
  'tpm.quote_pcr_digest_mismatch',
  'tpm.quote_pcr_missing',
  'tpm.hash_unsupported',
]);

test('every bit flip in the three GCE quotes and their signatures is rejected with a named check', fixtureTest(), async () => {
  const akPublic = parseAkPublic(fixture('tpm/gotpmtools_gce_cos85_ak_pub.tpmt_public.bin'));
  const quotes = gceQuotes();
  const pcrValues = new Map<number, Map<number, Uint8Array>>();
  for (const [bank, q] of Object.entries(quotes)) pcrValues.set(hashAlgFromLabel(bank), new Map(Object.entries(q.pcrs).map(([i, v]) => [Number(i), fromHex(v)])));
  const outcomes = new Map<string, number>();
  let flips = 0;
  for (const q of Object.values(quotes)) {
    const attest = fromHex(q.tpms_attest_hex);
    const signature = fromHex(q.tpmt_signature_hex);
    await verifyQuote(parseQuote(attest, signature), { akPublic, nonce: GCE_NONCE, pcrValues }); // untampered: accepted
    for (const [target, bytes] of [['attest', attest], ['signature', signature]] as const) {
      for (let bit = 0; bit < bytes.length * 8; bit++) {
        const mutated = bytes.slice();
        mutated[bit >> 3] ^= 1 << (bit & 7);
        flips++;
        try {
          const parsed = target === 'attest' ? parseQuote(mutated, signature) : parseQuote(attest, mutated);
          await verifyQuote(parsed, { akPublic, nonce: GCE_NONCE, pcrValues });
          assert.fail(`${q.pcr_bank} ${target} bit ${bit} flipped was accepted`);
        } catch (error) {
          if (!isSigilError(error)) throw error;
          assert.ok(NAMED.has(error.code), `${target} bit ${bit}: ${error.code}`);
          outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1);
        }
      }
    }
  }
  assert.equal(flips, 3 * (115 + 262) * 8);
  assert.ok((outcomes.get('tpm.quote_signature_invalid') ?? 0) > flips * 0.9, JSON.stringify([...outcomes]));
  if (process.env.SIGIL_TEST_VERBOSE) console.log(JSON.stringify([...outcomes]));
  assert.equal([...outcomes.values()].reduce((a, b) => a + b, 0), flips);
});
