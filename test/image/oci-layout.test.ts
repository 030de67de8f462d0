/**
 * The OCI image layout on disk: the files the spec names, tags in index.json, and blobs whose
 * bytes are checked on every read.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import { digestBytes } from '../../src/image/oci/digest.ts';
import { OciLayout, REF_NAME_ANNOTATION } from '../../src/image/oci/layout.ts';
import { encodeJson, MEDIA_TYPES } from '../../src/image/oci/manifest.ts';
import { tempDir } from './support.ts';

let dir = '';
before(() => {
  dir = tempDir('oci-layout');
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('init writes oci-layout and an empty index; open refuses other folders', async () => {
  const layout = await OciLayout.init(join(dir, 'a'));
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'a/oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  assert.deepEqual(await layout.index(), { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] });
  await OciLayout.init(join(dir, 'a')); // idempotent
  await assert.rejects(OciLayout.open(dir), (e) => isSigilError(e, 'oci.layout_missing'));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"9"}');
  await assert.rejects(OciLayout.open(dir), (e) => isSigilError(e, 'oci.layout_invalid'));
  rmSync(join(dir, 'oci-layout'));
});

test('blobs are content-addressed and checked on read; tags point at manifests', async () => {
  const layout = await OciLayout.init(join(dir, 'b'));
  const bytes = new TextEncoder().encode('layer');
  const blob = await layout.putBlob(bytes, 'application/octet-stream');
  assert.equal(blob.digest, digestBytes(bytes));
  assert.equal(layout.blobPath(blob.digest), join(dir, 'b/blobs/sha256', blob.digest.slice(7)));
  assert.deepEqual(await layout.readBlob(blob.digest, 5), bytes);
  const config = await layout.putBlob(encodeJson({}), MEDIA_TYPES.config);
  const manifest = await layout.putBlob(encodeJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config, layers: [blob] }), MEDIA_TYPES.manifest);
  await layout.tag('v1', manifest);
  await layout.tag('v2', manifest);
  await layout.tag('v1', { ...manifest, annotations: { note: 'retagged' } });
  const index = await layout.index();
  assert.deepEqual(index.manifests.map((d) => d.annotations?.[REF_NAME_ANNOTATION]), ['v2', 'v1']);
  assert.deepEqual(await layout.resolve('v1'), { ...manifest, annotations: { note: 'retagged' } });
  assert.deepEqual(await layout.resolve('v2'), manifest);
  assert.equal((await layout.manifest(manifest)).layers[0].digest, blob.digest);
  await assert.rejects(layout.resolve('v3'), (e) => isSigilError(e, 'oci.ref_missing'));
  await assert.rejects(layout.tag('bad tag', manifest), (e) => isSigilError(e, 'oci.tag_invalid'));

  writeFileSync(layout.blobPath(blob.digest), 'LAYER'); // corrupt the blob on disk
  await assert.rejects(layout.readBlob(blob.digest), (e) => isSigilError(e, 'oci.digest_mismatch'));
  await assert.rejects(layout.verifyBlob(blob), (e) => isSigilError(e, 'oci.digest_mismatch'));
  await assert.rejects(layout.readBlob(digestBytes(new Uint8Array(1))), (e) => isSigilError(e, 'oci.blob_missing'));
  await assert.rejects(layout.readBlob('sha256:../../etc/passwd'), (e) => isSigilError(e, 'oci.digest_invalid'));
});

test('putBlobFile refuses a file that does not match the expected digest', async () => {
  const layout = await OciLayout.init(join(dir, 'c'));
  const file = join(dir, 'c-file');
  writeFileSync(file, 'content');
  await assert.rejects(layout.putBlobFile(file, 'application/octet-stream', { expected: digestBytes(new Uint8Array(1)) }), (e) => isSigilError(e, 'oci.digest_mismatch'));
  const d = await layout.putBlobFile(file, 'application/octet-stream', { move: true, expected: digestBytes(new TextEncoder().encode('content')) });
  assert.equal(readFileSync(layout.blobPath(d.digest), 'utf8'), 'content');
  assert.throws(() => readFileSync(file), 'moved');
});
