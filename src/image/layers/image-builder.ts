/**
 * Build an OCI image of verity-protected squashfs layers into a layout: one layer per input
 * tree, an image config whose diff_ids are the layer digests (a squashfs layer is not compressed
 * as a whole, so its "uncompressed" digest is its digest, as stacker does), and a manifest whose
 * layer descriptors carry the verity root hash annotation. Same trees in → same digests out:
 * the config has no timestamps and no host details beyond the given platform.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeJson, MEDIA_TYPES, type Descriptor, type ImageManifest } from '../oci/manifest.ts';
import type { OciLayout } from '../oci/layout.ts';
import { buildLayer, VERITY_ROOT_HASH_ANNOTATION, type Layer, type LayerOptions } from './layer.ts';

export interface ImageBuildOptions extends LayerOptions {
  architecture?: string;
  os?: string;
  /** Manifest annotations (e.g. org.opencontainers.image.version). */
  annotations?: Record<string, string>;
  onLayer?: (index: number, layer: Layer) => void;
}

export interface BuiltImage {
  descriptor: Descriptor;
  manifest: ImageManifest;
  layers: Layer[];
}

export async function buildImage(layout: OciLayout, trees: string[], tag: string, options: ImageBuildOptions = {}): Promise<BuiltImage> {
  const work = await mkdtemp(join(layout.dir, '.sigil-build-'));
  try {
    const layers: Layer[] = [];
    const layerDescriptors: Descriptor[] = [];
    for (const [i, tree] of trees.entries()) {
      const layer = await buildLayer(tree, join(work, `layer-${i}`), options);
      await layout.putBlobFile(layer.path, layer.mediaType, { move: true, expected: layer.digest });
      layers.push(layer);
      layerDescriptors.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size, annotations: { [VERITY_ROOT_HASH_ANNOTATION]: layer.rootHash } });
      options.onLayer?.(i, layer);
    }
    const config = {
      architecture: options.architecture ?? 'amd64',
      os: options.os ?? 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    };
    const configDescriptor = await layout.putBlob(encodeJson(config), MEDIA_TYPES.config);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: configDescriptor,
      layers: layerDescriptors,
      ...(options.annotations ? { annotations: options.annotations } : {}),
    };
    const descriptor = await layout.putBlob(encodeJson(manifest), MEDIA_TYPES.manifest);
    await layout.tag(tag, descriptor);
    return { descriptor, manifest, layers };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
