/**
 * A misbehaving registry (node:http on loopback): wrong blob bytes, extra bytes, manifests that
 * do not match their digest, and a bearer-token challenge. Each is caught with a typed error,
 * and nothing unverified lands in the layout.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isSigilError } from '../../src/core/errors.ts';
import { digestBytes } from '../../src/image/oci/digest.ts';
import { OciLayout } from '../../src/image/oci/layout.ts';
import { encodeJson, MEDIA_TYPES } from '../../src/image/oci/manifest.ts';
import { RegistryClient } from '../../src/image/oci/registry.ts';
import { pullImage } from '../../src/image/oci/transfer.ts';
import { tempDir } from './support.ts';

const good = new TextEncoder().encode('the real layer bytes');
const evil = new TextEncoder().encode('the evil layer bytes');
const goodDescriptor = { mediaType: 'application/octet-stream', digest: digestBytes(good), size: good.length };
const config = encodeJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
const configDescriptor = { mediaType: MEDIA_TYPES.config, digest: digestBytes(config), size: config.length };
const manifest = encodeJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: configDescriptor, layers: [goodDescriptor] });
const manifestDigest = digestBytes(manifest);
const TOKEN = 'token-123';

let server: Server;
let host = '';
let dir = '';
const uploads: string[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname;
  if (path.startsWith('/v2/secure/')) {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="fake",scope="repository:secure:pull"` }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name: 'secure', tags: ['a'] }));
    return;
  }
  if (path === '/token') {
    const ok = url.searchParams.get('service') === 'fake' && url.searchParams.get('scope') === 'repository:secure:pull';
    res.writeHead(ok ? 200 : 400, { 'content-type': 'application/json' }).end(JSON.stringify(ok ? { token: TOKEN } : {}));
    return;
  }
  if (path === `/v2/wrong/blobs/${goodDescriptor.digest}`) {
    res.writeHead(200, { 'content-length': String(evil.length) }).end(evil); // same length, other bytes
    return;
  }
  if (path === `/v2/long/blobs/${goodDescriptor.digest}`) {
    res.writeHead(200).end(Buffer.concat([good, Buffer.from('and more')]));
    return;
  }
  if (path.endsWith(`/blobs/${configDescriptor.digest}`)) {
    res.writeHead(200).end(config);
    return;
  }
  if (path === `/v2/wrong/manifests/v1` || path === `/v2/wrong/manifests/${manifestDigest}`) {
    res.writeHead(200, { 'content-type': MEDIA_TYPES.manifest, 'docker-content-digest': manifestDigest }).end(manifest);
    return;
  }
  if (path === '/v2/lying/manifests/v1') {
    res.writeHead(200, { 'content-type': MEDIA_TYPES.manifest, 'docker-content-digest': digestBytes(good) }).end(manifest);
    return;
  }
  if (path === `/v2/lying/manifests/${manifestDigest}`) {
    res.writeHead(200, { 'content-type': MEDIA_TYPES.manifest }).end(encodeJson({ schemaVersion: 2, tampered: true }));
    return;
  }
  if (path === '/v2/upload/blobs/uploads/' && req.method === 'POST') {
    res.writeHead(202, { location: '/v2/upload/blobs/uploads/abc?_state=xyz' }).end();
    return;
  }
  if (path === '/v2/upload/blobs/uploads/abc' && req.method === 'PUT') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      uploads.push(`${url.searchParams.get('_state')} ${url.searchParams.get('digest')} ${Buffer.concat(chunks).toString()}`);
      res.writeHead(201).end();
    });
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'nothing here' }] }));
}

before(async () => {
  dir = tempDir('fake-registry');
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

const client = (repository: string) => new RegistryClient({ registry: host, repository, plainHttp: true });

test('a registry serving a wrong blob is detected, and nothing lands in the layout', async () => {
  await assert.rejects(client('wrong').pullBlob(goodDescriptor), (e) => isSigilError(e, 'oci.digest_mismatch') && e.details.expected === goodDescriptor.digest);
  const target = join(dir, 'blob.out');
  await assert.rejects(client('wrong').pullBlobToFile(goodDescriptor, target), (e) => isSigilError(e, 'oci.digest_mismatch'));
  assert.deepEqual(readdirSync(dir), [], 'no partial file left behind');
  const layout = await OciLayout.init(join(dir, 'layout'));
  await assert.rejects(pullImage(client('wrong'), 'v1', layout, 'v1'), (e) => isSigilError(e, 'oci.digest_mismatch'));
  assert.equal(await layout.hasBlob(goodDescriptor.digest), false);
  await assert.rejects(layout.resolve('v1'), (e) => isSigilError(e, 'oci.ref_missing'), 'the image was not tagged');
  rmSync(join(dir, 'layout'), { recursive: true });
});

test('a blob longer than its descriptor is cut off and refused', async () => {
  await assert.rejects(client('long').pullBlob(goodDescriptor), (e) => isSigilError(e, 'oci.digest_mismatch') && /longer/.test(e.message));
});

test('manifests: a tag whose bytes differ from the registry digest header, or a digest whose bytes differ, are refused', async () => {
  await assert.rejects(client('lying').getManifest('v1'), (e) => isSigilError(e, 'oci.digest_mismatch'));
  await assert.rejects(client('lying').getManifest(manifestDigest), (e) => isSigilError(e, 'oci.digest_mismatch'));
  const fetched = await client('wrong').getManifest('v1');
  assert.equal(fetched?.digest, manifestDigest);
});

test('upload: Location with its own query keeps it and adds the digest', async () => {
  await client('upload').pushBlob(goodDescriptor, good);
  assert.deepEqual(uploads, [`xyz ${goodDescriptor.digest} the real layer bytes`]);
});

test('bearer token challenge: token fetched from the realm with service and scope, request retried', async () => {
  assert.deepEqual(await client('secure').listTags(), ['a']);
});

test('registry errors carry the status and the registry message', async () => {
  await assert.rejects(client('nothing').listTags().then(() => client('nothing').pullBlob(goodDescriptor)), (e) => isSigilError(e, 'oci.not_found') && /NOT_FOUND nothing here/.test(e.message));
  const unreachable = new RegistryClient({ registry: '127.0.0.1:1', repository: 'x', plainHttp: true });
  await assert.rejects(unreachable.hasBlob(goodDescriptor.digest), (e) => isSigilError(e, 'oci.registry_unreachable'));
});
