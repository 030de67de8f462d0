/**
 * `sigil verity …` and `sigil image …` as a user runs them: the same report as veritysetup,
 * --json, exit codes (0 ok, 1 refused, 2 usage), and the image commands end to end with a
 * registry on loopback.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hasTool, seededBytes, startRegistry, tempDir, veritysetup, type RunningRegistry } from './support.ts';

const SIGIL = new URL('../../scripts/sigil', import.meta.url).pathname;
const UUID = '0b5e1f0c-7d7e-4c1a-9d8b-3f2a1e0c9b8a';

function sigil(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('sh', [SIGIL, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tools = hasTool('veritysetup') && hasTool('mksquashfs') && hasTool('unsquashfs') && hasTool('docker-registry');
let dir = '';
before(() => {
  dir = tempDir('image-cli');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('sigil verity and sigil image', { skip: tools ? false : 'needs cryptsetup-bin, squashfs-tools and docker-registry' }, () => {
  test('verity format prints what veritysetup prints and writes the same hash file; verify exits 0 or 1', () => {
    const data = join(dir, 'data');
    writeFileSync(data, seededBytes('cli', 3 * 1024 * 1024 + 7));
    const common = ['--salt', 'c0ffee', '--uuid', UUID, '--hash', 'sha512'];
    const reference = veritysetup(['format', data, join(dir, 'hash'), ...common]);
    const theirs = readFileSync(join(dir, 'hash'));
    rmSync(join(dir, 'hash'));
    const ours = sigil(['verity', 'format', data, join(dir, 'hash'), ...common]);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.stdout, reference.stdout);
    assert.match(ours.stderr, /last 7 bytes .* not protected/);
    assert.ok(Buffer.compare(readFileSync(join(dir, 'hash')), theirs) === 0);
    const root = /Root hash:\s+(\w+)/.exec(ours.stdout)?.[1] ?? '';

    const json = sigil(['verity', 'format', data, join(dir, 'hash2'), ...common, '--json', '--root-hash-file', join(dir, 'root')]);
    const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(parsed.rootHash, root);
    assert.equal(parsed.hashBlocks, 13);
    assert.equal(parsed.uncoveredBytes, 7);
    assert.equal(readFileSync(join(dir, 'root'), 'utf8'), root);

    assert.equal(sigil(['verity', 'verify', data, join(dir, 'hash'), root]).status, 0);
    assert.equal(sigil(['verity', 'verify', data, join(dir, 'hash'), '--root-hash-file', join(dir, 'root')]).status, 0);
    const bytes = readFileSync(data);
    bytes[2 * 4096 + 1] ^= 1;
    writeFileSync(data, bytes);
    const bad = sigil(['verity', 'verify', data, join(dir, 'hash'), root, '--json']);
    assert.equal(bad.status, 1);
    assert.deepEqual((JSON.parse(bad.stdout) as { error: { code: string; details: unknown } }).error.code, 'verity.verification_failed');
    assert.match(sigil(['verity', 'verify', data, join(dir, 'hash'), root]).stderr, /verification failed at position 8192 \[verity.verification_failed\]/);
    assert.equal(sigil(['verity', 'format', data, join(dir, 'h3'), '--hash', 'md5']).status, 2);
    assert.equal(sigil(['verity', 'format', data, join(dir, 'h3'), '--salt', 'xyz']).status, 2);
    const dump = sigil(['verity', 'dump', join(dir, 'hash'), '--json']);
    assert.equal((JSON.parse(dump.stdout) as { uuid: string }).uuid, UUID);
  });

  describe('image commands with a registry', () => {
    let registry: RunningRegistry;
    before(async () => {
      registry = await startRegistry();
    });
    after(async () => registry?.stop());

    test('build → verify → push → pull → extract; a tampered layer is refused', () => {
      const tree = join(dir, 'tree');
      mkdirSync(join(tree, 'srv'), { recursive: true });
      writeFileSync(join(tree, 'srv/index.html'), '<h1>sigil</h1>\n');
      writeFileSync(join(tree, 'srv/big'), seededBytes('big', 1_000_000));
      const layout = join(dir, 'layout');
      const built = sigil(['image', 'build', layout, 'v1', tree, '--json']);
      assert.equal(built.status, 0, built.stderr);
      const image = JSON.parse(built.stdout) as { digest: string; layers: { rootHash: string }[] };
      assert.match(image.layers[0].rootHash, /^[0-9a-f]{64}$/);
      assert.equal(sigil(['image', 'verify', layout, 'v1']).status, 0);

      const remote = `${registry.host}/sigil/web:1`;
      const pushed = sigil(['image', 'push', layout, 'v1', remote, '--plain-http']);
      assert.equal(pushed.status, 0, pushed.stderr);
      assert.match(pushed.stderr, /plain HTTP/);
      const pulledLayout = join(dir, 'pulled');
      const pulled = sigil(['image', 'pull', remote, pulledLayout, '--plain-http', '--json']);
      assert.equal(pulled.status, 0, pulled.stderr);
      assert.equal((JSON.parse(pulled.stdout) as { digest: string }).digest, image.digest);
      const out = join(dir, 'out');
      assert.equal(sigil(['image', 'extract', pulledLayout, '1', out]).status, 0);
      assert.equal(readFileSync(join(out, 'srv/index.html'), 'utf8'), '<h1>sigil</h1>\n');

      const blobs = join(pulledLayout, 'blobs/sha256');
      const biggest = readdirSync(blobs).map((name) => ({ name, size: readFileSync(join(blobs, name)).length })).sort((a, b) => b.size - a.size)[0];
      const bytes = readFileSync(join(blobs, biggest.name));
      bytes[100] ^= 1;
      writeFileSync(join(blobs, biggest.name), bytes);
      const refused = sigil(['image', 'verify', pulledLayout, '1', '--json']);
      assert.equal(refused.status, 1);
      assert.equal((JSON.parse(refused.stdout) as { error: { code: string } }).error.code, 'oci.digest_mismatch');
      assert.equal(sigil(['image', 'extract', pulledLayout, '1', join(dir, 'out2')]).status, 1);
      assert.equal(sigil(['image', 'pull', 'no-registry-part', pulledLayout]).status, 1);
    });
  });
});
