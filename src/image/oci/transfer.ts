/**
 * Copy images between an OCI layout and a registry. Push uploads blobs before the manifest that
 * names them (children of an index before the index), so a registry never holds a manifest with
 * missing content. Pull checks every blob's digest and size before it enters the layout, and tags
 * the image only once everything is in.
 */
import { SigilError } from '../../core/errors.ts';
import { documentKind, MEDIA_TYPES, parseIndex, parseManifest, type Descriptor } from './manifest.ts';
import type { OciLayout } from './layout.ts';
import type { RegistryClient } from './registry.ts';

export interface TransferProgress {
  (done: number, total: number): void;
}

const MAX_DEPTH = 4;

function manifestType(bytes: Uint8Array): string {
  return documentKind(bytes) === 'index' ? MEDIA_TYPES.index : MEDIA_TYPES.manifest;
}

async function pushNode(layout: OciLayout, client: RegistryClient, descriptor: Descriptor, depth: number, progress?: TransferProgress, tally = { done: 0, total: 0 }): Promise<void> {
  if (depth > MAX_DEPTH) throw new SigilError('oci.manifest_invalid', 'indexes nest deeper than Sigil follows');
  const bytes = await layout.readBlob(descriptor.digest, descriptor.size);
  if (manifestType(bytes) === MEDIA_TYPES.index) {
    for (const child of parseIndex(bytes).manifests) await pushNode(layout, client, child, depth + 1, progress, tally);
  } else {
    const manifest = parseManifest(bytes);
    const blobs = [manifest.config, ...manifest.layers];
    tally.total += blobs.reduce((n, b) => n + b.size, 0);
    for (const blob of blobs) {
      await layout.verifyBlob(blob);
      await client.pushBlob(blob, { path: layout.blobPath(blob.digest) });
      tally.done += blob.size;
      progress?.(tally.done, tally.total);
    }
  }
  await client.pushManifest(descriptor.digest, bytes, manifestType(bytes));
}

/** Push the image tagged `layoutTag` in `layout` as `tag` (and by digest). Returns its descriptor. */
export async function pushImage(layout: OciLayout, layoutTag: string, client: RegistryClient, tag: string, progress?: TransferProgress): Promise<Descriptor> {
  const descriptor = await layout.resolve(layoutTag);
  await pushNode(layout, client, descriptor, 0, progress);
  const bytes = await layout.readBlob(descriptor.digest, descriptor.size);
  await client.pushManifest(tag, bytes, manifestType(bytes));
  return descriptor;
}

async function pullNode(client: RegistryClient, layout: OciLayout, reference: string, depth: number, progress?: TransferProgress, tally = { done: 0, total: 0 }): Promise<Descriptor> {
  if (depth > MAX_DEPTH) throw new SigilError('oci.manifest_invalid', 'indexes nest deeper than Sigil follows');
  const fetched = await client.getManifest(reference);
  if (!fetched) throw new SigilError('oci.not_found', `${client.repository}:${reference} is not in the registry`, { reference });
  const mediaType = manifestType(fetched.bytes);
  if (mediaType === MEDIA_TYPES.index) {
    for (const child of parseIndex(fetched.bytes).manifests) {
      const pulled = await pullNode(client, layout, child.digest, depth + 1, progress, tally);
      if (pulled.size !== child.size) throw new SigilError('oci.digest_mismatch', `manifest ${child.digest} has ${pulled.size} bytes, the index says ${child.size}`);
    }
  } else {
    const manifest = parseManifest(fetched.bytes);
    const blobs = [manifest.config, ...manifest.layers];
    tally.total += blobs.reduce((n, b) => n + b.size, 0);
    for (const blob of blobs) {
      if (!(await layout.hasBlob(blob.digest))) await client.pullBlobToFile(blob, layout.blobPath(blob.digest));
      else await layout.verifyBlob(blob);
      tally.done += blob.size;
      progress?.(tally.done, tally.total);
    }
  }
  return layout.putBlob(fetched.bytes, mediaType);
}

/** Pull `reference` (tag or digest) into `layout`, tagged `layoutTag`. */
export async function pullImage(client: RegistryClient, reference: string, layout: OciLayout, layoutTag: string, progress?: TransferProgress): Promise<Descriptor> {
  const descriptor = await pullNode(client, layout, reference, 0, progress);
  await layout.tag(layoutTag, descriptor);
  return descriptor;
}
