/**
 * `npm run fuzz:tpm`: the long version of the unmarshaler fuzz test — every TPM structure codec
 * fed mutated copies of valid samples (default 2,000,000 inputs; FUZZ_INPUTS to change), with a
 * time check per input so a hang would show. Prints inputs/s and the outcome counts; any
 * exception that is not a SigilError with a tpm./core. code fails the run.
 */
import { SigilError } from '../src/core/errors.ts';
import { unmarshal } from '../src/tpm/marshal/codec.ts';
import { corpus } from '../test/tpm/marshal-corpus.ts';
import { mutate, prng } from '../test/support/fuzz.ts';
import { printResult, round } from './support.ts';

const total = Number(process.env.FUZZ_INPUTS ?? 2_000_000);
const random = prng(Number(process.env.FUZZ_SEED ?? 0x51617));
const perSample = Math.ceil(total / corpus.length);
let accepted = 0;
let rejected = 0;
let slowest = 0;
const start = performance.now();
for (const [codec, sample] of corpus) {
  for (let i = 0; i < perSample; i++) {
    const input = mutate(sample, random);
    const t = performance.now();
    try {
      unmarshal(codec, input);
      accepted++;
    } catch (error) {
      if (!(error instanceof SigilError) || !/^(tpm|core)\./.test(error.code)) {
        console.error(`${codec.name}: ${String(error)} for ${Buffer.from(input).toString('hex')}`);
        process.exit(1);
      }
      rejected++;
    }
    slowest = Math.max(slowest, performance.now() - t);
  }
}
const seconds = (performance.now() - start) / 1000;
console.log(`${accepted + rejected} inputs in ${seconds.toFixed(1)} s: ${rejected} rejected with typed errors, ${accepted} parsed; slowest input ${slowest.toFixed(2)} ms; 0 crashes`);
printResult('tpm-fuzz', { inputs: accepted + rejected, inputs_per_s: round((accepted + rejected) / seconds), rejected, accepted, slowest_ms: round(slowest, 3) }, {});
