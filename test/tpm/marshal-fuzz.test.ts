import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SigilError } from '../../src/core/errors.ts';
import { marshal, unmarshal } from '../../src/tpm/marshal/codec.ts';
import { TPMS_CAPABILITY_DATA } from '../../src/tpm/structures/index.ts';
import { corpus } from './marshal-corpus.ts';
import { mutate, prng } from '../support/fuzz.ts';

test('every corpus sample round-trips through its codec', () => {
  for (const [codec, sample] of corpus) {
    const value = unmarshal(codec, sample);
    if (codec !== TPMS_CAPABILITY_DATA) assert.deepEqual(marshal(codec, value), sample, codec.name);
  }
});

test('unmarshalers survive 120,000 mutated inputs with only typed SigilErrors', () => {
  const random = prng(0x5151);
  const perSample = Math.ceil(120_000 / corpus.length);
  let rejected = 0;
  let accepted = 0;
  for (const [codec, sample] of corpus) {
    for (let i = 0; i < perSample; i++) {
      const input = mutate(sample, random);
      try {
        unmarshal(codec, input);
        accepted++;
      } catch (error) {
        if (!(error instanceof SigilError) || !/^tpm\.|^core\./.test(error.code)) {
          assert.fail(`${codec.name} threw ${String(error)} for ${Buffer.from(input).toString('hex')}`);
        }
        rejected++;
      }
    }
  }
  assert.ok(rejected + accepted >= 120_000);
  assert.ok(rejected > accepted, `most mutations must be rejected (rejected ${rejected}, accepted ${accepted})`);
});
