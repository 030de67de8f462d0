import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { toBase64, toHex } from '../../../src/core/hex.ts';
import { parseTpmBundle } from '../../../src/evidence/tpm/bundle.ts';
import { verifyTpmBundle } from '../../../src/evidence/tpm/bundle-verify.ts';
import { fixturesAvailable } from '../../support/fixtures.ts';
import { mutate, prng } from '../../support/fuzz.ts';
import { GCE_AK_NAME, GCE_AT, GCE_NONCE, gceBundle, gceRoot } from './gce-bundle.ts';

/**
 * The TPM evidence bundle parser (and, for a sample of survivors, verify) on mutated input: byte
 * mutations of the JSON text and structural mutations of its fields. 0 crashes; only SigilErrors
 * from the TPM, event-log, IMA and X.509 checks.
 */
const PREFIXES = ['tpm.', 'eventlog.', 'ima.', 'x509.'];
const IMA_LINE = '10 bb24b135e1c911c97aad8f1c1863efc08cd44c11 ima-ng sha256:d41dd4adacf5a35df426461dd8a92d7bdd5ba29bb61a1c3531bec0ada386f8dd /usr/lib/x86_64-linux-gnu/libresolv.so.2\n';

function expectTyped(error: unknown, what: string): void {
  if (!isSigilError(error)) throw new Error(`${what}: not a SigilError: ${String(error)}`, { cause: error });
  assert.ok(PREFIXES.some((p) => error.code.startsWith(p)), `${what}: ${error.code}`);
}

/** A structurally valid bundle without fixtures: a hand-made TPMS_ATTEST, signature and AK. */
function syntheticBundle(): Record<string, unknown> {
  const attest = 'ff54434780180022000b' + '00'.repeat(32) + '00029009' + '00'.repeat(17) + '0000000000000000' + '00000001000b03ff0000' + '0020' + '11'.repeat(32);
  const ak = '0001000b00050072000000100014000b0800000000000100' + 'ab'.repeat(256);
  return { quote: attest, signature: '0014000b0100' + 'cd'.repeat(256), akPublic: ak, pcrs: { sha256: { 0: '00'.repeat(32), 1: '00'.repeat(32) } }, imaLog: toBase64(new TextEncoder().encode(IMA_LINE)) };
}

const randomValue = (random: () => number): unknown => {
  const pick = Math.floor(random() * 8);
  return [null, 7, true, 'zz', '', [], {}, toHex(new Uint8Array(Math.floor(random() * 40)).map(() => Math.floor(random() * 256)))][pick];
};

test('TPM bundle parser: 20,000 byte-mutated and 20,000 field-mutated bundles; a sample verified', async () => {
  const seeds = [syntheticBundle(), ...(fixturesAvailable() ? [gceBundle(), gceBundle({ eventLog: false })] : [])];
  for (const seed of seeds) assert.equal(parseTpmBundle(seed).quotes.length > 0, true, 'every seed parses unmutated');
  const texts = seeds.map((s) => new TextEncoder().encode(JSON.stringify(s)));
  const random = prng(0xb0d1e);
  let parsed = 0;
  for (let i = 0; i < 40_000; i++) {
    let input: Uint8Array | Record<string, unknown>;
    if (i % 2 === 0) input = mutate(texts[i % texts.length], random);
    else {
      const bundle = structuredClone(seeds[i % seeds.length]);
      const keys = Object.keys(bundle);
      const key = keys[Math.floor(random() * keys.length)];
      const value = bundle[key];
      bundle[key] = typeof value === 'string' && random() < 0.7 ? new TextDecoder().decode(mutate(new TextEncoder().encode(value), random)) : randomValue(random);
      input = bundle;
    }
    try {
      const evidence = parseTpmBundle(input, { quirks: ['trailing-zero-padding'] });
      parsed++;
      if (parsed % 200 === 0) {
        await verifyTpmBundle(evidence, { nonce: GCE_NONCE, pinnedAkNames: [GCE_AK_NAME], akRoots: fixturesAvailable() ? [gceRoot()] : [], quirks: ['shim-authority-digest-short'] }, GCE_AT).catch((e) => expectTyped(e, `verify ${i}`));
      }
    } catch (error) {
      expectTyped(error, `input ${i}`);
    }
  }
  assert.ok(parsed > 100, `some mutants parse (${parsed})`);
});
