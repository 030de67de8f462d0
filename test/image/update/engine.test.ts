/**
 * The update engine against a real registry and real verity layers: first install, a container
 * update (restart), a kernel update (reboot), the hook and its decision, rollback, commit, and
 * every refusal — another product, older release, expired, wrong signer, a layer tampered in
 * transit, a layer that does not match its verity root — leaving the device exactly as it was.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isSigilError } from '../../../src/core/errors.ts';
import { VERITY_ROOT_HASH_ANNOTATION } from '../../../src/image/layers/media-types.ts';
import { fileReleaseFloor, initFileReleaseFloor, type ReleaseFloor } from '../../../src/image/manifest/floor.ts';
import { digestBytes } from '../../../src/image/oci/digest.ts';
import { encodeJson, MEDIA_TYPES, parseManifest } from '../../../src/image/oci/manifest.ts';
import { readReleaseFloor } from '../../../src/device/release-floor.ts';
import { initUpdate, openConfiguredEngine } from '../../../src/image/update/config.ts';
import { UpdateEngine } from '../../../src/image/update/engine.ts';
import { Tpm } from '../../../src/tpm/tpm.ts';
import { provision, startMachine } from '../../device/support.ts';
import { hasTool, startRegistry, tempDir, type RunningRegistry } from '../support.ts';
import {
  buildTarget,
  DAY,
  deviceCertificate,
  writeDeviceFiles,
  makeVendor,
  manifestOf,
  OTHER_PRODUCT,
  PRODUCT,
  publish,
  pushTarget,
  registryClient,
  rogueSigner,
  signed,
  target,
  type BuiltTarget,
  type VendorFixture,
} from '../manifest/fixtures.ts';

const tools = hasTool('docker-registry') && hasTool('mksquashfs') && hasTool('veritysetup');
const REPO = 'acme/gw';
const KERNEL_REPO = 'acme/kernel';

function refusedWith(code: string, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(isSigilError(error, code), `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe('update engine', { skip: tools ? false : 'needs docker-registry, squashfs-tools and cryptsetup-bin' }, () => {
  let vendor: VendorFixture;
  let registry: RunningRegistry;
  let dir = '';
  let stateDir = '';
  let floor: ReleaseFloor;
  const built: Record<string, BuiltTarget> = {};

  interface OpenOptions {
    now?: Date;
    fetcher?: typeof fetch;
    productId?: string;
    hook?: string;
  }
  async function withEngine<T>(reference: string, use: (engine: UpdateEngine) => Promise<T>, options: OpenOptions = {}): Promise<T> {
    const engine = await UpdateEngine.open({
      stateDir,
      trust: vendor.trust,
      productId: options.productId ?? PRODUCT,
      floor,
      source: { client: (repository) => registryClient(registry.host, repository ?? REPO, options.fetcher), reference, location: `${registry.host}/${REPO}` },
      hook: options.hook ?? `cat > ${join(dir, 'hook.json')}; echo "$SIGIL_UPDATE_ACTION $SIGIL_UPDATE_DECISION" > ${join(dir, 'hook.env')}`,
      ...(options.now ? { now: () => options.now! } : {}),
    });
    try {
      return await use(engine);
    } finally {
      engine.close();
    }
  }
  const status = () => withEngine('unused', (engine) => engine.status());

  before(async () => {
    dir = tempDir('update-engine');
    stateDir = join(dir, 'state');
    vendor = await makeVendor();
    registry = await startRegistry();
    for (const [name, seed, size] of [
      ['web', 'v1', 300_000],
      ['web', 'v2', 300_000],
      ['web', 'v3', 300_000],
      ['kernel', 'v1', 80_000],
      ['kernel', 'v2', 80_000],
    ] as const) {
      built[`${name}-${seed}`] = await buildTarget(dir, name, seed, size);
      await pushTarget(registry.host, name === 'kernel' ? KERNEL_REPO : REPO, built[`${name}-${seed}`]);
    }
    const release = async (n: number, web: string, kernel: string) =>
      publish(registry.host, REPO, `r${n}`, await signed(vendor, manifestOf(n, [target(built[web], 'container', web), target(built[kernel], 'uki', kernel, KERNEL_REPO)])));
    await release(1, 'web-v1', 'kernel-v1');
    await release(2, 'web-v2', 'kernel-v1');
    await release(3, 'web-v2', 'kernel-v2');
    await release(4, 'web-v3', 'kernel-v2');
    floor = initFileReleaseFloor(join(dir, 'floor.json'), 1);
  });
  after(async () => {
    await registry?.stop();
    await vendor?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('install, container update (restart), kernel update (reboot), hook, rollback, commit', async () => {
    const first = await withEngine('r1', (engine) => engine.apply());
    assert.equal(first.status, 'switched');
    assert.equal(first.current?.release, 1);
    assert.equal(first.decision?.action, 'reboot', 'a first install brings a kernel: reboot');
    assert.deepEqual(first.decision?.reboot, ['kernel']);
    assert.deepEqual(first.decision?.restart, ['web']);
    assert.equal(first.floor, 1);
    assert.equal(readlinkSync(join(stateDir, 'current')), `releases/${first.current!.id}`);
    assert.ok(existsSync(join(stateDir, 'current', 'layout', 'index.json')));
    assert.equal(readFileSync(join(stateDir, 'current', 'manifest.json')).length > 0, true);

    const checked = await withEngine('r2', (engine) => engine.check());
    assert.equal(checked.status, 'available');
    assert.equal(checked.decision?.action, 'restart');
    assert.equal(readlinkSync(join(stateDir, 'current')), `releases/${first.current!.id}`, 'check downloads and switches nothing');

    const second = await withEngine('r2', (engine) => engine.apply());
    assert.equal(second.decision?.action, 'restart');
    assert.deepEqual(second.decision?.restart, ['web']);
    assert.deepEqual(second.decision?.reboot, []);
    assert.deepEqual(second.decision?.changes.map((c) => [c.name, c.from?.version, c.to?.version]), [['web', 'web-v1', 'web-v2']]);
    assert.equal(second.floor, 1, 'the floor stays at the previous release, so a rollback remains possible');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'hook.json'), 'utf8')), second.decision, 'the hook got the decision on stdin');
    assert.equal(readFileSync(join(dir, 'hook.env'), 'utf8'), `restart ${join(stateDir, 'decision.json')}\n`);
    assert.deepEqual(JSON.parse(readFileSync(join(stateDir, 'decision.json'), 'utf8')), second.decision);
    assert.equal((await withEngine('r2', (engine) => engine.check())).status, 'up-to-date');
    assert.equal((await withEngine('r2', (engine) => engine.apply())).status, 'up-to-date');

    const third = await withEngine('r3', (engine) => engine.apply());
    assert.equal(third.decision?.action, 'reboot');
    assert.deepEqual(third.decision?.reboot, ['kernel']);
    assert.equal(third.floor, 2);
    assert.equal(await floor.read(), 2);
    assert.deepEqual(readdirSync(join(stateDir, 'releases')).sort(), [second.current!.id, third.current!.id].sort(), 'release 1 was dropped');
    let s = await status();
    assert.equal(s.consistent, true, s.problems.join('; '));
    assert.deepEqual([s.current?.release, s.previous?.release], [3, 2]);

    const back = await withEngine('r3', (engine) => engine.rollback());
    assert.equal(back.current?.release, 2);
    assert.equal(back.decision?.operation, 'rollback');
    assert.equal(back.decision?.action, 'reboot', 'rolling the kernel back needs a reboot too');
    s = await status();
    assert.deepEqual([s.current?.release, s.previous, s.consistent], [2, null, true]);
    assert.equal(s.releases.find((r) => r.release === 3)?.state, 'rolled-back');
    await assert.rejects(withEngine('r3', (engine) => engine.rollback()), refusedWith('update.no_previous'));

    const again = await withEngine('r3', (engine) => engine.apply());
    assert.equal(again.current?.release, 3, 'a rolled-back release can be applied again');
    const committed = await withEngine('r3', (engine) => engine.commit());
    assert.equal(committed.floor, 3);
    assert.equal(committed.retired, second.current!.id);
    await assert.rejects(withEngine('r2', (engine) => engine.apply()), refusedWith('manifest.rolled_back'));
    s = await status();
    assert.deepEqual([s.current?.release, s.previous, s.floor.value, s.consistent], [3, null, 3, true]);
  });

  test('refused — another product, older release, expired, wrong signer, tampered layer — and nothing switched', async () => {
    const before_ = await status();
    assert.equal(before_.current?.release, 3);
    const web = built['web-v3'];
    const kernel = built['kernel-v2'];
    const targets = [target(web, 'container', 'web-v3'), target(kernel, 'uki', 'kernel-v2', KERNEL_REPO)];
    await publish(registry.host, REPO, 'other', await signed(vendor, manifestOf(9, targets, { productId: OTHER_PRODUCT })));
    await publish(registry.host, REPO, 'rogue', await signed(vendor, manifestOf(9, targets), await rogueSigner()));

    // An image whose digest-pinned manifest names another verity root for its layer.
    const image = parseManifest(await web.layout.readBlob(web.digest));
    const lying = encodeJson({ ...image, layers: [{ ...image.layers[0], annotations: { [VERITY_ROOT_HASH_ANNOTATION]: 'cd'.repeat(32) } }] });
    await registryClient(registry.host, REPO).pushManifest(digestBytes(lying), lying, MEDIA_TYPES.manifest);
    await publish(
      registry.host,
      REPO,
      'lying',
      await signed(vendor, manifestOf(9, [{ ...targets[0], digest: digestBytes(lying), size: lying.length }, targets[1]])),
    );

    // A registry (or a path to it) that flips one byte of the new layer.
    const layerDigest = image.layers[0].digest;
    const tampering: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).includes(`/blobs/${layerDigest}`) || (init?.method ?? 'GET') !== 'GET') return response;
      const bytes = new Uint8Array(await response.arrayBuffer());
      bytes[5000] ^= 1;
      return new Response(bytes, { status: response.status, headers: response.headers });
    };

    const cases: [string, string, RegExp, OpenOptions][] = [
      ['other', 'manifest.product_mismatch', /for product acme-cam, but this device is product acme-gw/, {}],
      ['r2', 'manifest.rolled_back', /release 2, older than this device's lowest accepted release 3/, {}],
      ['r4', 'manifest.expired', /expired at/, { now: new Date(Date.now() + 60 * DAY) }],
      ['rogue', 'manifest.signer_untrusted', /does not chain/, {}],
      ['r4', 'oci.digest_mismatch', /does not match/, { fetcher: tampering }],
      ['lying', 'manifest.layer_verity_mismatch', /does not match its verity root hash/, {}],
    ];
    for (const [reference, code, message, options] of cases) {
      await assert.rejects(withEngine(reference, (engine) => engine.apply(), options), refusedWith(code, message));
      const after_ = await status();
      assert.equal(after_.consistent, true, `${code}: ${after_.problems.join('; ')}`);
      assert.equal(after_.current?.id, before_.current?.id, `${code}: still on release 3`);
      assert.equal(readlinkSync(join(stateDir, 'current')), `releases/${before_.current!.id}`);
      assert.equal(await floor.read(), 3, `${code}: the floor did not move`);
    }
    const failed = (await withEngine('unused', async (engine) => engine.db.operations(3))).map((op) => [op.phase, op.error?.split(':')[0]]);
    assert.deepEqual(failed[0], ['failed', 'manifest.layer_verity_mismatch']);
    assert.deepEqual(failed[1], ['failed', 'oci.digest_mismatch']);
    // The release that failed verification was removed from staging; the one whose download
    // failed is kept, so the next apply resumes from the blobs that did check out.
    const r4 = await withEngine('r4', (engine) => engine.check());
    assert.deepEqual(readdirSync(join(stateDir, 'staging')), [r4.candidate.documentDigest.replace(':', '-')]);
    // The device was never told it is another product: a device of acme-cam refuses acme-gw's release.
    await assert.rejects(withEngine('r4', (engine) => engine.check(), { productId: OTHER_PRODUCT }), refusedWith('manifest.product_mismatch'));

    const fine = await withEngine('r4', (engine) => engine.apply());
    assert.equal(fine.current?.release, 4, 'after all that, a good release still applies');
    assert.deepEqual(fine.decision?.restart, ['web']);
    assert.equal(fine.decision?.action, 'restart');
    assert.equal(await fileReleaseFloor(join(dir, 'floor.json')).read(), 3);

    // A failing hook does not undo the switch; the journal records it.
    const rolled = await withEngine('r4', (engine) => engine.rollback(), { hook: 'echo "cannot restart $SIGIL_UPDATE_ACTION" >&2; exit 3' });
    assert.deepEqual([rolled.current?.release, rolled.hook?.exitCode, rolled.hook?.output], [3, 3, 'cannot restart restart\n']);
    const last = await withEngine('unused', async (engine) => engine.db.lastOperation());
    assert.deepEqual([last?.kind, last?.phase, last?.error], ['rollback', 'done', 'update.hook_failed: the hook exited with 3']);
  });

  test('on a provisioned TPM: identity from NV, the floor is the TPM counter (configured through the settings)', { skip: hasTool('swtpm') ? false : 'needs swtpm' }, async () => {
    const machine = await startMachine();
    try {
      await provision(machine, vendor, 'SN-UPDATE-TPM');
      // swtpm serves one client at a time: the engine opens its own connection.
      await machine.tpm.close();
      const tpmState = join(dir, 'tpm-state');
      const files = writeDeviceFiles(join(dir, 'tpm-device'), vendor, await deviceCertificate(vendor, 'SN-UNUSED'));
      const init = await initUpdate({ stateDir: tpmState, registry: registry.host, repository: REPO, plainHttp: true, trust: files.trust, tpm: machine.swtpm.uri });
      assert.deepEqual([init.productId, init.serial, init.floor], [PRODUCT, 'SN-UPDATE-TPM', 1]);
      assert.equal(existsSync(join(tpmState, 'floor.json')), false, 'no floor file next to a TPM');
      const run = async <T>(reference: string, use: (engine: UpdateEngine) => Promise<T>) => {
        const opened = await openConfiguredEngine(tpmState, { reference });
        try {
          assert.equal(opened.device.floor.kind, 'tpm');
          return await use(opened.engine);
        } finally {
          await opened.close();
        }
      };
      for (const reference of ['r1', 'r3']) assert.equal((await run(reference, (engine) => engine.apply())).status, 'switched');
      assert.equal((await run('r3', (engine) => engine.status())).floor.value, 1, 'the floor is the previous release (1)');
      assert.equal((await run('r3', (engine) => engine.commit())).floor, 3);
      await assert.rejects(run('r2', (engine) => engine.apply()), refusedWith('manifest.rolled_back'));
      const tpm = Tpm.open(machine.swtpm.uri);
      try {
        assert.equal(await readReleaseFloor(tpm), 3, 'the TPM counter itself moved');
      } finally {
        await tpm.close();
      }
    } finally {
      await machine.stop().catch(() => undefined);
    }
  });
});
