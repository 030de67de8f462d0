/**
 * The product manifest: what one release of a product consists of — "release N of product P,
 * valid until T: these services at these versions, each an OCI image pinned by digest". It is the
 * document the product key signs (signature.ts) and the update engine installs (../update).
 *
 * Document (UTF-8 JSON, media type application/vnd.sigil.product-manifest.v1+json):
 *   { "format": "sigil.product-manifest.v1", "productId": "acme-gw", "release": 7,
 *     "issuedAt": "2025-01-01T00:00:00Z", "expires": "2025-07-01T00:00:00Z",
 *     "targets": [ { "name": "web", "version": "1.4.2", "type": "container",
 *                    "repository"?: "acme/web", "digest": "sha256:…", "size": 1234 } ],
 *     "annotations"?: { "k": "v" } }
 * `digest` and `size` are the target image's OCI image manifest descriptor; `repository` (absent:
 * the repository the product manifest lives in) is where to pull it from. The parser is strict —
 * unknown fields are refused — because the document is signed: nothing in it may be ignored.
 * Every failure is SigilError('manifest.invalid').
 */
import { SigilError } from '../../core/errors.ts';
import { checkProductId } from '../../device/identifiers.ts';
import { checkRelease } from '../../device/release-floor.ts';
import { isDigest } from '../oci/digest.ts';
import { MAX_MANIFEST_BYTES } from '../oci/manifest.ts';

export const PRODUCT_MANIFEST_FORMAT = 'sigil.product-manifest.v1';
export const PRODUCT_MANIFEST_MEDIA_TYPE = 'application/vnd.sigil.product-manifest.v1+json';

export const TARGET_TYPES = ['container', 'host-root', 'uki'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

export interface ManifestTarget {
  /** The service (or host part) this image provides; unique within a manifest. */
  name: string;
  version: string;
  type: TargetType;
  /** Repository on the same registry; absent = the product manifest's own repository. */
  repository?: string;
  /** Digest and size of the target's OCI image manifest. */
  digest: string;
  size: number;
}

export interface ProductManifest {
  productId: string;
  release: number;
  issuedAt: string;
  expires: string;
  targets: ManifestTarget[];
  annotations?: Record<string, string>;
}

const CODE = 'manifest.invalid';
/** Larger than any sensible manifest; refused before JSON.parse spends time on it. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
export const MAX_TARGETS = 256;
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const VERSION = /^[\x21-\x7e][\x20-\x7e]{0,127}$/;
/** RFC 3339 in UTC, as Date#toISOString writes it (fractions optional). */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;
/** distribution-spec repository path components. */
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TOP_FIELDS = new Set(['format', 'productId', 'release', 'issuedAt', 'expires', 'targets', 'annotations']);
const TARGET_FIELDS = new Set(['name', 'version', 'type', 'repository', 'digest', 'size']);

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(CODE, `product manifest: ${message}`, details);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyFields(value: Record<string, unknown>, allowed: Set<string>, where: string): void {
  for (const key of Object.keys(value)) if (!allowed.has(key)) invalid(`${where} has an unknown field "${key.slice(0, 64)}"`, { field: key.slice(0, 64) });
}

function text(value: unknown, where: string): string {
  if (typeof value !== 'string') invalid(`${where} must be a string`, { field: where });
  return value;
}

function timestamp(value: unknown, where: string): string {
  const t = text(value, where);
  if (!TIMESTAMP.test(t) || Number.isNaN(Date.parse(t))) invalid(`${where} is not an RFC 3339 UTC time (like 2025-01-01T00:00:00Z)`, { field: where });
  return t;
}

function parseTarget(value: unknown, index: number): ManifestTarget {
  const where = `targets[${index}]`;
  if (!isObject(value)) invalid(`${where} is not an object`);
  onlyFields(value, TARGET_FIELDS, where);
  const name = text(value.name, `${where}.name`);
  if (!NAME.test(name)) invalid(`${where}.name "${name.slice(0, 64)}" is not a service name ([a-z0-9][a-z0-9._-]{0,63})`);
  const version = text(value.version, `${where}.version`);
  if (!VERSION.test(version)) invalid(`${where}.version is not 1-128 printable ASCII characters`);
  const type = text(value.type, `${where}.type`);
  if (!(TARGET_TYPES as readonly string[]).includes(type)) invalid(`${where}.type must be one of ${TARGET_TYPES.join(', ')}`, { type: type.slice(0, 32) });
  if (!isDigest(value.digest)) invalid(`${where}.digest is not a sha256 or sha512 digest`);
  const size = value.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 2 || size > MAX_MANIFEST_BYTES) invalid(`${where}.size must be the image manifest's size (2-${MAX_MANIFEST_BYTES} bytes)`);
  const target: ManifestTarget = { name, version, type: type as TargetType, digest: value.digest, size };
  if (value.repository !== undefined) {
    const repository = text(value.repository, `${where}.repository`);
    if (repository.length > 255 || !REPOSITORY.test(repository)) invalid(`${where}.repository is not a repository name`);
    target.repository = repository;
  }
  return target;
}

function parseAnnotations(value: unknown): Record<string, string> {
  if (!isObject(value)) invalid('annotations must be an object of strings');
  const entries = Object.entries(value);
  if (entries.length > 64) invalid('annotations has more than 64 entries');
  for (const [key, v] of entries) {
    if (key.length === 0 || key.length > 256 || typeof v !== 'string' || v.length > 4096) invalid('annotations must map 1-256 character keys to strings of at most 4096 characters');
  }
  // fromEntries defines own properties: a "__proto__" key stays a key, never a prototype.
  return Object.fromEntries(entries) as Record<string, string>;
}

/** Check a manifest value (parsed or about to be written); returns a clean copy. */
export function checkProductManifest(value: unknown): ProductManifest {
  if (!isObject(value)) invalid('is not a JSON object');
  onlyFields(value, TOP_FIELDS, 'the document');
  if (value.format !== PRODUCT_MANIFEST_FORMAT) invalid(`format is not ${PRODUCT_MANIFEST_FORMAT}`);
  const productId = checkProductId(value.productId, CODE);
  const release = checkRelease(value.release, CODE);
  const issuedAt = timestamp(value.issuedAt, 'issuedAt');
  const expires = timestamp(value.expires, 'expires');
  if (Date.parse(expires) <= Date.parse(issuedAt)) invalid('expires is not after issuedAt', { issuedAt, expires });
  if (!Array.isArray(value.targets)) invalid('targets must be a list');
  if (value.targets.length === 0 || value.targets.length > MAX_TARGETS) invalid(`targets must hold 1-${MAX_TARGETS} entries`);
  const targets = value.targets.map(parseTarget);
  const names = new Set<string>();
  for (const target of targets) {
    if (names.has(target.name)) invalid(`target "${target.name}" is listed twice`, { name: target.name });
    names.add(target.name);
  }
  // One kernel and one host root per device: two of either could not both be booted.
  for (const single of ['uki', 'host-root'] as const) {
    if (targets.filter((t) => t.type === single).length > 1) invalid(`more than one target of type ${single}`);
  }
  const manifest: ProductManifest = { productId, release, issuedAt, expires, targets };
  if (value.annotations !== undefined) manifest.annotations = parseAnnotations(value.annotations);
  return manifest;
}

/** Parse untrusted document bytes. Throws only SigilError('manifest.invalid'). */
export function parseProductManifest(bytes: Uint8Array): ProductManifest {
  if (!(bytes instanceof Uint8Array)) invalid('is not bytes');
  if (bytes.length > MAX_DOCUMENT_BYTES) invalid(`is larger than ${MAX_DOCUMENT_BYTES} bytes`, { size: bytes.length });
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    invalid('is not UTF-8 JSON');
  }
  return checkProductManifest(value);
}

/** The document's bytes: checked, fields in a fixed order, no whitespace. */
export function encodeProductManifest(manifest: ProductManifest): Uint8Array {
  const checked = checkProductManifest({ format: PRODUCT_MANIFEST_FORMAT, ...manifest });
  const targets = checked.targets.map((t) => ({
    name: t.name,
    version: t.version,
    type: t.type,
    ...(t.repository !== undefined ? { repository: t.repository } : {}),
    digest: t.digest,
    size: t.size,
  }));
  const doc = {
    format: PRODUCT_MANIFEST_FORMAT,
    productId: checked.productId,
    release: checked.release,
    issuedAt: checked.issuedAt,
    expires: checked.expires,
    targets,
    ...(checked.annotations ? { annotations: checked.annotations } : {}),
  };
  const bytes = new TextEncoder().encode(JSON.stringify(doc));
  if (bytes.length > MAX_DOCUMENT_BYTES) invalid(`would be larger than ${MAX_DOCUMENT_BYTES} bytes`);
  return bytes;
}
