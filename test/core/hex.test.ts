import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import { fromBase64, fromBase64Portable, fromHex, toBase64, toBase64Portable, toHex } from '../../src/core/hex.ts';

/** The definitions the table-driven codecs replace: atob/btoa after mapping the url alphabet and removing whitespace. */
function referenceFromBase64(text: string): Uint8Array | 'error' {
  try {
    const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/').replace(/\s/g, ''));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch {
    return 'error';
  }
}

function ourFromBase64(text: string): Uint8Array | 'error' {
  const decode = (f: (text: string) => Uint8Array): Uint8Array | 'error' => {
    try {
      const bytes = f(text);
      assert.equal(bytes.constructor, Uint8Array); // never a Buffer
      assert.equal(bytes.buffer.byteLength, bytes.byteLength); // never a view of a shared pool
      return bytes;
    } catch (error) {
      assert.ok(isSigilError(error) && error.code === 'core.base64_invalid');
      return 'error';
    }
  };
  const result = decode(fromBase64);
  assert.deepEqual(decode(fromBase64Portable), result, `node and portable paths agree on ${JSON.stringify(text)}`);
  return result;
}

function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('toBase64 equals btoa for every length 0..300 and a 100 KiB buffer', () => {
  const next = random(1);
  for (let n = 0; n <= 300; n++) {
    const bytes = Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
    assert.equal(toBase64(bytes), btoa(String.fromCharCode(...bytes)));
    assert.equal(toBase64Portable(bytes), toBase64(bytes));
    assert.equal(toBase64(bytes.subarray(1)), btoa(String.fromCharCode(...bytes.subarray(1))));
  }
  const big = Uint8Array.from({ length: 100_000 }, () => Math.floor(next() * 256));
  const expected = Buffer.from(big).toString('base64');
  assert.equal(toBase64(big), expected);
  assert.equal(toBase64Portable(big), expected);
  assert.deepEqual(fromBase64(expected), big);
  assert.deepEqual(fromBase64Portable(expected), big);
  assert.deepEqual(fromBase64(expected.replace(/\+/g, '-').replace(/\//g, '_').replace(/(.{64})/g, '$1\n')), big);
});

test('fromBase64 accepts and refuses exactly what atob does (url alphabet, whitespace, padding)', () => {
  const cases = ['', 'YQ', 'YQ=', 'YQ==', 'YQ===', 'YWI', 'YWI=', 'YWJj', 'YWJj=', 'Y', 'YR==', '=', '==', 'YQ==YQ==', 'YQ=\n=', ' Y Q = = ', 'a-_b', 'a+/b', '_-_-',
    'YWJj\u00a0ZGVm', 'YWJj\u2028', 'YWJj\ufeff', 'YW\u00e9J', 'YWJj!', 'YWJj\tZA\r\n', '\u0000', 'Y\u000bQ', 'YQ\u00a0=='];
  for (const text of cases) assert.deepEqual(ourFromBase64(text), referenceFromBase64(text), JSON.stringify(text));
  const alphabet = 'AZaz09+/-_= \n\t\u00a0!.';
  const next = random(7);
  for (let i = 0; i < 20_000; i++) {
    const length = Math.floor(next() * 14);
    let text = '';
    for (let j = 0; j < length; j++) text += alphabet[Math.floor(next() * alphabet.length)];
    assert.deepEqual(ourFromBase64(text), referenceFromBase64(text), JSON.stringify(text));
  }
});

test('hex round trip; 0x prefix; odd length and non-hex refused', () => {
  const next = random(3);
  const bytes = Uint8Array.from({ length: 1000 }, () => Math.floor(next() * 256));
  const hex = toHex(bytes);
  assert.equal(hex, Buffer.from(bytes).toString('hex'));
  assert.deepEqual(fromHex(hex), bytes);
  assert.deepEqual(fromHex(hex.toUpperCase()), bytes);
  assert.deepEqual(fromHex('0x0aFf'), new Uint8Array([0x0a, 0xff]));
  assert.deepEqual(fromHex('0X'), new Uint8Array(0));
  for (const bad of ['0', 'abc', 'zz', '0g', ' 00', '00 ', '\u0660\u0660', '0x0']) {
    assert.throws(() => fromHex(bad), (e: unknown) => isSigilError(e) && e.code === 'core.hex_invalid', bad);
  }
});
