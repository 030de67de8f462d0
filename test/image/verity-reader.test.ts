/**
 * Full verification and the VerityReader against altered data and trees: full verify fails (at
 * the position veritysetup reports), and the reader fails exactly the reads whose blocks the
 * alteration covers — one data block, or the blocks under an altered hash block — and no other.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import { toHex } from '../../src/core/hex.ts';
import { formatVerity, type FormatResult } from '../../src/image/verity/format.ts';
import { VerityReader } from '../../src/image/verity/reader.ts';
import { verifyVerity } from '../../src/image/verity/verify.ts';
import { hasTool, seededBytes, tempDir, veritysetup } from './support.ts';

const BLOCK = 4096;
const BLOCKS = 600; // level 0: 5 hash blocks (128 digests each); level 1: 1 block
const SALT = Buffer.from('5a17'.repeat(16), 'hex');

let dir = '';
let data: Buffer;
let dataPath = '';
let hashPath = '';
let formatted: FormatResult;
let root = '';

before(async () => {
  dir = tempDir('verity-reader');
  data = seededBytes('reader', BLOCKS * BLOCK);
  dataPath = join(dir, 'data');
  hashPath = join(dir, 'hash');
  writeFileSync(dataPath, data);
  formatted = await formatVerity(dataPath, hashPath, { salt: SALT, uuid: '11111111-2222-3333-4444-555555555555' });
  root = toHex(formatted.rootHash);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Run `body` on copies of data and hash with one byte flipped in `which` at `offset`. */
async function withFlip(which: 'data' | 'hash', offset: number, body: (data: string, hash: string) => Promise<void>): Promise<void> {
  const d = join(dir, 'flip.data');
  const h = join(dir, 'flip.hash');
  const dataCopy = Buffer.from(data);
  const hashCopy = readFileSync(hashPath);
  const target = which === 'data' ? dataCopy : hashCopy;
  target[offset] ^= 0x01;
  writeFileSync(d, dataCopy);
  writeFileSync(h, hashCopy);
  try {
    await body(d, h);
  } finally {
    rmSync(d, { force: true });
    rmSync(h, { force: true });
  }
}

/** Read every block one at a time; return the indexes whose read failed with block_corrupt. */
async function failingBlocks(reader: VerityReader): Promise<number[]> {
  const failed: number[] = [];
  for (let block = 0; block < BLOCKS; block++) {
    try {
      const bytes = await reader.read(block * BLOCK, BLOCK);
      assert.ok(Buffer.compare(Buffer.from(bytes), data.subarray(block * BLOCK, (block + 1) * BLOCK)) === 0, `block ${block} content`);
    } catch (error) {
      assert.ok(isSigilError(error, 'verity.block_corrupt'), `block ${block}: ${String(error)}`);
      failed.push(block);
    }
  }
  return failed;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Byte offset in the hash file of the level-0 digest of data block `block`. */
function leafDigestOffset(block: number): number {
  const g = formatted.geometry;
  return g.levelStart[0] * BLOCK + Math.floor(block / 128) * BLOCK + (block % 128) * 32;
}

test('an intact device verifies and reads back exactly, at any offset and length', async () => {
  const result = await verifyVerity(dataPath, hashPath, root, { threads: 2 });
  assert.equal(result.params.dataBlocks, BLOCKS);
  const reader = await VerityReader.open(dataPath, hashPath, root);
  try {
    assert.equal(reader.size, BLOCKS * BLOCK);
    for (const [position, length] of [[0, 1], [4095, 2], [12345, 100000], [BLOCKS * BLOCK - 10, 10], [0, BLOCKS * BLOCK]]) {
      assert.ok(Buffer.compare(Buffer.from(await reader.read(position, length)), data.subarray(position, position + length)) === 0, `${position}+${length}`);
    }
    assert.equal((await reader.read(BLOCKS * BLOCK - 10, 100)).length, 10, 'a read past the end is short');
    assert.equal((await reader.read(BLOCKS * BLOCK, 100)).length, 0);
    await assert.rejects(reader.read(-1, 1), (e) => isSigilError(e, 'verity.read_invalid'));
  } finally {
    await reader.close();
  }
});

test('a wrong root hash: verify and every read fail', async () => {
  const wrong = `${root.slice(0, 63)}${root[63] === '0' ? '1' : '0'}`;
  await assert.rejects(verifyVerity(dataPath, hashPath, wrong), (e) => isSigilError(e, 'verity.root_mismatch'));
  const reader = await VerityReader.open(dataPath, hashPath, wrong);
  try {
    assert.deepEqual(await failingBlocks(reader), range(0, BLOCKS));
  } finally {
    await reader.close();
  }
  await assert.rejects(VerityReader.open(dataPath, hashPath, 'abcd'), (e) => isSigilError(e, 'verity.root_hash_invalid'));
});

describe('one flipped byte', { skip: hasTool('veritysetup') ? false : 'veritysetup is not installed' }, () => {
  for (const block of [0, 127, 128, 333, BLOCKS - 1]) {
    test(`in data block ${block}: verify fails where veritysetup does; only reads of that block fail`, async () => {
      await withFlip('data', block * BLOCK + 777, async (d, h) => {
        const reference = veritysetup(['verify', d, h, root]);
        assert.notEqual(reference.status, 0);
        assert.match(reference.stderr, new RegExp(`Verification failed at position ${block * BLOCK}\\.`));
        await assert.rejects(verifyVerity(d, h, root), (e) => isSigilError(e, 'verity.verification_failed') && e.details.position === block * BLOCK);
        const reader = await VerityReader.open(d, h, root);
        try {
          assert.deepEqual(await failingBlocks(reader), [block]);
          await assert.rejects(reader.read((block - 1 >= 0 ? block - 1 : block) * BLOCK, 2 * BLOCK), (e) => isSigilError(e, 'verity.block_corrupt') && e.details.block === block);
          // still fails on a second read (nothing cached from a failed check), others still work
          await assert.rejects(reader.read(block * BLOCK + 5, 1), (e) => isSigilError(e, 'verity.block_corrupt'));
        } finally {
          await reader.close();
        }
      });
    });
  }

  for (const block of [5, 300, BLOCKS - 1]) {
    test(`in the level-0 digest of block ${block}: only the reads under that hash block fail`, async () => {
      await withFlip('hash', leafDigestOffset(block) + 3, async (d, h) => {
        const reference = veritysetup(['verify', d, h, root]);
        assert.notEqual(reference.status, 0);
        const position = Number(/position (\d+)/.exec(reference.stderr)?.[1]);
        await assert.rejects(verifyVerity(d, h, root), (e) => isSigilError(e, 'verity.verification_failed') && e.details.position === position);
        const reader = await VerityReader.open(d, h, root);
        try {
          const group = Math.floor(block / 128);
          assert.deepEqual(await failingBlocks(reader), range(group * 128, Math.min(BLOCKS, (group + 1) * 128)));
        } finally {
          await reader.close();
        }
      });
    });
  }

  test('in the zero padding after the last level-0 digest: verify reports spare area; reads under that block fail', async () => {
    const padding = leafDigestOffset(BLOCKS - 1) + 32 + 10;
    await withFlip('hash', padding, async (d, h) => {
      assert.notEqual(veritysetup(['verify', d, h, root]).status, 0);
      await assert.rejects(verifyVerity(d, h, root), (e) => isSigilError(e, 'verity.verification_failed') && /spare area/.test(e.message));
      const reader = await VerityReader.open(d, h, root);
      try {
        assert.deepEqual(await failingBlocks(reader), range(512, BLOCKS));
      } finally {
        await reader.close();
      }
    });
  });

  test('in the top-level hash block: every read fails', async () => {
    await withFlip('hash', formatted.geometry.levelStart[1] * BLOCK + 40, async (d, h) => {
      assert.notEqual(veritysetup(['verify', d, h, root]).status, 0);
      await assert.rejects(verifyVerity(d, h, root), (e) => isSigilError(e) && e.code.startsWith('verity.'));
      const reader = await VerityReader.open(d, h, root);
      try {
        assert.deepEqual(await failingBlocks(reader), range(0, BLOCKS));
      } finally {
        await reader.close();
      }
    });
  });

  test('in the superblock signature: opening refuses', async () => {
    await withFlip('hash', 0, async (d, h) => {
      await assert.rejects(verifyVerity(d, h, root), (e) => isSigilError(e, 'verity.superblock_invalid'));
      await assert.rejects(VerityReader.open(d, h, root), (e) => isSigilError(e, 'verity.superblock_invalid'));
    });
  });
});

test('check-at-most-once: a block verified once is not hashed again (the kernel flag)', async () => {
  const d = join(dir, 'once.data');
  writeFileSync(d, data);
  const reader = await VerityReader.open(d, hashPath, root, { checkAtMostOnce: true });
  try {
    await reader.read(7 * BLOCK, BLOCK);
    const altered = Buffer.from(data);
    altered[7 * BLOCK] ^= 1;
    altered[8 * BLOCK] ^= 1;
    writeFileSync(d, altered);
    assert.equal((await reader.read(7 * BLOCK, 1))[0], altered[7 * BLOCK], 'already verified: not checked again');
    await assert.rejects(reader.read(8 * BLOCK, 1), (e) => isSigilError(e, 'verity.block_corrupt'));
  } finally {
    await reader.close();
  }
});

test('without a superblock the caller gives the parameters; a short data file is refused', async () => {
  const h = join(dir, 'nosb.hash');
  const r = await formatVerity(dataPath, h, { superblock: false, salt: SALT, hash: 'sha512' });
  await verifyVerity(dataPath, h, r.rootHash, { superblock: false, salt: SALT, hash: 'sha512' });
  await assert.rejects(verifyVerity(dataPath, h, r.rootHash, { superblock: false }), (e) => isSigilError(e, 'verity.params_invalid'));
  await assert.rejects(verifyVerity(dataPath, h, r.rootHash, { superblock: false, salt: SALT, hash: 'sha256' }), (e) => isSigilError(e, 'verity.root_hash_invalid'));
  const short = join(dir, 'short.data');
  writeFileSync(short, data.subarray(0, 100 * BLOCK));
  await assert.rejects(verifyVerity(short, hashPath, root), (e) => isSigilError(e, 'verity.data_short'));
});

test('tree building on two threads: a data file shorter than the parameters say fails cleanly in every thread', async () => {
  const { buildTree } = await import('../../src/image/verity/tree-builder.ts');
  const short = join(dir, 'short-threads.data');
  writeFileSync(short, data.subarray(0, 40 * BLOCK));
  const params = { hash: 'sha256' as const, dataBlockSize: BLOCK, hashBlockSize: BLOCK, dataBlocks: 100_000, salt: SALT, superblock: true, hashOffset: 0 };
  await assert.rejects(buildTree(short, params, { threads: 2 }), (e) => isSigilError(e, 'verity.data_short'));
  const full = await buildTree(dataPath, { ...params, dataBlocks: BLOCKS }, { threads: 2 });
  assert.equal(toHex(full.rootHash), root);
});
