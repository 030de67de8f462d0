/**
 * Signed product manifests: the document format, the detached ES256 JWS by the product key, every
 * refusal with its own code (another product, older release, expired, wrong signer, tampered
 * document, signature or layer), the floor file, the target image checks on real verity layers,
 * publishing as an OCI 1.1 referrer to a real registry, and the floor in a real (sw)TPM.
 */
import assert from 'node:assert/strict';
import { chmodSync, cpSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isSigilError } from '../../../src/core/errors.ts';
import { readDeviceIdentity } from '../../../src/device/device-identity.ts';
import { VERITY_ROOT_HASH_ANNOTATION } from '../../../src/image/layers/media-types.ts';
import { fileReleaseFloor, initFileReleaseFloor, tpmReleaseFloor } from '../../../src/image/manifest/floor.ts';
import { encodeProductManifest, parseProductManifest } from '../../../src/image/manifest/product-manifest.ts';
import { fetchProductManifest, publishProductManifest } from '../../../src/image/manifest/registry.ts';
import { parseManifestSignature, SIGNATURE_ARTIFACT_TYPE } from '../../../src/image/manifest/signature.ts';
import { verifyProductManifest, verifyTargetImages, type ManifestCheck } from '../../../src/image/manifest/verify.ts';
import { OciLayout } from '../../../src/image/oci/layout.ts';
import { encodeJson, parseManifest } from '../../../src/image/oci/manifest.ts';
import { fallbackTag } from '../../../src/image/oci/registry.ts';
import { provision, startMachine, type Machine } from '../../device/support.ts';
import { hasTool, startRegistry, tempDir, type RunningRegistry } from '../support.ts';
import {
  buildTarget,
  DAY,
  makeVendor,
  manifestOf,
  OTHER_PRODUCT,
  PRODUCT,
  pushTarget,
  rawSignature,
  registryClient,
  rogueSigner,
  signed,
  target,
  type BuiltTarget,
  type VendorFixture,
} from './fixtures.ts';

const tools = hasTool('docker-registry') && hasTool('mksquashfs') && hasTool('veritysetup');

function refusedWith(code: string, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(isSigilError(error, code), `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe('signed product manifests', { skip: tools ? false : 'needs docker-registry, squashfs-tools and cryptsetup-bin' }, () => {
  let vendor: VendorFixture;
  let registry: RunningRegistry;
  let dir = '';
  let web: BuiltTarget;
  let kernel: BuiltTarget;
  const check = (overrides: Partial<ManifestCheck> = {}): ManifestCheck => ({ trust: vendor.trust, deviceProductId: PRODUCT, floor: 1, ...overrides });

  before(async () => {
    dir = tempDir('manifest');
    vendor = await makeVendor();
    registry = await startRegistry();
    web = await buildTarget(dir, 'web', 'v1');
    kernel = await buildTarget(dir, 'kernel', 'v1', 50_000);
  });
  after(async () => {
    await registry?.stop();
    await vendor?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the document: fixed field order, strict parsing (unknown fields, duplicates, two kernels refused)', () => {
    const manifest = manifestOf(3, [target(web, 'container', '1.0.0'), target(kernel, 'uki', '6.12.1', 'acme/kernel')]);
    const bytes = encodeProductManifest(manifest);
    assert.match(new TextDecoder().decode(bytes), /^\{"format":"sigil.product-manifest.v1","productId":"acme-gw","release":3,"issuedAt":/);
    assert.deepEqual(parseProductManifest(bytes), manifest);
    const doc = JSON.parse(new TextDecoder().decode(bytes));
    const broken = (change: (d: Record<string, unknown>) => void) => {
      const copy = structuredClone(doc);
      change(copy);
      return new TextEncoder().encode(JSON.stringify(copy));
    };
    for (const [what, change, message] of [
      ['unknown field', (d: Record<string, unknown>) => (d.extra = 1), /unknown field "extra"/],
      ['target field', (d: Record<string, unknown>) => ((d.targets as Record<string, unknown>[])[0].tag = 'x'), /unknown field "tag"/],
      ['duplicate', (d: Record<string, unknown>) => (d.targets as unknown[]).push((d.targets as unknown[])[0]), /listed twice/],
      ['two kernels', (d: Record<string, unknown>) => (d.targets as unknown[]).push({ ...(d.targets as Record<string, unknown>[])[1], name: 'kernel2' }), /more than one target of type uki/],
      ['type', (d: Record<string, unknown>) => ((d.targets as Record<string, unknown>[])[0].type = 'vm'), /type must be one of/],
      ['digest', (d: Record<string, unknown>) => ((d.targets as Record<string, unknown>[])[0].digest = 'sha256:xyz'), /digest/],
      ['release', (d: Record<string, unknown>) => (d.release = 0), /release number/],
      ['dates', (d: Record<string, unknown>) => (d.expires = d.issuedAt), /expires is not after issuedAt/],
      ['time zone', (d: Record<string, unknown>) => (d.expires = '2030-01-01T00:00:00+01:00'), /RFC 3339 UTC/],
      ['no targets', (d: Record<string, unknown>) => (d.targets = []), /1-256 entries/],
      ['format', (d: Record<string, unknown>) => (d.format = 'sigil.release.v1'), /format/],
    ] as const) {
      assert.throws(() => parseProductManifest(broken(change)), refusedWith('manifest.invalid', message), what);
    }
    assert.throws(() => parseProductManifest(new Uint8Array([0xff, 0xfe])), refusedWith('manifest.invalid', /UTF-8 JSON/));
  });

  test('signed by the product key (detached ES256 JWS with x5c): verifies for a device of that product', async () => {
    const manifest = manifestOf(3, [target(web, 'container', '1.0.0')]);
    const { document, signature } = await signed(vendor, manifest);
    const text = new TextDecoder().decode(signature);
    assert.match(text, /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/, 'compact serialization, empty (detached) payload');
    const header = JSON.parse(Buffer.from(text.split('.')[0], 'base64url').toString());
    assert.deepEqual(Object.keys(header).sort(), ['alg', 'cty', 'typ', 'x5c']);
    assert.equal(header.alg, 'ES256');
    const parsed = parseManifestSignature(signature);
    assert.ok(parsed.certificate.equal(vendor.keyset.productCertificate(PRODUCT)));
    const verified = await verifyProductManifest(document, signature, check({ floor: 3 }));
    assert.deepEqual(verified.manifest, manifest);
    assert.match(verified.documentDigest, /^sha256:[0-9a-f]{64}$/);
    // The key of one product cannot sign for another (signProductManifest checks too).
    await assert.rejects(signed(vendor, manifest, OTHER_PRODUCT), refusedWith('manifest.signer_mismatch'));
  });

  test('refused: another product, older release, expired, wrong signer, tampered document or signature', async () => {
    const targets = [target(web, 'container', '1.0.0')];
    const other = await signed(vendor, manifestOf(5, targets, { productId: OTHER_PRODUCT }));
    await assert.rejects(verifyProductManifest(other.document, other.signature, check()), refusedWith('manifest.product_mismatch', /for product acme-cam, but this device is product acme-gw/));

    const good = await signed(vendor, manifestOf(4, targets));
    await assert.rejects(verifyProductManifest(good.document, good.signature, check({ floor: 5 })), refusedWith('manifest.rolled_back', /release 4, older than this device's lowest accepted release 5/));
    assert.equal((await verifyProductManifest(good.document, good.signature, check({ floor: 4 }))).manifest.release, 4, 'release = floor is accepted');

    const stale = await signed(vendor, manifestOf(6, targets, { issuedAt: new Date(Date.now() - 40 * DAY) }));
    await assert.rejects(verifyProductManifest(stale.document, stale.signature, check()), refusedWith('manifest.expired', /expired at/));
    assert.equal((await verifyProductManifest(stale.document, stale.signature, check({ ignoreExpiry: true }))).manifest.release, 6);
    await assert.rejects(verifyProductManifest(good.document, good.signature, check({ now: new Date(Date.now() + 31 * DAY) })), refusedWith('manifest.expired'));

    const rogue = await signed(vendor, manifestOf(7, targets), await rogueSigner());
    await assert.rejects(verifyProductManifest(rogue.document, rogue.signature, check()), refusedWith('manifest.signer_untrusted', /does not chain to the vendor's CA/));

    const crossSigned = await rawSignature(good.document, vendor.keyset.productKey(OTHER_PRODUCT), vendor.keyset.productCertificate(OTHER_PRODUCT));
    await assert.rejects(verifyProductManifest(good.document, crossSigned, check()), refusedWith('manifest.signer_mismatch', /signed with the certificate of product acme-cam/));

    // The policy-signing certificate comes from the root, not the product CA.
    const policyKey = vendor.keyset.privateKey('policy-signing');
    const policySigned = await rawSignature(good.document, policyKey, vendor.keyset.certificate('policy-signing'));
    await assert.rejects(verifyProductManifest(good.document, policySigned, check()), refusedWith('manifest.signer_untrusted'));

    const tamperedDocument = new TextEncoder().encode(new TextDecoder().decode(good.document).replace('"release":4', '"release":9'));
    await assert.rejects(verifyProductManifest(tamperedDocument, good.signature, check()), refusedWith('manifest.signature_invalid'));
    const sigText = new TextDecoder().decode(good.signature);
    const flipped = sigText.slice(0, -2) + (sigText.at(-2) === 'A' ? 'B' : 'A') + sigText.at(-1);
    await assert.rejects(verifyProductManifest(good.document, new TextEncoder().encode(flipped), check()), refusedWith('manifest.signature_invalid'));
    const attached = new TextEncoder().encode(sigText.replace('..', `.${Buffer.from(good.document).toString('base64url')}.`));
    await assert.rejects(verifyProductManifest(good.document, attached, check()), refusedWith('manifest.signature_malformed', /detached/));
    const withJku = await rawSignature(good.document, vendor.keyset.productKey(PRODUCT), vendor.keyset.productCertificate(PRODUCT), { jku: 'https://evil.example/keys' });
    await assert.rejects(verifyProductManifest(good.document, withJku, check()), refusedWith('manifest.signature_malformed', /unsupported field "jku"/));
  });

  test('the floor file: created 0600, only rises, missing or writable by others is refused', async () => {
    const path = join(dir, 'floor.json');
    const floor = initFileReleaseFloor(path, 2);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { format: 'sigil.release-floor.v1', floor: 2 });
    assert.equal(await floor.read(), 2);
    assert.equal(await floor.advance(5), 5);
    assert.equal(await floor.advance(5), 5);
    await assert.rejects(floor.advance(4), refusedWith('manifest.rolled_back'));
    assert.equal(await floor.read(), 5);
    assert.equal(statSync(path).mode & 0o777, 0o600, 'still 0600 after the rename');
    assert.throws(() => initFileReleaseFloor(path, 1), refusedWith('manifest.floor_exists'));
    chmodSync(path, 0o666);
    await assert.rejects(floor.read(), refusedWith('manifest.floor_invalid', /writable by others/));
    chmodSync(path, 0o600);
    writeFileSync(path, '{"format":"sigil.release-floor.v1","floor":-1}');
    await assert.rejects(floor.read(), refusedWith('manifest.floor_invalid'));
    await assert.rejects(fileReleaseFloor(join(dir, 'absent.json')).read(), refusedWith('manifest.floor_missing'));
  });

  test('target images: every image digest, blob digest and verity root checked; each kind of tampering refused', async () => {
    const manifest = manifestOf(1, [target(web, 'container', '1.0.0')]);
    const verified = await verifyTargetImages(manifest, web.layout);
    const image = parseManifest(await web.layout.readBlob(web.digest));
    assert.equal(verified[0].rootHashes[0], image.layers[0].annotations?.[VERITY_ROOT_HASH_ANNOTATION]);

    const copy = async (name: string) => {
      cpSync(web.layout.dir, join(dir, name), { recursive: true });
      return OciLayout.open(join(dir, name));
    };
    const tampered = await copy('tampered');
    const layerPath = tampered.blobPath(image.layers[0].digest);
    const bytes = readFileSync(layerPath);
    bytes[100] ^= 1;
    writeFileSync(layerPath, bytes);
    await assert.rejects(verifyTargetImages(manifest, tampered), refusedWith('manifest.layer_digest_mismatch', /does not match its digest/));

    // An image whose (digest-pinned) manifest names the wrong verity root for its layer.
    const lying = await copy('lying');
    const wrongRoot = { ...image, layers: [{ ...image.layers[0], annotations: { [VERITY_ROOT_HASH_ANNOTATION]: 'ab'.repeat(32) } }] };
    const lyingImage = await lying.putBlob(encodeJson(wrongRoot), image.mediaType);
    const lyingManifest = manifestOf(1, [{ ...target(web, 'container', '1.0.0'), digest: lyingImage.digest, size: lyingImage.size }]);
    await assert.rejects(verifyTargetImages(lyingManifest, lying), refusedWith('manifest.layer_verity_mismatch', /does not match its verity root hash/));

    const plain = { ...image, layers: [{ ...image.layers[0], mediaType: 'application/vnd.oci.image.layer.v1.tar' }] };
    const plainImage = await lying.putBlob(encodeJson(plain), image.mediaType);
    await assert.rejects(verifyTargetImages(manifestOf(1, [{ ...target(web, 'container', '1'), digest: plainImage.digest, size: plainImage.size }]), lying), refusedWith('manifest.layer_not_verity'));

    await assert.rejects(verifyTargetImages(manifestOf(1, [target(kernel, 'uki', '6.12')]), web.layout), refusedWith('manifest.image_missing'));
    await assert.rejects(verifyTargetImages(manifestOf(1, [{ ...target(web, 'container', '1'), size: web.size + 1 }]), web.layout), refusedWith('manifest.image_digest_mismatch'));
  });

  test('in the registry: the signature is an OCI 1.1 referrer (fallback tag on this registry); fetch returns document and signature', async () => {
    await pushTarget(registry.host, 'acme/gw', web);
    const doc = await signed(vendor, manifestOf(2, [target(web, 'container', '1.0.0')]));
    const client = registryClient(registry.host, 'acme/gw');
    const published = await publishProductManifest(client, doc, 'stable');
    const referrers = await client.referrers(published.descriptor.digest, SIGNATURE_ARTIFACT_TYPE);
    assert.deepEqual(referrers.map((r) => r.digest), [published.signature.digest]);
    assert.ok((await client.listTags()).includes(fallbackTag(published.descriptor.digest)), 'docker-registry 2.8 has no referrers API: the fallback tag holds the index');
    const fetched = await fetchProductManifest(client, 'stable');
    assert.equal(fetched.descriptor.digest, published.descriptor.digest);
    assert.deepEqual(fetched.document, doc.document);
    assert.deepEqual(fetched.signatures, [doc.signature]);
    assert.equal((await verifyProductManifest(fetched.document, fetched.signatures[0], check())).manifest.release, 2);
    // A second signature (re-signed release) is one more referrer; fetch returns both.
    const resigned = await rawSignature(doc.document, vendor.keyset.productKey(PRODUCT), vendor.keyset.productCertificate(PRODUCT));
    await publishProductManifest(client, { document: doc.document, signature: resigned }, 'stable');
    const both = await fetchProductManifest(client, 'stable');
    assert.deepEqual(both.signatures.length, 2);
    assert.ok(both.signatures.some((s) => Buffer.compare(Buffer.from(s), Buffer.from(resigned)) === 0));
    await assert.rejects(fetchProductManifest(client, 'missing'), refusedWith('manifest.not_found'));
    await assert.rejects(fetchProductManifest(client, web.digest), refusedWith('manifest.artifact_invalid'));
  });
});

describe('the floor in the TPM', { skip: hasTool('swtpm') ? false : 'needs swtpm' }, () => {
  let vendor: VendorFixture;
  let machine: Machine;
  before(async () => {
    vendor = await makeVendor();
    machine = await startMachine();
    await provision(machine, vendor, 'SN-MANIFEST-1');
  });
  after(async () => {
    await machine?.stop();
    await vendor?.remove();
  });

  test("a manifest's release is checked against the TPM counter; the product against the device certificate in NV", async () => {
    const identity = await readDeviceIdentity(machine.tpm, vendor.trust);
    const floor = tpmReleaseFloor(machine.tpm);
    assert.equal(await floor.read(), 1);
    const digest = `sha256:${'1'.repeat(64)}`;
    const doc = async (release: number) => signed(vendor, manifestOf(release, [{ name: 'web', version: '1', type: 'container', digest, size: 500 }]));
    const tpmCheck = async (): Promise<ManifestCheck> => ({ trust: vendor.trust, deviceProductId: identity.productId, floor: await floor.read() });
    const r2 = await doc(2);
    assert.equal((await verifyProductManifest(r2.document, r2.signature, await tpmCheck())).manifest.release, 2);
    assert.equal(await floor.advance(3), 3);
    await assert.rejects(verifyProductManifest(r2.document, r2.signature, await tpmCheck()), refusedWith('manifest.rolled_back', /lowest accepted release 3/));
    const r3 = await doc(3);
    assert.equal((await verifyProductManifest(r3.document, r3.signature, await tpmCheck())).manifest.release, 3);
    await assert.rejects(floor.advance(2), (e: unknown) => isSigilError(e, 'device.release_rolled_back'));
  });
});
