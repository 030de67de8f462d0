/**
 * Verifying a signed product manifest for this device, in two steps:
 *
 * 1. `verifyProductManifest` — the document and its signature, before anything is downloaded:
 *    signer certificate → vendor's product CA → root (validity at `now`, codeSigning), the signer
 *    certified for the manifest's product, the ES256 signature over the exact document bytes,
 *    product binding (device certificate = product certificate = manifest), release ≥ the
 *    anti-rollback floor, not expired.
 * 2. `verifyTargetImages` — the downloaded images in an OCI layout: every image manifest against
 *    the digest and size the signed document pins, every config and layer blob against its
 *    descriptor digest, every layer a verity layer whose whole hash tree checks out against the
 *    root hash annotation (`io.stackeroci.stacker.atomfs_verity_root_hash`).
 *
 * Each refusal has its own SigilError code (README.md lists them).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash } from 'node:crypto';
import { SigilError } from '../../core/errors.ts';
import { platformClaims, verifyChain } from '../../device/certificates.ts';
import { OID } from '../../device/identifiers.ts';
import { assertProductBinding, type VendorTrust } from '../../device/trust.ts';
import { verifyLayer } from '../layers/layer.ts';
import { VERITY_ROOT_HASH_ANNOTATION } from '../layers/media-types.ts';
import type { OciLayout } from '../oci/layout.ts';
import { parseManifest, type Descriptor, type ImageManifest } from '../oci/manifest.ts';
import { parseProductManifest, type ManifestTarget, type ProductManifest } from './product-manifest.ts';
import { parseManifestSignature, signatureVerifies } from './signature.ts';

export interface ManifestCheck {
  trust: VendorTrust;
  /** The product ID in this device's (verified) certificate. */
  deviceProductId: string;
  /** The anti-rollback floor now (floor.ts). */
  floor: number;
  now?: Date;
  /**
   * Rolling back to a release already installed and verified on this device: its expiry (which
   * guards against a stale manifest being fed from outside) is not held against it.
   */
  ignoreExpiry?: boolean;
}

export interface VerifiedProductManifest {
  manifest: ProductManifest;
  document: Uint8Array;
  signature: Uint8Array;
  /** sha256 of the document: the release's identity. */
  documentDigest: string;
  signer: x509.X509Certificate;
}

export function documentDigest(document: Uint8Array): string {
  return `sha256:${createHash('sha256').update(document).digest('hex')}`;
}

function checkSignerUsage(cert: x509.X509Certificate): void {
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  if (!eku || !eku.usages.map(String).includes(OID.codeSigning)) {
    throw new SigilError('manifest.signer_invalid', `the manifest signing certificate "${cert.subject}" is not for code signing`, { subject: cert.subject });
  }
}

export async function verifyProductManifest(document: Uint8Array, signature: Uint8Array, check: ManifestCheck): Promise<VerifiedProductManifest> {
  const now = check.now ?? new Date();
  const manifest = parseProductManifest(document);
  const parsed = parseManifestSignature(signature);
  await verifyChain(parsed.certificate, {
    roots: [check.trust.root],
    intermediates: [check.trust.productCa],
    issuer: check.trust.productCa,
    at: now,
    code: 'manifest.signer',
    what: 'manifest signing certificate',
  });
  checkSignerUsage(parsed.certificate);
  let certified: string | undefined;
  try {
    certified = platformClaims(parsed.certificate).productId;
  } catch (error) {
    throw new SigilError('manifest.signer_invalid', 'the manifest signing certificate carries malformed product claims', {}, { cause: error });
  }
  if (certified !== manifest.productId) {
    throw new SigilError('manifest.signer_mismatch', `the manifest is for product ${manifest.productId} but is signed with the certificate of product ${certified ?? '(none)'}`, {
      manifest: manifest.productId,
      certificate: certified ?? null,
    });
  }
  if (!(await signatureVerifies(parsed, document))) throw new SigilError('manifest.signature_invalid', 'the manifest signature does not verify with its product certificate');
  try {
    assertProductBinding({ device: check.deviceProductId, artefact: manifest.productId, what: 'product manifest', trust: check.trust });
  } catch (error) {
    if (error instanceof SigilError && (error.code === 'device.product_mismatch' || error.code === 'device.product_unknown')) {
      throw new SigilError('manifest.product_mismatch', `the manifest is for product ${manifest.productId}, but this device is product ${check.deviceProductId}`, { device: check.deviceProductId, manifest: manifest.productId }, { cause: error });
    }
    throw error;
  }
  if (manifest.release < check.floor) {
    throw new SigilError('manifest.rolled_back', `the manifest is for release ${manifest.release}, older than this device's lowest accepted release ${check.floor}`, { release: manifest.release, floor: check.floor });
  }
  if (!check.ignoreExpiry && Date.parse(manifest.expires) <= now.getTime()) {
    throw new SigilError('manifest.expired', `the manifest of release ${manifest.release} expired at ${manifest.expires}`, { release: manifest.release, expires: manifest.expires });
  }
  return { manifest, document, signature, documentDigest: documentDigest(document), signer: parsed.certificate };
}

export interface VerifiedTarget {
  target: ManifestTarget;
  image: ImageManifest;
  /** Verity root hash (hex) per layer, in layer order. */
  rootHashes: string[];
}

export interface TargetCheckOptions {
  threads?: number;
  /** Called after each layer: bytes of layers verified so far, of all layers. */
  onProgress?: (done: number, total: number) => void;
  /** Called before each target (the update engine pauses here in tests). */
  beforeTarget?: (target: ManifestTarget, index: number) => Promise<void> | void;
}

function relabel(error: unknown, code: string, message: string, details: Record<string, unknown>): never {
  const cause = error instanceof SigilError ? error.code : String(error);
  throw new SigilError(code, message, { ...details, cause }, { cause: error });
}

async function loadImage(layout: OciLayout, target: ManifestTarget): Promise<ImageManifest> {
  let bytes: Uint8Array;
  try {
    bytes = await layout.readBlob(target.digest, target.size);
  } catch (error) {
    if (error instanceof SigilError && error.code === 'oci.blob_missing') relabel(error, 'manifest.image_missing', `the image of target "${target.name}" (${target.digest}) has not been downloaded`, { target: target.name });
    relabel(error, 'manifest.image_digest_mismatch', `the image manifest of target "${target.name}" does not match the signed digest ${target.digest}`, { target: target.name, digest: target.digest });
  }
  try {
    return parseManifest(bytes);
  } catch (error) {
    return relabel(error, 'manifest.image_invalid', `the image of target "${target.name}" is not an OCI image manifest`, { target: target.name });
  }
}

async function checkBlob(layout: OciLayout, target: ManifestTarget, blob: Descriptor, what: string): Promise<void> {
  try {
    await layout.verifyBlob(blob);
  } catch (error) {
    relabel(error, 'manifest.layer_digest_mismatch', `the ${what} ${blob.digest} of target "${target.name}" is missing or does not match its digest`, { target: target.name, digest: blob.digest });
  }
}

export async function verifyTargetImages(manifest: ProductManifest, layout: OciLayout, options: TargetCheckOptions = {}): Promise<VerifiedTarget[]> {
  const images: ImageManifest[] = [];
  for (const target of manifest.targets) images.push(await loadImage(layout, target));
  const total = images.reduce((sum, image) => sum + image.layers.reduce((n, l) => n + l.size, 0), 0);
  let done = 0;
  const verified: VerifiedTarget[] = [];
  for (const [index, target] of manifest.targets.entries()) {
    await options.beforeTarget?.(target, index);
    const image = images[index];
    if (image.layers.length === 0) throw new SigilError('manifest.image_invalid', `the image of target "${target.name}" has no layers`, { target: target.name });
    await checkBlob(layout, target, image.config, 'config');
    const rootHashes: string[] = [];
    for (const layer of image.layers) {
      const rootHash = layer.annotations?.[VERITY_ROOT_HASH_ANNOTATION];
      if (!layer.mediaType.endsWith('+verity') || rootHash === undefined || !/^[0-9a-f]{64}$/.test(rootHash)) {
        throw new SigilError('manifest.layer_not_verity', `layer ${layer.digest} of target "${target.name}" is not a verity layer with a SHA-256 root hash annotation`, {
          target: target.name,
          digest: layer.digest,
          mediaType: layer.mediaType,
        });
      }
      await checkBlob(layout, target, layer, 'layer');
      try {
        await verifyLayer(layout.blobPath(layer.digest), rootHash, options.threads);
      } catch (error) {
        relabel(error, 'manifest.layer_verity_mismatch', `layer ${layer.digest} of target "${target.name}" does not match its verity root hash ${rootHash}`, { target: target.name, digest: layer.digest, rootHash });
      }
      rootHashes.push(rootHash);
      done += layer.size;
      options.onProgress?.(done, total);
    }
    verified.push({ target, image, rootHashes });
  }
  return verified;
}

/**
 * A release may carry several signatures (re-signed after a key rotation): it is accepted when
 * one verifies. When none does, the first refusal is the one reported.
 */
export async function verifyAnySignature(document: Uint8Array, signatures: Uint8Array[], check: ManifestCheck): Promise<VerifiedProductManifest> {
  let first: unknown;
  for (const signature of signatures) {
    try {
      return await verifyProductManifest(document, signature, check);
    } catch (error) {
      first ??= error;
    }
  }
  throw first ?? new SigilError('manifest.signature_missing', 'the manifest has no signature');
}
