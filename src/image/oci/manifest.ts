/**
 * OCI image-spec 1.1 documents: descriptors, image manifests (with `artifactType` and
 * `subject`), image indexes. Parsing is for untrusted bytes from registries and layouts: every
 * field is checked by hand (type, format, bounds), unknown fields are ignored as the spec asks,
 * and anything malformed is a SigilError('oci.manifest_invalid'), never a TypeError.
 */
import { SigilError } from '../../core/errors.ts';
import { checkDigest } from './digest.ts';

export const MEDIA_TYPES = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  empty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

/** The empty JSON blob `{}` (image-spec manifest.md "Guidance for an Empty Descriptor"). */
export const EMPTY_JSON = new TextEncoder().encode('{}');
export const EMPTY_DESCRIPTOR = {
  mediaType: MEDIA_TYPES.empty,
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
} as const;

/** Largest manifest Sigil reads (registries commonly refuse more than 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_ENTRIES = 10000;
/** RFC 6838 media type, as the image-spec's JSON schema checks it. */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: Platform;
  data?: string;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: typeof MEDIA_TYPES.manifest;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: typeof MEDIA_TYPES.index;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

function invalid(path: string, message: string): never {
  throw new SigilError('oci.manifest_invalid', `${path}: ${message}`, { path });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mediaType(value: unknown, path: string): string {
  if (typeof value !== 'string' || !MEDIA_TYPE.test(value)) invalid(path, 'is not a media type');
  return value;
}

function stringMap(value: unknown, path: string): Record<string, string> {
  if (!isObject(value)) invalid(path, 'is not an object of strings');
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') invalid(`${path}.${key}`, 'is not a string');
    out[key] = v;
  }
  return out;
}

function optionalString(value: unknown, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') invalid(path, 'is not a string');
  return value;
}

function platform(value: unknown, path: string): Platform {
  if (!isObject(value)) invalid(path, 'is not an object');
  const architecture = optionalString(value.architecture, `${path}.architecture`);
  const os = optionalString(value.os, `${path}.os`);
  if (architecture === undefined || os === undefined) invalid(path, 'needs architecture and os');
  const out: Platform = { architecture, os };
  const variant = optionalString(value.variant, `${path}.variant`);
  if (variant !== undefined) out.variant = variant;
  const osVersion = optionalString(value['os.version'], `${path}.os.version`);
  if (osVersion !== undefined) out['os.version'] = osVersion;
  return out;
}

export function parseDescriptor(value: unknown, path = 'descriptor'): Descriptor {
  if (!isObject(value)) invalid(path, 'is not an object');
  const size = value.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) invalid(`${path}.size`, 'is not a non-negative integer');
  let digest: string;
  try {
    digest = checkDigest(value.digest, `${path}.digest`);
  } catch (error) {
    invalid(`${path}.digest`, (error as Error).message);
  }
  const out: Descriptor = { mediaType: mediaType(value.mediaType, `${path}.mediaType`), digest, size };
  if (value.artifactType !== undefined) out.artifactType = mediaType(value.artifactType, `${path}.artifactType`);
  if (value.annotations !== undefined) out.annotations = stringMap(value.annotations, `${path}.annotations`);
  if (value.urls !== undefined) {
    if (!Array.isArray(value.urls) || value.urls.length > MAX_ENTRIES || !value.urls.every((u) => typeof u === 'string')) invalid(`${path}.urls`, 'is not a list of strings');
    out.urls = value.urls as string[];
  }
  if (value.platform !== undefined) out.platform = platform(value.platform, `${path}.platform`);
  if (value.data !== undefined) {
    if (typeof value.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value.data)) invalid(`${path}.data`, 'is not base64');
    out.data = value.data;
  }
  return out;
}

function descriptorList(value: unknown, path: string): Descriptor[] {
  if (!Array.isArray(value)) invalid(path, 'is not a list');
  if (value.length > MAX_ENTRIES) invalid(path, `has more than ${MAX_ENTRIES} entries`);
  return value.map((d, i) => parseDescriptor(d, `${path}[${i}]`));
}

function parseJson(bytes: Uint8Array, what: string): Record<string, unknown> {
  if (bytes.length > MAX_MANIFEST_BYTES) invalid(what, `is larger than ${MAX_MANIFEST_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    invalid(what, 'is not UTF-8 JSON');
  }
  if (!isObject(value)) invalid(what, 'is not a JSON object');
  if (value.schemaVersion !== 2) invalid(`${what}.schemaVersion`, 'is not 2');
  return value;
}

function common(value: Record<string, unknown>, what: string, out: { artifactType?: string; subject?: Descriptor; annotations?: Record<string, string> }): void {
  if (value.artifactType !== undefined) out.artifactType = mediaType(value.artifactType, `${what}.artifactType`);
  if (value.subject !== undefined) out.subject = parseDescriptor(value.subject, `${what}.subject`);
  if (value.annotations !== undefined) out.annotations = stringMap(value.annotations, `${what}.annotations`);
}

export function parseManifest(bytes: Uint8Array): ImageManifest {
  const value = parseJson(bytes, 'manifest');
  if (value.mediaType !== undefined && value.mediaType !== MEDIA_TYPES.manifest) invalid('manifest.mediaType', `is ${String(value.mediaType).slice(0, 80)}, not an OCI image manifest`);
  const out: ImageManifest = { schemaVersion: 2, mediaType: MEDIA_TYPES.manifest, config: parseDescriptor(value.config, 'manifest.config'), layers: descriptorList(value.layers, 'manifest.layers') };
  common(value, 'manifest', out);
  return out;
}

export function parseIndex(bytes: Uint8Array): ImageIndex {
  const value = parseJson(bytes, 'index');
  if (value.mediaType !== undefined && value.mediaType !== MEDIA_TYPES.index) invalid('index.mediaType', `is ${String(value.mediaType).slice(0, 80)}, not an OCI image index`);
  const out: ImageIndex = { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: descriptorList(value.manifests, 'index.manifests') };
  common(value, 'index', out);
  return out;
}

/** Which of the two a document is, from its mediaType field (or its shape when absent). */
export function documentKind(bytes: Uint8Array): 'manifest' | 'index' {
  const value = parseJson(bytes, 'document');
  if (value.mediaType === MEDIA_TYPES.index || (value.mediaType === undefined && Array.isArray(value.manifests))) return 'index';
  if (value.mediaType === MEDIA_TYPES.manifest || (value.mediaType === undefined && value.config !== undefined)) return 'manifest';
  return invalid('document.mediaType', `is ${String(value.mediaType).slice(0, 80)}, neither an OCI manifest nor an index`);
}

/** Canonical bytes for a document Sigil writes (key order as given, no whitespace). */
export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}
