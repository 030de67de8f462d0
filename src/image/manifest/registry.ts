/**
 * Product manifests in an OCI registry (image-spec 1.1 artefacts):
 *
 *   release manifest   OCI image manifest, artifactType application/vnd.sigil.product-manifest.v1+json,
 *                      config = the empty descriptor, layers = [the document blob (same media type)],
 *                      annotations io.sigil.product / io.sigil.release; tagged (e.g. "stable").
 *   signature          OCI image manifest, artifactType application/vnd.sigil.manifest.signature.v1+jws,
 *                      config = empty, layers = [the JWS blob (same media type)],
 *                      subject = the release manifest's descriptor — an OCI 1.1 referrer, found through
 *                      the referrers API or, on registries without it, the `sha256-<hex>` fallback
 *                      tag's index (RegistryClient.pushReferrer / referrers).
 *
 * Nothing in the registry is trusted: the document and signatures come back as bytes for
 * verify.ts; the release manifest is only the way to find them.
 */
import { SigilError } from '../../core/errors.ts';
import { digestBytes } from '../oci/digest.ts';
import { EMPTY_DESCRIPTOR, EMPTY_JSON, encodeJson, MEDIA_TYPES, parseManifest, type Descriptor, type ImageManifest } from '../oci/manifest.ts';
import type { RegistryClient } from '../oci/registry.ts';
import { checkTag } from '../oci/reference.ts';
import { MAX_DOCUMENT_BYTES, PRODUCT_MANIFEST_MEDIA_TYPE, parseProductManifest } from './product-manifest.ts';
import { SIGNATURE_ARTIFACT_TYPE } from './signature.ts';

export const PRODUCT_ANNOTATION = 'io.sigil.product';
export const RELEASE_ANNOTATION = 'io.sigil.release';
/** At most this many signatures are fetched for one manifest (a re-signed release has two). */
const MAX_SIGNATURES = 8;
const MAX_SIGNATURE_BLOB = 64 * 1024;

export interface SignedDocument {
  document: Uint8Array;
  signature: Uint8Array;
}

export interface PublishedManifest {
  /** The release manifest (what the tag points at). */
  descriptor: Descriptor;
  signature: Descriptor;
}

function artefact(artifactType: string, blob: Descriptor, extra: Partial<ImageManifest> = {}): Uint8Array {
  return encodeJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, artifactType, config: EMPTY_DESCRIPTOR, layers: [blob], ...extra });
}

/** Push a signed document and its signature; point `tag` at the release manifest. */
export async function publishProductManifest(client: RegistryClient, signed: SignedDocument, tag: string): Promise<PublishedManifest> {
  checkTag(tag);
  const manifest = parseProductManifest(signed.document);
  const documentBlob: Descriptor = { mediaType: PRODUCT_MANIFEST_MEDIA_TYPE, digest: digestBytes(signed.document), size: signed.document.length };
  const signatureBlob: Descriptor = { mediaType: SIGNATURE_ARTIFACT_TYPE, digest: digestBytes(signed.signature), size: signed.signature.length };
  await client.pushBlob(EMPTY_DESCRIPTOR, EMPTY_JSON);
  await client.pushBlob(documentBlob, signed.document);
  await client.pushBlob(signatureBlob, signed.signature);
  const releaseBytes = artefact(PRODUCT_MANIFEST_MEDIA_TYPE, documentBlob, {
    annotations: { [PRODUCT_ANNOTATION]: manifest.productId, [RELEASE_ANNOTATION]: String(manifest.release) },
  });
  const { digest } = await client.pushManifest(digestBytes(releaseBytes), releaseBytes, MEDIA_TYPES.manifest);
  const descriptor: Descriptor = { mediaType: MEDIA_TYPES.manifest, digest, size: releaseBytes.length, artifactType: PRODUCT_MANIFEST_MEDIA_TYPE };
  const signature = await client.pushReferrer(artefact(SIGNATURE_ARTIFACT_TYPE, signatureBlob, { subject: { mediaType: MEDIA_TYPES.manifest, digest, size: releaseBytes.length } }));
  // The tag moves last: a device never sees a release whose signature is not there yet.
  await client.pushManifest(tag, releaseBytes, MEDIA_TYPES.manifest);
  return { descriptor, signature };
}

export interface FetchedProductManifest {
  /** The release manifest the reference resolved to. */
  descriptor: Descriptor;
  document: Uint8Array;
  /** Every signature referrer's JWS (the verifier accepts the release when one verifies). */
  signatures: Uint8Array[];
}

function singleBlob(manifest: ImageManifest, mediaType: string, what: string, maxSize: number): Descriptor {
  const blob = manifest.layers[0];
  if (manifest.layers.length !== 1 || blob.mediaType !== mediaType || blob.size > maxSize) {
    throw new SigilError('manifest.artifact_invalid', `the ${what} must hold exactly one ${mediaType} blob of at most ${maxSize} bytes`);
  }
  return blob;
}

/** Resolve `reference` (tag or digest) to a release manifest and fetch its document and signatures. */
export async function fetchProductManifest(client: RegistryClient, reference: string): Promise<FetchedProductManifest> {
  const fetched = await client.getManifest(reference);
  if (!fetched) throw new SigilError('manifest.not_found', `${client.repository}:${reference} is not in the registry`, { reference });
  const release = parseManifest(fetched.bytes);
  if (release.artifactType !== PRODUCT_MANIFEST_MEDIA_TYPE) {
    throw new SigilError('manifest.artifact_invalid', `${client.repository}:${reference} is not a Sigil product manifest (artifactType ${PRODUCT_MANIFEST_MEDIA_TYPE})`, { reference });
  }
  const document = await client.pullBlob(singleBlob(release, PRODUCT_MANIFEST_MEDIA_TYPE, 'release manifest', MAX_DOCUMENT_BYTES));
  const descriptor: Descriptor = { mediaType: MEDIA_TYPES.manifest, digest: fetched.digest, size: fetched.bytes.length, artifactType: PRODUCT_MANIFEST_MEDIA_TYPE };
  const referrers = (await client.referrers(fetched.digest, SIGNATURE_ARTIFACT_TYPE)).slice(0, MAX_SIGNATURES);
  const signatures: Uint8Array[] = [];
  for (const referrer of referrers) {
    const signatureManifest = await client.getManifest(referrer.digest);
    if (!signatureManifest) continue;
    const parsed = parseManifest(signatureManifest.bytes);
    // The fallback tag's index is written by anyone who can push: check the subject really is ours.
    if (parsed.subject?.digest !== fetched.digest || parsed.artifactType !== SIGNATURE_ARTIFACT_TYPE) continue;
    signatures.push(await client.pullBlob(singleBlob(parsed, SIGNATURE_ARTIFACT_TYPE, 'signature artefact', MAX_SIGNATURE_BLOB)));
  }
  if (signatures.length === 0) throw new SigilError('manifest.signature_missing', `release manifest ${fetched.digest} has no signature referrer`, { digest: fetched.digest });
  return { descriptor, document, signatures };
}
