import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Reader, Writer, constantTimeEqual } from '../../src/core/bytes.ts';
import { SigilError } from '../../src/core/errors.ts';
import { fromHex, toHex } from '../../src/core/hex.ts';

test('Writer and Reader round-trip big-endian integers and sized buffers', () => {
  const bytes = new Writer(2).u8(1).u16(0x0203).u32(0x04050607).u64(0x08090a0b0c0d0e0fn).sized16(fromHex('aabb')).finish();
  assert.equal(toHex(bytes), '0102030405060708090a0b0c0d0e0f0002aabb');
  const r = new Reader(bytes);
  assert.equal(r.u8(), 1);
  assert.equal(r.u16(), 0x0203);
  assert.equal(r.u32(), 0x04050607);
  assert.equal(r.u64(), 0x08090a0b0c0d0e0fn);
  assert.deepEqual(r.sized16(), fromHex('aabb'));
  assert.equal(r.remaining, 0);
});

test('Reader turns every overrun into a SigilError with the caller code', () => {
  const r = new Reader(fromHex('0005aa'), { errorCode: 'tpm.response_truncated', what: 'test' });
  assert.throws(
    () => r.sized16(),
    (e: unknown) => e instanceof SigilError && e.code === 'tpm.response_truncated' && e.details.needed === 5,
  );
  assert.throws(() => new Reader(fromHex('0010')).sized16(8), (e: unknown) => e instanceof SigilError && e.code === 'core.truncated');
  assert.throws(() => new Reader(new Uint8Array(4)).list(0xffffffff, 10, (x) => x.u8()), SigilError);
});

test('hex parsing rejects odd lengths and non-hex characters', () => {
  assert.throws(() => fromHex('abc'), (e: unknown) => e instanceof SigilError && e.code === 'core.hex_invalid');
  assert.throws(() => fromHex('zz'), SigilError);
  assert.deepEqual(fromHex('0xFF00'), new Uint8Array([255, 0]));
});

test('constantTimeEqual compares contents and lengths', () => {
  assert.equal(constantTimeEqual(fromHex('0102'), fromHex('0102')), true);
  assert.equal(constantTimeEqual(fromHex('0102'), fromHex('0103')), false);
  assert.equal(constantTimeEqual(fromHex('0102'), fromHex('010200')), false);
  assert.equal(constantTimeEqual(new Uint8Array(0), new Uint8Array(0)), true);
});
