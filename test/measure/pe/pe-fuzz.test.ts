import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { authenticodeDigest } from '../../../src/measure/pe/authenticode.ts';
import { predictUki } from '../../../src/measure/uki/predict.ts';
import { buildUki } from '../../../src/measure/uki/uki-build.ts';
import { locateUkiSections, parseUki } from '../../../src/measure/uki/uki-file.ts';
import { stubModel } from '../../../src/measure/uki/stub-versions.ts';
import { fixture, fixturesAvailable } from '../../support/fixtures.ts';
import { mutate, prng } from '../../support/fuzz.ts';
import { debianStub, OS_RELEASE, stubAvailable, tinyKernel } from '../uki/support.ts';

/**
 * Hostile PE files: mutated copies of the fixtures, half of them mutated only inside the headers
 * (where the offsets and sizes live). Every outcome must be a digest or a SigilError — never a
 * RangeError, a hang, or an allocation sized by the attacker.
 */

const HEADER_BIAS = 0x400;

function mutateBiased(input: Uint8Array, random: () => number): Uint8Array {
  if (random() < 0.5 && input.length > HEADER_BIAS) {
    const head = mutate(input.subarray(0, HEADER_BIAS), random);
    const out = new Uint8Array(head.length + input.length - HEADER_BIAS);
    out.set(head);
    out.set(input.subarray(HEADER_BIAS), head.length);
    return out;
  }
  return mutate(input, random);
}

function expectSigilError(error: unknown, where: string): void {
  if (!isSigilError(error)) assert.fail(`${where}: threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
}

test('100k mutated PE files: Authenticode gives a digest or SigilError(pe.*)', { skip: fixturesAvailable() ? false : 'no fixtures' }, async () => {
  const seeds = [
    'authenticoders_tiny32.signed.efi',
    'authenticoders_tiny64.signed.efi',
    'authenticoders_tiny32.efi',
    'authenticoders_tiny64.efi',
    'gouefi_test.pecoff',
    'gouefi_test.pecoff.signed',
  ].map((name) => fixture(`measure/authenticode/${name}`));
  const random = prng(0x5eed1);
  let digests = 0;
  let refused = 0;
  const ITERATIONS = 100_000;
  for (let i = 0; i < ITERATIONS; i++) {
    const input = mutateBiased(seeds[i % seeds.length], random);
    try {
      const value = await authenticodeDigest(input, i % 3 === 0 ? 'SHA-1' : 'SHA-256', { padTo8: i % 7 === 0, verifyCertificateTable: i % 5 !== 0 });
      assert.ok(value.length === 20 || value.length === 32);
      digests++;
    } catch (error) {
      expectSigilError(error, `iteration ${i}`);
      assert.match((error as { code: string }).code, /^pe\./);
      refused++;
    }
  }
  assert.equal(digests + refused, ITERATIONS);
  // Both outcomes must be common, or the mutations are not reaching the parser's decisions.
  assert.ok(digests > ITERATIONS / 10 && refused > ITERATIONS / 10, `digests ${digests}, refused ${refused}`);
});

test('10k mutated UKIs: parse, locate and predict give a result or a SigilError', { skip: fixturesAvailable() ? stubAvailable().skip : 'no fixtures' }, async () => {
  const uki = buildUki({ stub: debianStub(), linux: tinyKernel(), initrd: new Uint8Array(300).fill(7), cmdline: 'console=ttyS0', osRelease: OS_RELEASE, uname: '6.1.0' });
  const random = prng(0xc0ffee);
  // Mutate the headers and the appended sections, where the UKI logic reads (not the stub's code).
  const tail = uki.length - 0x11400 + 0x400;
  let predicted = 0;
  let refused = 0;
  for (let i = 0; i < 10_000; i++) {
    const input = random() < 0.5 ? mutateBiased(uki, random) : (() => {
      const out = uki.slice();
      const span = mutate(out.subarray(uki.length - tail), random);
      const joined = new Uint8Array(uki.length - tail + span.length);
      joined.set(out.subarray(0, uki.length - tail));
      joined.set(span, uki.length - tail);
      return joined;
    })();
    try {
      const parsed = parseUki(input);
      locateUkiSections(parsed, stubModel(258));
      await predictUki(parsed, { stubVersion: i % 2 === 0 ? 252 : 255 });
      predicted++;
    } catch (error) {
      expectSigilError(error, `iteration ${i}`);
      assert.match((error as { code: string }).code, /^(pe|uki)\./);
      refused++;
    }
  }
  assert.ok(predicted > 1000 && refused > 1000, `predicted ${predicted}, refused ${refused}`);
});
