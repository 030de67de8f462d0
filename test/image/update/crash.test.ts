/**
 * kill -9 at every phase of an update, as a device would suffer it: `sigil update apply` (and
 * rollback) run as child processes with SIGIL_UPDATE_PAUSE_AT=<phase>, are SIGKILLed while
 * paused there, and the next `sigil update status` must recover to one consistent release — the
 * old one when the kill came before the symlink switch, the new one (floor, clean-up and hook
 * completed) after it — and rollback must still work.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hasTool, startRegistry, tempDir, type RunningRegistry } from '../support.ts';
import { buildTarget, deviceCertificate, makeVendor, manifestOf, publish, pushTarget, signed, target, writeDeviceFiles, type VendorFixture } from '../manifest/fixtures.ts';

const SIGIL = new URL('../../../scripts/sigil', import.meta.url).pathname;
const tools = hasTool('docker-registry') && hasTool('mksquashfs') && hasTool('veritysetup');
const REPO = 'acme/gw';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

describe('sigil update: kill -9 at each phase, then restart', { skip: tools ? false : 'needs docker-registry, squashfs-tools and cryptsetup-bin' }, () => {
  let vendor: VendorFixture;
  let registry: RunningRegistry;
  let dir = '';
  let state = '';

  const sigil = (args: string[]): Run => {
    const r = spawnSync('sh', [SIGIL, 'update', ...args, '--state', state], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = (args: string[]) => {
    const r = sigil([...args, '--json']);
    try {
      return { ...r, body: JSON.parse(r.stdout) };
    } catch {
      throw new Error(`sigil update ${args.join(' ')} printed no JSON (exit ${r.status}): ${r.stdout}${r.stderr}`);
    }
  };
  const status = () => {
    const r = json(['status']);
    assert.equal(r.status, 0, JSON.stringify(r.body.problems ?? r.body));
    return r.body;
  };
  const linked = () => readlinkSync(join(state, 'current'));

  /** Start `sigil update <args>` paused at `point`, SIGKILL it there. */
  async function killAt(point: string, args: string[]): Promise<void> {
    const child = spawn('sh', [SIGIL, 'update', ...args, '--state', state, '--json'], { env: { ...process.env, SIGIL_UPDATE_PAUSE_AT: point }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no pause at ${point} within 30 s: ${stderr}`)), 30_000);
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes(`paused at ${point}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`sigil update ${args.join(' ')} exited (${code}) before pausing at ${point}: ${stderr}`));
      });
    });
    if (point === 'download') {
      // While it holds the state folder, a second engine is turned away.
      const busy = json(['status']);
      assert.equal(busy.status, 1);
      assert.equal(busy.body.error.code, 'update.busy');
    }
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
  }

  before(async () => {
    dir = tempDir('update-crash');
    state = join(dir, 'state');
    vendor = await makeVendor();
    registry = await startRegistry();
    const web1 = await buildTarget(dir, 'web', 'v1', 400_000);
    const web2 = await buildTarget(dir, 'web', 'v2', 400_000);
    const db1 = await buildTarget(dir, 'db', 'v1', 200_000);
    const db2 = await buildTarget(dir, 'db', 'v2', 200_000);
    for (const built of [web1, web2, db1, db2]) await pushTarget(registry.host, REPO, built);
    await publish(registry.host, REPO, 'r1', await signed(vendor, manifestOf(1, [target(web1, 'container', '1.0'), target(db1, 'container', '1.0')])));
    // Release 2 the way a vendor publishes it: `sigil update publish` signs with the product key.
    const published = spawnSync(
      'sh',
      [SIGIL, 'update', 'publish', `${registry.host}/${REPO}:r2`, '--keyset', vendor.keyset.dir, '--product', 'acme-gw', '--release', '2', '--valid-days', '30', '--plain-http', '--json',
        '--target', `name=web,type=container,version=2.0,image=${registry.host}/${REPO}@${web2.digest}`,
        '--target', `name=db,type=container,version=2.0,image=${registry.host}/${REPO}@${db2.digest}`],
      { encoding: 'utf8' },
    );
    assert.equal(published.status, 0, published.stdout + published.stderr);
    const publishedBody = JSON.parse(published.stdout);
    assert.deepEqual(publishedBody.targets.map((t: { name: string; digest: string; size: number }) => [t.name, t.digest, t.size]), [
      ['web', web2.digest, web2.size],
      ['db', db2.digest, db2.size],
    ]);
    const files = writeDeviceFiles(join(dir, 'device'), vendor, await deviceCertificate(vendor, 'SN-CRASH-1'));
    const init = json(['init', '--registry', registry.host, '--repository', REPO, '--tag', 'r1', '--plain-http', '--trust', files.trust, '--device-certificate', files.certificate, '--hook', `cat > ${join(dir, 'hook.json')}`]);
    assert.equal(init.status, 0, init.stdout + init.stderr);
    assert.deepEqual([init.body.productId, init.body.serial, init.body.floor], ['acme-gw', 'SN-CRASH-1', 1]);
  });
  after(async () => {
    await registry?.stop();
    await vendor?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('killed before the switch (download, verify, switch): the old release stays; after it (switched, hook): the new one is completed; rollback works', async () => {
    const first = json(['apply']);
    assert.equal(first.status, 0, first.stdout + first.stderr);
    assert.equal(first.body.current.release, 1);
    const release1 = `releases/${first.body.current.id}`;
    assert.equal(linked(), release1);

    for (const [point, phase] of [
      ['download', 'download'],
      ['verify', 'verify'],
      ['switch', 'switching'],
    ] as const) {
      await killAt(point, ['apply', '--reference', 'r2']);
      if (point === 'download') {
        const staged = readdirSync(join(state, 'staging'));
        assert.equal(staged.length, 1, 'the interrupted download left its staging folder');
        assert.ok(existsSync(join(state, 'staging', staged[0], 'layout', 'index.json')));
      }
      const s = status();
      assert.equal(s.consistent, true, `${point}: ${s.problems.join('; ')}`);
      assert.deepEqual(s.recovered && [s.recovered.phase, s.recovered.outcome], [phase, 'kept-current'], `${point}: recovery`);
      assert.equal(s.current.release, 1, `${point}: still release 1`);
      assert.equal(linked(), release1);
      assert.equal(s.lastOperation.phase, 'interrupted');
      assert.equal(s.floor.value, 1);
    }

    await killAt('switched', ['apply', '--reference', 'r2']);
    rmSync(join(dir, 'hook.json'), { force: true });
    let s = status();
    assert.equal(s.consistent, true, s.problems.join('; '));
    assert.deepEqual([s.recovered?.phase, s.recovered?.outcome], ['switching', 'completed-switch']);
    assert.deepEqual([s.current.release, s.previous.release, s.floor.value], [2, 1, 1]);
    assert.equal(linked(), `releases/${s.current.id}`);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'hook.json'), 'utf8')).restart, ['db', 'web'], 'recovery ran the hook the killed update never reached');
    assert.deepEqual(readdirSync(join(state, 'staging')), [], 'staging was cleaned');

    const back = json(['rollback']);
    assert.equal(back.status, 0, back.stdout + back.stderr);
    assert.equal(back.body.current.release, 1);
    assert.equal(linked(), release1);

    await killAt('hook', ['apply', '--reference', 'r2']);
    s = status();
    assert.deepEqual([s.recovered?.phase, s.recovered?.outcome, s.current.release, s.consistent], ['switched', 'completed-switch', 2, true]);

    // Rollback killed before its switch stays on 2; killed after it lands on 1.
    await killAt('switch', ['rollback']);
    s = status();
    assert.deepEqual([s.recovered?.outcome, s.current.release, s.previous.release, s.consistent], ['kept-current', 2, 1, true]);
    await killAt('verify', ['rollback']);
    s = status();
    assert.deepEqual([s.recovered?.outcome, s.current.release, s.consistent], ['kept-current', 2, true]);
    await killAt('switched', ['rollback']);
    s = status();
    assert.deepEqual([s.recovered?.outcome, s.current.release, s.previous, s.consistent], ['completed-switch', 1, null, true]);
    assert.equal(linked(), release1);

    // And the ordinary way once more: apply release 2, roll back, human-readable status.
    const again = json(['apply', '--reference', 'r2']);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.equal(again.body.decision.action, 'restart');
    assert.equal(json(['rollback']).body.current.release, 1);
    const text = sigil(['status']);
    assert.equal(text.status, 0);
    assert.match(text.stdout, /^current {3}release 1 \(1-[0-9a-f]{12}\) — db 1\.0 \[container\], web 1\.0 \[container\]$/m);
    assert.match(text.stdout, /^state {5}consistent$/m);
  });

  test('usage and refusals through the CLI: exit codes and error codes', () => {
    const older = json(['apply', '--reference', 'missing']);
    assert.equal(older.status, 1);
    assert.equal(older.body.error.code, 'manifest.not_found');
    const unconfigured = spawnSync('sh', [SIGIL, 'update', 'status', '--state', join(dir, 'nowhere'), '--json'], { encoding: 'utf8' });
    assert.equal(unconfigured.status, 1);
    assert.equal(JSON.parse(unconfigured.stdout).error.code, 'update.not_configured');
    assert.equal(json(['check']).body.status, 'up-to-date');
  });
});
