/**
 * Mutation fuzzing of the image chain's parsers of untrusted input: the verity superblock, the
 * squashfs superblock, OCI manifests / indexes / descriptors (byte-level and JSON-structural
 * mutations) and image references. Each must return a value or throw SigilError — nothing else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import { parseSquashfsSuperblock } from '../../src/image/layers/squashfs.ts';
import { documentKind, encodeJson, MEDIA_TYPES, parseDescriptor, parseIndex, parseManifest } from '../../src/image/oci/manifest.ts';
import { parseReference } from '../../src/image/oci/reference.ts';
import { encodeSuperblock, parseSuperblock } from '../../src/image/verity/superblock.ts';
import { mutate, prng } from '../support/fuzz.ts';

const ROUNDS = Number(process.env.SIGIL_FUZZ_ROUNDS ?? 100_000);

function onlySigilErrors(name: string, seeds: Uint8Array[], parse: (bytes: Uint8Array) => unknown, rounds = ROUNDS, seed = 0x5eed): { accepted: number; refused: number } {
  const random = prng(seed);
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < rounds; i++) {
    const input = mutate(seeds[i % seeds.length], random);
    try {
      parse(input);
      accepted++;
    } catch (error) {
      if (!isSigilError(error)) assert.fail(`${name}: round ${i} threw ${String(error)} for ${Buffer.from(input).toString('hex').slice(0, 400)}`);
      refused++;
    }
  }
  return { accepted, refused };
}

const superblock = encodeSuperblock({ hashType: 1, uuid: '0b5e1f0c-7d7e-4c1a-9d8b-3f2a1e0c9b8a', hash: 'sha256', dataBlockSize: 4096, hashBlockSize: 4096, dataBlocks: 262144, salt: new Uint8Array(32).fill(7) });

test(`verity superblock: ${ROUNDS} mutations → a value or SigilError`, () => {
  const parsed = parseSuperblock(superblock);
  assert.equal(parsed.dataBlocks, 262144);
  assert.equal(parsed.uuid, '0b5e1f0c-7d7e-4c1a-9d8b-3f2a1e0c9b8a');
  const sha512 = encodeSuperblock({ ...parsed, hash: 'sha512', salt: new Uint8Array(0), dataBlocks: 1 });
  const { accepted, refused } = onlySigilErrors('superblock', [superblock, sha512], parseSuperblock);
  assert.ok(accepted > 1000 && refused > 1000, `both outcomes exercised (${accepted} accepted, ${refused} refused)`);
});

test(`squashfs superblock: ${ROUNDS} mutations → a value or SigilError`, () => {
  const sb = new Uint8Array(96);
  const view = new DataView(sb.buffer);
  view.setUint32(0, 0x73717368, true);
  view.setUint32(12, 131072, true);
  view.setUint16(20, 6, true);
  view.setUint16(28, 4, true);
  view.setBigUint64(40, 123456n, true);
  assert.equal(parseSquashfsSuperblock(sb).bytesUsed, 123456);
  onlySigilErrors('squashfs', [sb], parseSquashfsSuperblock);
});

const layer = { mediaType: 'application/vnd.stacker.image.layer.squashfs+zstd+verity', digest: `sha256:${'ab'.repeat(32)}`, size: 8192, annotations: { 'io.stackeroci.stacker.atomfs_verity_root_hash': 'cd'.repeat(32) } };
const manifest = encodeJson({
  schemaVersion: 2,
  mediaType: MEDIA_TYPES.manifest,
  artifactType: 'application/vnd.sigil.signature.v1+cose',
  config: { mediaType: MEDIA_TYPES.empty, digest: `sha256:${'44'.repeat(32)}`, size: 2, data: 'e30=' },
  layers: [layer, { ...layer, urls: ['https://example.com/x'], platform: { architecture: 'amd64', os: 'linux', variant: 'v3' } }],
  subject: { mediaType: MEDIA_TYPES.manifest, digest: `sha512:${'ef'.repeat(64)}`, size: 1234 },
  annotations: { 'org.opencontainers.image.created': '1970-01-01T00:00:00Z' },
});
const index = encodeJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [{ mediaType: MEDIA_TYPES.manifest, digest: `sha256:${'12'.repeat(32)}`, size: 700, artifactType: 'application/x-test' }] });

/** Replace one random JSON value somewhere in the document with a value of another type. */
function mutateJson(bytes: Uint8Array, random: () => number): Uint8Array {
  const doc = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
  const replacements: unknown[] = [null, 0, -1, 1.5, 2 ** 60, '', 'x', 'sha256:zz', [], {}, true, [{}], { size: -3 }, '\u0000', 'a/b'];
  const paths: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (value: unknown) => {
    if (Array.isArray(value)) value.forEach((v, i) => (paths.push({ parent: value, key: i }), walk(v)));
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) (paths.push({ parent: value as Record<string, unknown>, key: k }), walk(v));
  };
  walk(doc);
  const rounds = 1 + Math.floor(random() * 3);
  for (let r = 0; r < rounds && paths.length; r++) {
    const { parent, key } = paths[Math.floor(random() * paths.length)];
    const choice = random();
    if (choice < 0.15 && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[key as string];
    else (parent as Record<string | number, unknown>)[key] = replacements[Math.floor(random() * replacements.length)];
  }
  return encodeJson(doc);
}

const OCI_ROUNDS = Math.ceil(ROUNDS * 0.6);

test(`OCI manifest, index and descriptor parsing: ${OCI_ROUNDS} byte mutations and ${OCI_ROUNDS} structural ones`, () => {
  assert.equal(parseManifest(manifest).layers.length, 2);
  assert.equal(parseIndex(index).manifests[0].artifactType, 'application/x-test');
  const parsers = [parseManifest, parseIndex, documentKind];
  let turn = 0;
  onlySigilErrors('oci bytes', [manifest, index], (bytes) => parsers[turn++ % 3](bytes), OCI_ROUNDS, 11);
  const random = prng(12);
  let refused = 0;
  for (let i = 0; i < OCI_ROUNDS; i++) {
    const input = mutateJson(i % 2 ? manifest : index, random);
    try {
      if (i % 2) parseManifest(input);
      else parseIndex(input);
    } catch (error) {
      if (!isSigilError(error)) assert.fail(`structural round ${i} threw ${String(error)} for ${new TextDecoder().decode(input)}`);
      refused++;
    }
  }
  assert.ok(refused > OCI_ROUNDS / 4, `structural mutations were mostly refused (${refused})`);
  for (const bad of [null, 1, 'x', [], { mediaType: 'a/b', digest: 'sha256:00', size: 1 }, { mediaType: 'a/b', digest: `sha256:${'0'.repeat(64)}`, size: -1 }]) {
    assert.throws(() => parseDescriptor(bad), (e) => isSigilError(e, 'oci.manifest_invalid'));
  }
});

test('image references: valid forms parse, mutated ones give a value or SigilError', () => {
  assert.deepEqual(parseReference('127.0.0.1:5000/sigil/app:1.0'), { registry: '127.0.0.1:5000', repository: 'sigil/app', tag: '1.0' });
  assert.deepEqual(parseReference(`reg.example/a/b@sha256:${'a'.repeat(64)}`), { registry: 'reg.example', repository: 'a/b', digest: `sha256:${'a'.repeat(64)}` });
  for (const bad of ['app:1', 'reg/UPPER', 'reg/a:', 'reg/a@sha256:12', '/a', 'reg/a:b:c d']) assert.throws(() => parseReference(bad), (e) => isSigilError(e, 'oci.reference_invalid'), bad);
  const seeds = ['127.0.0.1:5000/sigil/app:1.0', `reg.example/a/b:t@sha256:${'a'.repeat(64)}`].map((s) => new TextEncoder().encode(s));
  onlySigilErrors('reference', seeds, (bytes) => parseReference(new TextDecoder().decode(bytes)), 20_000, 13);
});
