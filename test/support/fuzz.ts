/**
 * Deterministic mutation fuzzing for parsers: a seeded PRNG (so a failure reproduces) and the
 * mutations that break length-prefixed binary formats: bit flips, byte overwrites, truncation,
 * extension, size-field edits and spliced garbage.
 */
export function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    // xorshift32
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x100000000;
  };
}

export function mutate(input: Uint8Array, random: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(random() * n);
  let out = input.slice();
  const rounds = 1 + pick(4);
  for (let i = 0; i < rounds; i++) {
    switch (pick(7)) {
      case 0: // flip a bit
        if (out.length) out[pick(out.length)] ^= 1 << pick(8);
        break;
      case 1: // overwrite a byte with an interesting value
        if (out.length) out[pick(out.length)] = [0x00, 0xff, 0x7f, 0x80, 0x01][pick(5)];
        break;
      case 2: // truncate
        out = out.slice(0, pick(out.length + 1));
        break;
      case 3: {
        // extend with random bytes
        const extra = new Uint8Array(1 + pick(16));
        for (let j = 0; j < extra.length; j++) extra[j] = pick(256);
        const next = new Uint8Array(out.length + extra.length);
        next.set(out);
        next.set(extra, out.length);
        out = next;
        break;
      }
      case 4: // make a 16-bit field huge (most TPM sizes are u16)
        if (out.length >= 2) {
          const at = pick(out.length - 1);
          out[at] = 0xff;
          out[at + 1] = pick(256);
        }
        break;
      case 5: // make a 32-bit count huge
        if (out.length >= 4) {
          const at = pick(out.length - 3);
          out[at] = 0x7f;
          out[at + 1] = 0xff;
        }
        break;
      case 6: // random bytes everywhere
        for (let j = 0; j < out.length; j++) if (random() < 0.05) out[j] = pick(256);
        break;
    }
  }
  return out;
}
