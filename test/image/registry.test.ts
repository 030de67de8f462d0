/**
 * Push and pull against a real registry (Debian docker-registry 2.8, started here on loopback
 * with a private config and always stopped): a verity image round trip, blob and manifest
 * checks, and OCI 1.1 referrers through the tag-schema fallback (that version has no referrers API).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import { buildImage } from '../../src/image/layers/image-builder.ts';
import { extractLayer } from '../../src/image/layers/extract.ts';
import { VERITY_ROOT_HASH_ANNOTATION } from '../../src/image/layers/layer.ts';
import { digestBytes } from '../../src/image/oci/digest.ts';
import { OciLayout } from '../../src/image/oci/layout.ts';
import { EMPTY_DESCRIPTOR, EMPTY_JSON, encodeJson, MEDIA_TYPES, parseManifest } from '../../src/image/oci/manifest.ts';
import { fallbackTag, RegistryClient } from '../../src/image/oci/registry.ts';
import { pullImage, pushImage } from '../../src/image/oci/transfer.ts';
import { hasTool, seededBytes, startRegistry, tempDir, type RunningRegistry } from './support.ts';

const tools = hasTool('docker-registry') && hasTool('mksquashfs') && hasTool('unsquashfs');
const SIGNATURE_TYPE = 'application/vnd.sigil.signature.v1+cose';

describe('registry round trip (docker-registry on loopback)', { skip: tools ? false : 'needs docker-registry and squashfs-tools' }, () => {
  let registry: RunningRegistry;
  let dir = '';

  before(async () => {
    dir = tempDir('registry-test');
    registry = await startRegistry();
  });
  after(async () => {
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (repository = 'sigil/app') => new RegistryClient({ registry: registry.host, repository, plainHttp: true });

  test('push a verity image, pull it into another layout: same digests, every layer extracts', async () => {
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'opt'), { recursive: true });
    writeFileSync(join(tree, 'opt/app.bin'), seededBytes('app', 2_500_000));
    writeFileSync(join(tree, 'opt/config'), 'mode=prod\n');
    const source = await OciLayout.init(join(dir, 'source'));
    const built = await buildImage(source, [tree], 'v1', { annotations: { 'org.opencontainers.image.version': '1.0.0' } });
    let progressed = 0;
    const pushed = await pushImage(source, 'v1', client(), '1.0.0', (done) => {
      progressed = done;
    });
    assert.equal(pushed.digest, built.descriptor.digest);
    assert.equal(progressed, built.manifest.layers[0].size + built.manifest.config.size);
    assert.deepEqual(await client().listTags(), ['1.0.0']);

    const target = await OciLayout.init(join(dir, 'target'));
    const pulled = await pullImage(client(), '1.0.0', target, 'v1');
    assert.equal(pulled.digest, built.descriptor.digest);
    const manifest = await target.manifest(await target.resolve('v1'));
    assert.deepEqual(manifest, built.manifest);
    const layer = manifest.layers[0];
    await target.verifyBlob(layer);
    const out = join(dir, 'out');
    await extractLayer(target.blobPath(layer.digest), layer.annotations?.[VERITY_ROOT_HASH_ANNOTATION] ?? '', out);
    assert.ok(Buffer.compare(readFileSync(join(out, 'opt/app.bin')), readFileSync(join(tree, 'opt/app.bin'))) === 0);

    // pull by digest into a third layout
    const third = await OciLayout.init(join(dir, 'third'));
    assert.equal((await pullImage(client(), built.descriptor.digest, third, 'pinned')).digest, built.descriptor.digest);
  });

  test('blobs: upload once, HEAD, digest-checked GET; a wrong digest on upload is refused by the registry', async () => {
    const c = client('sigil/blobs');
    const bytes = seededBytes('blob', 100_000);
    const descriptor = { mediaType: 'application/octet-stream', digest: digestBytes(bytes), size: bytes.length };
    assert.equal(await c.hasBlob(descriptor.digest), false);
    await c.pushBlob(descriptor, bytes);
    assert.equal(await c.hasBlob(descriptor.digest), true);
    assert.ok(Buffer.compare(Buffer.from(await c.pullBlob(descriptor)), bytes) === 0);
    await assert.rejects(c.pullBlob({ ...descriptor, size: descriptor.size - 1 }), (e) => isSigilError(e, 'oci.digest_mismatch'));
    const lying = { ...descriptor, digest: digestBytes(seededBytes('other', 10)) };
    await assert.rejects(c.pushBlob(lying, bytes), (e) => isSigilError(e, 'oci.registry_error') && e.details.status === 400);
    await assert.rejects(c.pullBlob(lying), (e) => isSigilError(e, 'oci.not_found'));
    assert.equal(await c.getManifest('missing'), undefined);
  });

  test('referrers: two signatures attach to an image through the fallback tag; artifactType filters', async () => {
    const c = client();
    const subject = await c.getManifest('1.0.0');
    assert.ok(subject);
    const subjectDescriptor = { mediaType: MEDIA_TYPES.manifest, digest: subject.digest, size: subject.bytes.length };
    assert.deepEqual(await c.referrers(subject.digest), []);
    await c.pushBlob({ ...EMPTY_DESCRIPTOR }, EMPTY_JSON);
    const signatures = [];
    for (const [i, type] of [SIGNATURE_TYPE, SIGNATURE_TYPE, 'application/vnd.sigil.sbom.v1+json'].entries()) {
      const payload = new TextEncoder().encode(`signature ${i}`);
      const payloadDescriptor = { mediaType: 'application/octet-stream', digest: digestBytes(payload), size: payload.length };
      await c.pushBlob(payloadDescriptor, payload);
      const artifact = encodeJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, artifactType: type, config: EMPTY_DESCRIPTOR, layers: [payloadDescriptor], subject: subjectDescriptor, annotations: { 'sigil.index': String(i) } });
      signatures.push(await c.pushReferrer(artifact));
      // pushing the same referrer again does not duplicate it
      await c.pushReferrer(artifact);
    }
    const all = await c.referrers(subject.digest);
    assert.deepEqual(all.map((d) => d.digest), signatures.map((s) => s.digest));
    assert.equal(all[0].artifactType, SIGNATURE_TYPE);
    assert.deepEqual(all[0].annotations, { 'sigil.index': '0' });
    assert.equal((await c.referrers(subject.digest, SIGNATURE_TYPE)).length, 2);
    const fallback = await c.getManifest(fallbackTag(subject.digest));
    assert.equal(fallback?.mediaType, MEDIA_TYPES.index);
    const first = await c.getManifest(signatures[0].digest);
    assert.equal(parseManifest(first?.bytes ?? new Uint8Array()).subject?.digest, subject.digest);
  });
});
