/**
 * OCI image layout on disk (image-spec image-layout.md): `oci-layout` ({"imageLayoutVersion":
 * "1.0.0"}), `index.json` (an image index whose entries carry the tag in
 * `org.opencontainers.image.ref.name`), and content-addressed `blobs/<alg>/<hex>`.
 * Blobs are written to a temporary name and renamed, so a crash never leaves a blob whose bytes
 * do not match its name; index.json is replaced the same way. Reads check digests.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SigilError } from '../../core/errors.ts';
import { digestBytes, digestFile, digestParts, verifyContent } from './digest.ts';
import { encodeJson, MEDIA_TYPES, parseDescriptor, parseIndex, parseManifest, type Descriptor, type ImageIndex, type ImageManifest } from './manifest.ts';

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
const LAYOUT_VERSION = '1.0.0';

async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temporary, bytes);
  await rename(temporary, path);
}

export class OciLayout {
  readonly dir: string;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Create a layout (or open the one already there). */
  static async init(dir: string): Promise<OciLayout> {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    try {
      return await OciLayout.open(dir);
    } catch (error) {
      if (!(error instanceof SigilError) || error.code !== 'oci.layout_missing') throw error;
    }
    await writeAtomic(join(dir, 'oci-layout'), encodeJson({ imageLayoutVersion: LAYOUT_VERSION }));
    await writeAtomic(join(dir, 'index.json'), encodeJson({ schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] }));
    return new OciLayout(dir);
  }

  static async open(dir: string): Promise<OciLayout> {
    let text: string;
    try {
      text = await readFile(join(dir, 'oci-layout'), 'utf8');
    } catch {
      throw new SigilError('oci.layout_missing', `${dir} is not an OCI image layout (no oci-layout file)`, { dir });
    }
    let version: unknown;
    try {
      version = (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
    } catch {
      version = undefined;
    }
    if (version !== LAYOUT_VERSION) throw new SigilError('oci.layout_invalid', `${dir}/oci-layout does not declare imageLayoutVersion ${LAYOUT_VERSION}`, { dir });
    return new OciLayout(dir);
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = digestParts(digest);
    return join(this.dir, 'blobs', algorithm, hex);
  }

  async hasBlob(digest: string): Promise<boolean> {
    try {
      await stat(this.blobPath(digest));
      return true;
    } catch {
      return false;
    }
  }

  async putBlob(bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = digestBytes(bytes);
    if (!(await this.hasBlob(digest))) await writeAtomic(this.blobPath(digest), bytes);
    return { mediaType, digest, size: bytes.length };
  }

  /** Copy a file in as a blob (moved when `move`), checking `expected` digest when given. */
  async putBlobFile(path: string, mediaType: string, options: { move?: boolean; expected?: string } = {}): Promise<Descriptor> {
    const { digest, size } = await digestFile(path);
    if (options.expected && options.expected !== digest) throw new SigilError('oci.digest_mismatch', `${path} does not have digest ${options.expected}`, { expected: options.expected, actual: digest });
    const target = this.blobPath(digest);
    if (await this.hasBlob(digest)) {
      if (options.move) await rm(path, { force: true });
    } else {
      const temporary = `${target}.${randomBytes(6).toString('hex')}.tmp`;
      if (options.move) await rename(path, temporary).catch(async () => copyFile(path, temporary));
      else await copyFile(path, temporary);
      await rename(temporary, target);
      if (options.move) await rm(path, { force: true });
    }
    return { mediaType, digest, size };
  }

  /** A blob's bytes, checked against its digest (and size when given). */
  async readBlob(digest: string, size?: number): Promise<Uint8Array> {
    const path = this.blobPath(digest);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch {
      throw new SigilError('oci.blob_missing', `blob ${digest} is not in the layout`, { digest });
    }
    verifyContent(bytes, digest, size);
    return bytes;
  }

  /** Re-hash a (possibly large) blob file and compare with its name and descriptor size. */
  async verifyBlob(descriptor: Descriptor): Promise<void> {
    const path = this.blobPath(descriptor.digest);
    let actual: { digest: string; size: number };
    try {
      actual = await digestFile(path, digestParts(descriptor.digest).algorithm);
    } catch {
      throw new SigilError('oci.blob_missing', `blob ${descriptor.digest} is not in the layout`, { digest: descriptor.digest });
    }
    if (actual.digest !== descriptor.digest || actual.size !== descriptor.size) {
      throw new SigilError('oci.digest_mismatch', `blob ${descriptor.digest} in the layout does not match its digest or size`, { expected: descriptor.digest, actual: actual.digest, size: descriptor.size, actualSize: actual.size });
    }
  }

  async index(): Promise<ImageIndex> {
    return parseIndex(new Uint8Array(await readFile(join(this.dir, 'index.json'))));
  }

  async manifest(descriptor: Descriptor): Promise<ImageManifest> {
    return parseManifest(await this.readBlob(descriptor.digest, descriptor.size));
  }

  /** Point tag `ref` at `descriptor` in index.json (replacing an older entry with that tag). */
  async tag(ref: string, descriptor: Descriptor): Promise<void> {
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(ref)) throw new SigilError('oci.tag_invalid', `"${ref}" is not a valid tag`, { ref });
    const index = await this.index();
    const entry: Descriptor = { ...parseDescriptor(descriptor), annotations: { ...descriptor.annotations, [REF_NAME_ANNOTATION]: ref } };
    index.manifests = [...index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== ref), entry];
    await writeAtomic(join(this.dir, 'index.json'), encodeJson(index));
  }

  async resolve(ref: string): Promise<Descriptor> {
    const index = await this.index();
    const found = index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === ref);
    if (!found) throw new SigilError('oci.ref_missing', `no image tagged "${ref}" in ${this.dir}`, { ref });
    const { annotations, ...rest } = found;
    const kept = Object.fromEntries(Object.entries(annotations ?? {}).filter(([k]) => k !== REF_NAME_ANNOTATION));
    return Object.keys(kept).length ? { ...rest, annotations: kept } : rest;
  }
}
