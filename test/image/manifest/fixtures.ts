/**
 * Shared pieces of the manifest and update tests: a vendor keyset (products acme-gw and
 * acme-cam), device certificates issued by its manufacturing CA, real verity squashfs images
 * pushed to the test's registry, and signed product manifests.
 */
import type * as x509 from '@peculiar/x509';
import { FlattenedSign } from 'jose';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificatePem, issueCertificate } from '../../../src/device/certificates.ts';
import { buildImage } from '../../../src/image/layers/image-builder.ts';
import { encodeProductManifest, type ManifestTarget, type ProductManifest } from '../../../src/image/manifest/product-manifest.ts';
import { publishProductManifest } from '../../../src/image/manifest/registry.ts';
import { SIGNATURE_CTY, SIGNATURE_TYP, signProductManifest } from '../../../src/image/manifest/signature.ts';
import { OciLayout } from '../../../src/image/oci/layout.ts';
import { RegistryClient } from '../../../src/image/oci/registry.ts';
import { pushImage } from '../../../src/image/oci/transfer.ts';
import { makeVendor, OTHER_PRODUCT, PRODUCT, type VendorFixture } from '../../device/support.ts';
import { seededBytes } from '../support.ts';

export { makeVendor, OTHER_PRODUCT, PRODUCT, type VendorFixture };

export const DAY = 86400_000;

export async function deviceCertificate(vendor: VendorFixture, serial: string, productId = PRODUCT): Promise<x509.X509Certificate> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  return issueCertificate({
    role: 'device',
    commonName: serial,
    vendor: vendor.keyset.vendor,
    productId,
    serial,
    subjectKey: key,
    issuerKey: vendor.keyset.privateKey('manufacturing-ca'),
    issuerCertificate: vendor.keyset.certificate('manufacturing-ca'),
  });
}

export function writeDeviceFiles(dir: string, vendor: VendorFixture, device: x509.X509Certificate): { trust: string; certificate: string } {
  mkdirSync(dir, { recursive: true });
  const trust = join(dir, 'trust.json');
  const certificate = join(dir, 'device.pem');
  writeFileSync(trust, JSON.stringify(vendor.keyset.trustDocument()));
  writeFileSync(certificate, certificatePem(device));
  return { trust, certificate };
}

/** A rogue product key and certificate naming `productId`, from a CA the vendor never made. */
export async function rogueSigner(productId = PRODUCT): Promise<{ key: KeyObject; certificate: x509.X509Certificate }> {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const ca = await issueCertificate({ role: 'product-ca', commonName: 'Acme Devices product CA', vendor: 'Acme Devices', subjectKey: key, issuerKey: key });
  const certificate = await issueCertificate({ role: 'product', commonName: 'rogue', vendor: 'Acme Devices', productId, subjectKey: key, issuerKey: key, issuerCertificate: ca });
  return { key, certificate };
}

export interface BuiltTarget {
  name: string;
  digest: string;
  size: number;
  layout: OciLayout;
  tag: string;
}

/** Build a one-layer verity image from a small tree whose content depends on `seed`. */
export async function buildTarget(dir: string, name: string, seed: string, bytes = 200_000): Promise<BuiltTarget> {
  const tree = join(dir, 'trees', `${name}-${seed}`);
  mkdirSync(join(tree, 'opt', name), { recursive: true });
  writeFileSync(join(tree, 'opt', name, 'payload.bin'), seededBytes(`${name}:${seed}`, bytes));
  writeFileSync(join(tree, 'opt', name, 'VERSION'), `${seed}\n`);
  const layout = await OciLayout.init(join(dir, 'layouts', name));
  const tag = seed.replace(/[^A-Za-z0-9_.-]/g, '_');
  const built = await buildImage(layout, [tree], tag, { compression: 'gzip' });
  return { name, digest: built.descriptor.digest, size: built.descriptor.size, layout, tag };
}

export function registryClient(host: string, repository: string, fetcher?: typeof fetch): RegistryClient {
  return new RegistryClient({ registry: host, repository, plainHttp: true, ...(fetcher ? { fetch: fetcher } : {}) });
}

export async function pushTarget(host: string, repository: string, target: BuiltTarget): Promise<void> {
  await pushImage(target.layout, target.tag, registryClient(host, repository), target.tag);
}

export function manifestOf(release: number, targets: ManifestTarget[], options: { productId?: string; issuedAt?: Date; expires?: Date } = {}): ProductManifest {
  const issuedAt = options.issuedAt ?? new Date(Date.now() - 60_000);
  return {
    productId: options.productId ?? PRODUCT,
    release,
    issuedAt: issuedAt.toISOString(),
    expires: (options.expires ?? new Date(issuedAt.getTime() + 30 * DAY)).toISOString(),
    targets,
  };
}

export function target(built: BuiltTarget, type: ManifestTarget['type'], version: string, repository?: string): ManifestTarget {
  return { name: built.name, version, type, ...(repository ? { repository } : {}), digest: built.digest, size: built.size };
}

/** Sign with the vendor's key for `signer` (default: the manifest's product) or a given key. */
export async function signed(vendor: VendorFixture, manifest: ProductManifest, signer?: string | { key: KeyObject; certificate: x509.X509Certificate }): Promise<{ document: Uint8Array; signature: Uint8Array }> {
  const document = encodeProductManifest(manifest);
  const key = typeof signer === 'object' ? signer.key : vendor.keyset.productKey(signer ?? manifest.productId);
  const certificate = typeof signer === 'object' ? signer.certificate : vendor.keyset.productCertificate(signer ?? manifest.productId);
  return { document, signature: await signProductManifest(document, key, certificate) };
}

export async function publish(host: string, repository: string, tag: string, document: { document: Uint8Array; signature: Uint8Array }): Promise<string> {
  return (await publishProductManifest(registryClient(host, repository), document, tag)).descriptor.digest;
}

/** A signature made without signProductManifest's own checks (e.g. another product's key). */
export async function rawSignature(document: Uint8Array, key: KeyObject, certificate: x509.X509Certificate, header: Record<string, unknown> = {}): Promise<Uint8Array> {
  const jws = await new FlattenedSign(document)
    .setProtectedHeader({ alg: 'ES256', typ: SIGNATURE_TYP, cty: SIGNATURE_CTY, x5c: [Buffer.from(certificate.rawData).toString('base64')], ...header })
    .sign(key);
  return new TextEncoder().encode(`${jws.protected}..${jws.signature}`);
}
