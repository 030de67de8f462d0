/**
 * Block devices as data (stat() says size 0; the size comes from sysfs): format and verify a loop
 * device against veritysetup on the same device. Needs root and a free loop device, else skips.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { toHex } from '../../src/core/hex.ts';
import { formatVerity } from '../../src/image/verity/format.ts';
import { dataSizeOf } from '../../src/image/verity/open-params.ts';
import { VerityReader } from '../../src/image/verity/reader.ts';
import { verifyVerity } from '../../src/image/verity/verify.ts';
import { hasTool, rootFromReport, seededBytes, tempDir, veritysetup } from './support.ts';

let dir = '';
let loop = '';
let skip: string | false = false;
const data = seededBytes('loop', 2 * 1024 * 1024);

before(() => {
  dir = tempDir('verity-blockdev');
  if (typeof process.getuid === 'function' && process.getuid() !== 0) skip = 'needs root for a loop device';
  else if (!hasTool('losetup') || !hasTool('veritysetup')) skip = 'needs losetup and veritysetup';
  else {
    writeFileSync(join(dir, 'backing'), data);
    const r = spawnSync('losetup', ['--find', '--show', '--read-only', join(dir, 'backing')], { encoding: 'utf8' });
    if (r.status === 0) loop = r.stdout.trim();
    else skip = `no loop device: ${r.stderr.trim()}`;
  }
});
after(() => {
  if (loop) spawnSync('losetup', ['-d', loop]);
  rmSync(dir, { recursive: true, force: true });
});

test('a loop device: size from sysfs, hash file and root identical to veritysetup, verified reads', async (t) => {
  if (skip) return t.skip(skip);
  assert.equal(dataSizeOf(loop), data.length);
  const args = ['--salt', '0102', '--uuid', '0b5e1f0c-7d7e-4c1a-9d8b-3f2a1e0c9b8a'];
  const reference = veritysetup(['format', loop, join(dir, 'theirs'), ...args]);
  assert.equal(reference.status, 0, reference.stderr);
  const ours = await formatVerity(loop, join(dir, 'ours'), { salt: Buffer.from('0102', 'hex'), uuid: '0b5e1f0c-7d7e-4c1a-9d8b-3f2a1e0c9b8a' });
  assert.equal(toHex(ours.rootHash), rootFromReport(reference.stdout));
  assert.ok(Buffer.compare(readFileSync(join(dir, 'ours')), readFileSync(join(dir, 'theirs'))) === 0);
  await verifyVerity(loop, join(dir, 'ours'), ours.rootHash);
  const reader = await VerityReader.open(loop, join(dir, 'ours'), ours.rootHash);
  try {
    assert.ok(Buffer.compare(Buffer.from(await reader.read(12345, 9999)), data.subarray(12345, 12345 + 9999)) === 0);
  } finally {
    await reader.close();
  }
});
