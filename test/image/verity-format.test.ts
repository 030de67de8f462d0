/**
 * `formatVerity` against `veritysetup format` (cryptsetup 2.6.1) on the same data: the root hash,
 * the report lines and every byte of the hash file must be identical, across sizes (including
 * the ones veritysetup refuses), salts, both hashes, block sizes, with and without superblock,
 * separate hash files, hash offsets and the tree appended to the data file.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import { toHex } from '../../src/core/hex.ts';
import { formatReport, formatVerity, type FormatOptions } from '../../src/image/verity/format.ts';
import { verityGeometry } from '../../src/image/verity/params.ts';
import { hasTool, rootFromReport, seededBytes, tempDir, veritysetup } from './support.ts';

const UUID = '0b5e1f0c-7d7e-4c1a-9d8b-3f2a1e0c9b8a';
const KIB = 1024;
const MIB = 1024 * KIB;

interface Case {
  size: number;
  hash?: 'sha256' | 'sha512';
  salt?: string; // hex, or '-' for none
  dataBlockSize?: number;
  hashBlockSize?: number;
  superblock?: boolean;
  hashOffset?: number;
  appended?: boolean;
  garbageHashFile?: boolean;
  threads?: number;
}

const SALT32 = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const SALT256 = toHex(seededBytes('salt', 256));

const CASES: Case[] = [
  // sizes, default parameters
  ...[4096, 4097, 8191, 8192, 12288 + 100, 129 * 4096, MIB + 1, 3 * MIB + 1234, 5 * MIB].map((size) => ({ size, salt: SALT32 })),
  // three levels (sha256: 128 digests per block → more than 128² blocks), run on two threads
  { size: 64 * MIB + 3 * 4096 + 17, salt: SALT32, threads: 2 },
  // sha512 (64 digests per block: three levels past 16 MiB)
  { size: 17 * MIB + 5, hash: 'sha512', salt: SALT32, threads: 2 },
  { size: 2 * MIB, hash: 'sha512', salt: '-' },
  // salts
  { size: 2 * MIB + 4096, salt: '-' },
  { size: 2 * MIB + 4096, salt: '00' },
  { size: 2 * MIB + 4096, salt: SALT256 },
  { size: 2 * MIB + 4096, hash: 'sha512', salt: SALT256, threads: 2 },
  // block sizes
  { size: MIB + 700, salt: SALT32, dataBlockSize: 512 },
  { size: MIB + 700, salt: SALT32, dataBlockSize: 1024, hashBlockSize: 512 },
  { size: 3 * MIB, salt: SALT32, dataBlockSize: 8192, hashBlockSize: 8192, hash: 'sha512' },
  { size: 2 * MIB, salt: SALT32, hashBlockSize: 1024, hash: 'sha512' },
  // no superblock, offsets, appended tree
  { size: 2 * MIB + 1, salt: SALT32, superblock: false },
  { size: 2 * MIB, salt: '-', superblock: false, hash: 'sha512' },
  { size: 2 * MIB, salt: SALT32, hashOffset: 8192 },
  { size: 2 * MIB, salt: SALT32, hashOffset: 512 },
  { size: 2 * MIB, salt: SALT32, superblock: false, hashOffset: 512 },
  { size: 2 * MIB, salt: SALT32, appended: true },
  { size: 2 * MIB, salt: SALT32, appended: true, superblock: false, threads: 2 },
  { size: 4096, salt: SALT32, appended: true },
  { size: 2 * MIB, salt: SALT32, garbageHashFile: true },
  { size: 2 * MIB, salt: SALT32, garbageHashFile: true, hashOffset: 4096 },
];

function name(c: Case): string {
  const parts = [`${c.size} B`, c.hash ?? 'sha256', `salt ${c.salt === '-' ? 'none' : `${(c.salt ?? '').length / 2} B`}`];
  if (c.dataBlockSize || c.hashBlockSize) parts.push(`blocks ${c.dataBlockSize ?? 4096}/${c.hashBlockSize ?? 4096}`);
  if (c.superblock === false) parts.push('no superblock');
  if (c.hashOffset !== undefined) parts.push(`hash offset ${c.hashOffset}`);
  if (c.appended) parts.push('appended');
  if (c.garbageHashFile) parts.push('existing hash file');
  if (c.threads) parts.push(`${c.threads} threads`);
  return parts.join(', ');
}

const available = hasTool('veritysetup');
let dir = '';

before(() => {
  dir = tempDir('verity-format');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function veritysetupArgs(c: Case, data: string, hash: string, hashOffset: number | undefined): string[] {
  const args = ['format', data, hash, '--uuid', UUID, '--salt', c.salt ?? SALT32];
  if (c.hash) args.push('--hash', c.hash);
  if (c.dataBlockSize) args.push('--data-block-size', String(c.dataBlockSize));
  if (c.hashBlockSize) args.push('--hash-block-size', String(c.hashBlockSize));
  if (c.superblock === false) args.push('--no-superblock');
  if (hashOffset !== undefined) args.push('--hash-offset', String(hashOffset));
  if (c.appended) args.push('--data-blocks', String(Math.floor(c.size / (c.dataBlockSize ?? 4096))));
  return args;
}

function sigilOptions(c: Case, hashOffset: number | undefined): FormatOptions {
  return {
    uuid: UUID,
    salt: c.salt === '-' ? new Uint8Array(0) : Buffer.from(c.salt ?? SALT32, 'hex'),
    hash: c.hash,
    dataBlockSize: c.dataBlockSize,
    hashBlockSize: c.hashBlockSize,
    superblock: c.superblock,
    hashOffset,
    dataBlocks: c.appended ? Math.floor(c.size / (c.dataBlockSize ?? 4096)) : undefined,
    threads: c.threads ?? 1,
  };
}

describe('verity format is byte-identical to veritysetup format', { skip: available ? false : 'veritysetup (cryptsetup-bin) is not installed' }, () => {
  for (const [i, c] of CASES.entries()) {
    test(name(c), async () => {
      const data = seededBytes(`data-${i}`, c.size);
      const oursData = join(dir, `ours-${i}.data`);
      const theirsData = join(dir, `theirs-${i}.data`);
      writeFileSync(oursData, data);
      writeFileSync(theirsData, data);
      // Appended: the tree goes into the data file itself, right after the data blocks.
      const hashOffset = c.appended ? Math.ceil(c.size / 4096) * 4096 : c.hashOffset;
      const oursHash = c.appended ? oursData : join(dir, `ours-${i}.hash`);
      const theirsHash = c.appended ? theirsData : join(dir, `theirs-${i}.hash`);
      if (c.garbageHashFile) {
        const garbage = Buffer.alloc(300 * 1024, 0xa5);
        writeFileSync(oursHash, garbage);
        writeFileSync(theirsHash, garbage);
      }
      const reference = veritysetup(veritysetupArgs(c, theirsData, theirsHash, hashOffset));
      assert.equal(reference.status, 0, reference.stderr);
      const result = await formatVerity(oursData, oursHash, sigilOptions(c, hashOffset));
      assert.equal(toHex(result.rootHash), rootFromReport(reference.stdout));
      assert.equal(formatReport(theirsHash, result), reference.stdout);
      assert.ok(Buffer.compare(readFileSync(oursHash), readFileSync(theirsHash)) === 0, 'hash files differ');
      if (!c.appended) assert.ok(Buffer.compare(readFileSync(oursData), data) === 0, 'data file changed');
      rmSync(oursData);
      rmSync(theirsData, { force: true });
      rmSync(oursHash, { force: true });
      rmSync(theirsHash, { force: true });
    });
  }

  for (const size of [0, 1, 4095]) {
    test(`${size} B: no whole data block — both refuse`, async () => {
      const data = join(dir, `small-${size}`);
      writeFileSync(data, seededBytes('small', size));
      const reference = veritysetup(['format', data, `${data}.theirs`, '--salt', '00']);
      assert.notEqual(reference.status, 0);
      await assert.rejects(formatVerity(data, `${data}.ours`, { salt: new Uint8Array(1) }), (e) => isSigilError(e, 'verity.data_too_small'));
    });
  }

  test('refuses what veritysetup refuses: bad offsets, block sizes, overlapping areas, long salts', async () => {
    const data = join(dir, 'refuse.data');
    writeFileSync(data, seededBytes('refuse', 64 * 1024));
    const refusals: [FormatOptions, string, string[]][] = [
      [{ hashOffset: 1000 }, 'verity.params_invalid', ['--hash-offset', '1000']],
      [{ dataBlockSize: 256 }, 'verity.params_invalid', ['--data-block-size', '256']],
      [{ dataBlockSize: 1 << 20 }, 'verity.params_invalid', ['--data-block-size', String(1 << 20)]],
      [{ hashBlockSize: 3000 }, 'verity.params_invalid', ['--hash-block-size', '3000']],
      [{ salt: new Uint8Array(257) }, 'verity.params_invalid', ['--salt', '00'.repeat(257)]],
    ];
    for (const [options, code, args] of refusals) {
      assert.notEqual(veritysetup(['format', data, `${data}.theirs`, ...args]).status, 0, args.join(' '));
      await assert.rejects(formatVerity(data, `${data}.ours`, options), (e) => isSigilError(e, code), JSON.stringify(args));
    }
    const same = join(dir, 'overlap.data');
    copyFileSync(data, same);
    assert.notEqual(veritysetup(['format', same, same, '--hash-offset', '0', '--salt', '00']).status, 0);
    await assert.rejects(formatVerity(same, same, { hashOffset: 0 }), (e) => isSigilError(e, 'verity.hash_overlaps_data'));
    await assert.rejects(formatVerity(same, same, { hashOffset: 32768 }), (e) => isSigilError(e, 'verity.hash_overlaps_data'));
  });

  test('defaults: 32-byte random salt and random UUID, like veritysetup', async () => {
    const data = join(dir, 'defaults.data');
    writeFileSync(data, seededBytes('defaults', 256 * 1024));
    const a = await formatVerity(data, `${data}.a`);
    const b = await formatVerity(data, `${data}.b`);
    assert.equal(a.params.salt.length, 32);
    assert.notEqual(toHex(a.params.salt), toHex(b.params.salt));
    assert.notEqual(a.uuid, b.uuid);
    const check = veritysetup(['verify', data, `${data}.a`, toHex(a.rootHash)]);
    assert.equal(check.status, 0, check.stderr);
  });
});

test('geometry: levels and hash block counts match cryptsetup for boundary block counts', () => {
  const base = { hash: 'sha256' as const, dataBlockSize: 4096, hashBlockSize: 4096, salt: new Uint8Array(0), superblock: true, hashOffset: 0 };
  const expect: [number, number, number][] = [
    // data blocks, levels, hash blocks
    [1, 0, 0],
    [2, 1, 1],
    [128, 1, 1],
    [129, 2, 3],
    [128 * 128, 2, 129],
    [128 * 128 + 1, 3, 132],
    [262144, 3, 2065],
  ];
  for (const [dataBlocks, levels, hashBlocks] of expect) {
    const g = verityGeometry({ ...base, dataBlocks });
    assert.deepEqual([g.levels, g.hashBlocks], [levels, hashBlocks], `${dataBlocks} blocks`);
  }
});
