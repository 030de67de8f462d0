/**
 * Squashfs + verity layers: reproducible (same tree → same digest and root hash, whatever the
 * files' times or creation order), readable by veritysetup (interop), extracted through the
 * VerityReader, and refused when tampered with. Mounting runs only as root with device-mapper.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import { extractLayer } from '../../src/image/layers/extract.ts';
import { buildImage } from '../../src/image/layers/image-builder.ts';
import { buildLayer, layerHashOffset, openLayer, VERITY_ROOT_HASH_ANNOTATION, verifyLayer } from '../../src/image/layers/layer.ts';
import { mountLayer, mountUnavailableReason, unmountLayer } from '../../src/image/layers/mount.ts';
import { OciLayout } from '../../src/image/oci/layout.ts';
import { hasTool, seededBytes, tempDir, veritysetup } from './support.ts';

const tools = hasTool('mksquashfs') && hasTool('unsquashfs') && hasTool('veritysetup');
let dir = '';

/** A small tree with nested dirs, a larger file, an empty file, modes and a symlink. */
function makeTree(root: string, order: 'forward' | 'reverse', time: number): void {
  const files: [string, Buffer][] = [
    ['etc/motd', Buffer.from('hello from sigil\n')],
    ['usr/bin/tool', seededBytes('tool', 300_000)],
    ['usr/share/empty', Buffer.alloc(0)],
    ['var/lib/data.bin', seededBytes('data', 70_000)],
  ];
  const list = order === 'forward' ? files : [...files].reverse();
  for (const [path, content] of list) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
    utimesSync(join(root, path), time, time);
  }
  chmodSync(join(root, 'usr/bin/tool'), 0o755);
  symlinkSync('../etc/motd', join(root, 'usr/motd-link'));
}

async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (path: string) => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      const key = relative(root, full);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isSymbolicLink()) out[key] = `link:${await readlink(full)}`;
      else out[key] = `${((await stat(full)).mode & 0o777).toString(8)}:${(await readFile(full)).toString('base64')}`;
    }
  };
  await walk(root);
  return out;
}

before(() => {
  dir = tempDir('layers');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('verity squashfs layers', { skip: tools ? false : 'needs mksquashfs, unsquashfs and veritysetup' }, () => {
  test('the same tree gives the same blob digest and root hash (other times, other creation order)', async () => {
    makeTree(join(dir, 'tree-a'), 'forward', 1_000_000);
    makeTree(join(dir, 'tree-b'), 'reverse', 1_700_000_000);
    const a = await buildLayer(join(dir, 'tree-a'), join(dir, 'a.layer'));
    const b = await buildLayer(join(dir, 'tree-b'), join(dir, 'b.layer'));
    const again = await buildLayer(join(dir, 'tree-a'), join(dir, 'a2.layer'));
    assert.equal(a.digest, b.digest);
    assert.equal(a.rootHash, b.rootHash);
    assert.equal(a.digest, again.digest);
    assert.ok(Buffer.compare(readFileSync(a.path), readFileSync(b.path)) === 0);
    assert.equal(a.mediaType, 'application/vnd.stacker.image.layer.squashfs+zstd+verity');
    assert.deepEqual(a.annotations, { [VERITY_ROOT_HASH_ANNOTATION]: a.rootHash });
    const salted = await buildLayer(join(dir, 'tree-a'), join(dir, 'salted.layer'), { salt: Buffer.from('00', 'hex') });
    assert.notEqual(salted.rootHash, a.rootHash, 'a given salt changes the root hash');
    const gzip = await buildLayer(join(dir, 'tree-a'), join(dir, 'gzip.layer'), { compression: 'gzip' });
    assert.notEqual(gzip.digest, a.digest);
  });

  test('layout interop: veritysetup verifies the layer with the annotated root hash at the squashfs size', async () => {
    const layer = await buildLayer(join(dir, 'tree-a'), join(dir, 'interop.layer'));
    assert.equal(layerHashOffset(layer.path), layer.hashOffset);
    const check = veritysetup(['verify', layer.path, layer.path, layer.rootHash, `--hash-offset=${layer.hashOffset}`]);
    assert.equal(check.status, 0, check.stderr);
    await verifyLayer(layer.path, layer.rootHash);
  });

  test('extract reads through the VerityReader and reproduces the tree', async () => {
    const layer = await buildLayer(join(dir, 'tree-a'), join(dir, 'extract.layer'));
    const dest = join(dir, 'extracted');
    await extractLayer(layer.path, layer.rootHash, dest);
    assert.deepEqual(await snapshot(dest), await snapshot(join(dir, 'tree-a')));
    const reader = await openLayer(layer.path, layer.rootHash);
    try {
      assert.equal(reader.size, layer.hashOffset);
      assert.equal(Buffer.from(await reader.read(0, 4)).toString(), 'hsqs');
    } finally {
      await reader.close();
    }
  });

  test('a tampered layer: extract fails on the altered block, full verify fails, nothing is extracted', async () => {
    const layer = await buildLayer(join(dir, 'tree-a'), join(dir, 'tampered.layer'));
    const bytes = readFileSync(layer.path);
    bytes[layer.hashOffset - 5000] ^= 0x40; // inside the squashfs image
    writeFileSync(layer.path, bytes);
    const dest = join(dir, 'tampered-out');
    await assert.rejects(extractLayer(layer.path, layer.rootHash, dest), (e) => isSigilError(e, 'verity.block_corrupt') && e.details.block === Math.floor((layer.hashOffset - 5000) / 4096));
    await assert.rejects(stat(dest), 'nothing extracted');
    await assert.rejects(verifyLayer(layer.path, layer.rootHash), (e) => isSigilError(e, 'verity.verification_failed'));
    const treeByte = readFileSync(join(dir, 'interop.layer'));
    treeByte[treeByte.length - 100] ^= 1;
    writeFileSync(join(dir, 'tree-tampered.layer'), treeByte);
    const interop = await buildLayer(join(dir, 'tree-a'), join(dir, 'ref.layer'));
    await assert.rejects(verifyLayer(join(dir, 'tree-tampered.layer'), interop.rootHash), (e) => isSigilError(e) && e.code.startsWith('verity.'));
    await assert.rejects(extractLayer(layer.path, 'ab'.repeat(32), join(dir, 'wrong-root')), (e) => isSigilError(e, 'verity.block_corrupt'));
  });

  test('an image of two layers in an OCI layout is reproducible', async () => {
    mkdirSync(join(dir, 'tree-c/etc'), { recursive: true });
    writeFileSync(join(dir, 'tree-c/etc/motd'), 'overridden\n');
    const first = await buildImage(await OciLayout.init(join(dir, 'layout-1')), [join(dir, 'tree-a'), join(dir, 'tree-c')], 'v1');
    const second = await buildImage(await OciLayout.init(join(dir, 'layout-2')), [join(dir, 'tree-b'), join(dir, 'tree-c')], 'v1');
    assert.equal(first.descriptor.digest, second.descriptor.digest);
    assert.equal(first.manifest.layers.length, 2);
    assert.equal(first.manifest.layers[0].annotations?.[VERITY_ROOT_HASH_ANNOTATION], first.layers[0].rootHash);
    const layout = await OciLayout.open(join(dir, 'layout-1'));
    assert.deepEqual(await layout.resolve('v1'), first.descriptor);
    for (const l of first.manifest.layers) await layout.verifyBlob(l);
  });

  const reason = mountUnavailableReason();
  test('mount through dm-verity (root + device-mapper)', { skip: reason ?? false }, async () => {
    const layer = await buildLayer(join(dir, 'tree-a'), join(dir, 'mount.layer'));
    const mountpoint = join(dir, 'mnt');
    mkdirSync(mountpoint);
    await mountLayer(layer.path, layer.rootHash, 'sigil-test-layer', mountpoint);
    try {
      assert.equal(readFileSync(join(mountpoint, 'etc/motd'), 'utf8'), 'hello from sigil\n');
    } finally {
      await unmountLayer('sigil-test-layer', mountpoint);
    }
  });
});
