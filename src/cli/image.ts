/**
 * `sigil image build|push|pull|verify|extract|mount|unmount`: verity-protected squashfs images
 * in an OCI layout, moved to and from registries. Registry credentials come from the environment
 * (SIGIL_REGISTRY_USERNAME / SIGIL_REGISTRY_PASSWORD), never from the command line.
 */
import { mkdir } from 'node:fs/promises';
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { fromHex } from '../core/hex.ts';
import type { OciLayout } from '../image/oci/layout.ts';
import type { Descriptor } from '../image/oci/manifest.ts';
import type { RegistryClient } from '../image/oci/registry.ts';
import { VERITY_ROOT_HASH_ANNOTATION } from '../image/layers/media-types.ts';
import { SQUASHFS_COMPRESSIONS as COMPRESSIONS } from '../image/layers/squashfs.ts';
import { printJson } from './output.ts';
import { parseCount, progressBar } from './verity.ts';

// The image modules load only when an image command runs: every other `sigil` command starts
// without parsing them (start-up time is part of every CLI call).
const load = {
  builder: () => import('../image/layers/image-builder.ts'),
  extract: () => import('../image/layers/extract.ts'),
  layer: () => import('../image/layers/layer.ts'),
  mount: () => import('../image/layers/mount.ts'),
  layout: () => import('../image/oci/layout.ts'),
  reference: () => import('../image/oci/reference.ts'),
  registry: () => import('../image/oci/registry.ts'),
  transfer: () => import('../image/oci/transfer.ts'),
};

interface RegistryCliOptions {
  plainHttp?: boolean;
  json?: boolean;
}

async function client(ref: string, options: RegistryCliOptions): Promise<{ registry: RegistryClient; tag?: string; digest?: string }> {
  const parsed = (await load.reference()).parseReference(ref);
  const { RegistryClient } = await load.registry();
  if (options.plainHttp && !options.json) process.stderr.write(`sigil: warning: talking plain HTTP to ${parsed.registry} (no TLS)\n`);
  const registry = new RegistryClient({
    registry: parsed.registry,
    repository: parsed.repository,
    plainHttp: options.plainHttp,
    username: process.env.SIGIL_REGISTRY_USERNAME,
    password: process.env.SIGIL_REGISTRY_PASSWORD,
  });
  return { registry, tag: parsed.tag, digest: parsed.digest };
}

function rootHashOf(layer: Descriptor): string | undefined {
  return layer.annotations?.[VERITY_ROOT_HASH_ANNOTATION];
}

function isVerityLayer(layer: Descriptor): boolean {
  return layer.mediaType.endsWith('+verity');
}

async function imageLayers(layoutDir: string, tag: string): Promise<{ layout: OciLayout; layers: Descriptor[]; descriptor: Descriptor }> {
  const layout = await (await load.layout()).OciLayout.open(layoutDir);
  const descriptor = await layout.resolve(tag);
  const manifest = await layout.manifest(descriptor);
  return { layout, layers: manifest.layers, descriptor };
}

function parseAnnotations(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new SigilError('cli.usage_annotation', `annotation "${pair}" is not key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export function registerImage(program: Command): void {
  const image = program.command('image').description('verity-protected squashfs images: build, push, pull, verify, extract');

  image
    .command('build')
    .description('build one verity squashfs layer per tree into an OCI layout, tagged <tag>')
    .argument('<layout>', 'OCI image layout directory (created when missing)')
    .argument('<tag>', 'tag in the layout')
    .argument('<trees...>', 'directory trees, one layer each, bottom first')
    .option('--compression <name>', `squashfs compression: ${COMPRESSIONS.join(', ')}`, 'zstd')
    .option('--salt <hex>', 'verity salt (default: SHA-256 of each squashfs image)')
    .option('--annotation <key=value...>', 'manifest annotations')
    .option('--json', 'print JSON')
    .action(async (layoutDir: string, tag: string, trees: string[], options: { compression: string; salt?: string; annotation?: string[]; json?: boolean }) => {
      if (!(COMPRESSIONS as readonly string[]).includes(options.compression)) throw new SigilError('cli.usage_compression', `compression "${options.compression}" is not one of ${COMPRESSIONS.join(', ')}`);
      await mkdir(layoutDir, { recursive: true });
      const layout = await (await load.layout()).OciLayout.init(layoutDir);
      const built = await (await load.builder()).buildImage(layout, trees, tag, {
        compression: options.compression as 'zstd',
        salt: options.salt ? fromHex(options.salt) : undefined,
        annotations: parseAnnotations(options.annotation),
        onLayer: (i, layer) => {
          if (!options.json) console.log(`layer ${i}: ${layer.digest} ${layer.size} bytes, verity root ${layer.rootHash}`);
        },
      });
      if (options.json) printJson({ digest: built.descriptor.digest, size: built.descriptor.size, tag, layers: built.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, rootHash: l.rootHash, salt: l.salt, hashOffset: l.hashOffset })) });
      else console.log(`${tag}: ${built.descriptor.digest}`);
    });

  image
    .command('push')
    .description('push the image tagged <tag> in <layout> to <destination> (host[:port]/repository:tag)')
    .argument('<layout>')
    .argument('<tag>')
    .argument('<destination>')
    .option('--plain-http', 'INSECURE: plain HTTP, for a registry on loopback or a test network')
    .option('--json', 'print JSON')
    .action(async (layoutDir: string, tag: string, destination: string, options: RegistryCliOptions) => {
      const { registry, tag: remoteTag } = await client(destination, options);
      const layout: OciLayout = await (await load.layout()).OciLayout.open(layoutDir);
      const progress = progressBar('push', !options.json && process.stderr.isTTY === true);
      const descriptor = await (await load.transfer()).pushImage(layout, tag, registry, remoteTag ?? tag, progress);
      progress.finish();
      if (options.json) printJson({ digest: descriptor.digest, size: descriptor.size, destination });
      else console.log(`pushed ${destination}: ${descriptor.digest}`);
    });

  image
    .command('pull')
    .description('pull <source> (host[:port]/repository:tag or @digest) into <layout>, every blob digest checked')
    .argument('<source>')
    .argument('<layout>')
    .option('--tag <tag>', 'tag in the layout (default: the source tag)')
    .option('--plain-http', 'INSECURE: plain HTTP, for a registry on loopback or a test network')
    .option('--json', 'print JSON')
    .action(async (source: string, layoutDir: string, options: RegistryCliOptions & { tag?: string }) => {
      const { registry, tag, digest } = await client(source, options);
      const reference = digest ?? tag;
      if (!reference) throw new SigilError('cli.usage_reference', 'give a tag or a digest to pull');
      const layoutTag = options.tag ?? tag;
      if (!layoutTag) throw new SigilError('cli.usage_tag', 'pulling by digest needs --tag for the layout');
      await mkdir(layoutDir, { recursive: true });
      const layout = await (await load.layout()).OciLayout.init(layoutDir);
      const progress = progressBar('pull', !options.json && process.stderr.isTTY === true);
      const descriptor = await (await load.transfer()).pullImage(registry, reference, layout, layoutTag, progress);
      progress.finish();
      if (options.json) printJson({ digest: descriptor.digest, size: descriptor.size, tag: layoutTag });
      else console.log(`pulled ${source} as ${layoutTag}: ${descriptor.digest}`);
    });

  image
    .command('verify')
    .description('check every blob digest and every verity layer against its root hash')
    .argument('<layout>')
    .argument('<tag>')
    .option('--json', 'print JSON')
    .action(async (layoutDir: string, tag: string, options: { json?: boolean }) => {
      const { layout, layers, descriptor } = await imageLayers(layoutDir, tag);
      const results = [];
      for (const layer of layers) {
        await layout.verifyBlob(layer);
        const root = rootHashOf(layer);
        if (isVerityLayer(layer)) {
          if (!root) throw new SigilError('layer.no_verity_root', `layer ${layer.digest} has no ${VERITY_ROOT_HASH_ANNOTATION} annotation`, { digest: layer.digest });
          await (await load.layer()).verifyLayer(layout.blobPath(layer.digest), root);
        }
        results.push({ digest: layer.digest, verity: root ?? null });
      }
      if (options.json) printJson({ valid: true, digest: descriptor.digest, layers: results });
      else console.log(`${tag} (${descriptor.digest}): ${layers.length} layer(s) verified`);
    });

  image
    .command('extract')
    .description('unpack the layers (bottom first) into <dest>, reading each through the verity tree')
    .argument('<layout>')
    .argument('<tag>')
    .argument('<dest>')
    .option('--json', 'print JSON')
    .action(async (layoutDir: string, tag: string, dest: string, options: { json?: boolean }) => {
      const { layout, layers } = await imageLayers(layoutDir, tag);
      for (const [i, layer] of layers.entries()) {
        const root = rootHashOf(layer);
        if (!isVerityLayer(layer) || !root) throw new SigilError('layer.no_verity_root', `layer ${layer.digest} is not a verity squashfs layer with a root hash`, { digest: layer.digest });
        const progress = progressBar(`extract layer ${i}`, !options.json && process.stderr.isTTY === true);
        await (await load.extract()).extractLayer(layout.blobPath(layer.digest), root, dest, { force: true, onProgress: progress });
        progress.finish();
      }
      if (options.json) printJson({ dest, layers: layers.length });
      else console.log(`extracted ${layers.length} layer(s) into ${dest}`);
    });

  image
    .command('mount')
    .description('open one layer with dm-verity and mount it read-only (root and device-mapper only)')
    .argument('<layout>')
    .argument('<tag>')
    .argument('<mountpoint>')
    .option('--layer <n>', 'layer index', '0')
    .option('--name <name>', 'device-mapper name (default: sigil-<digest prefix>)')
    .action(async (layoutDir: string, tag: string, mountpoint: string, options: { layer: string; name?: string }) => {
      const { layout, layers } = await imageLayers(layoutDir, tag);
      const layer = layers[parseCount(options.layer, 'layer') ?? 0];
      const root = layer && rootHashOf(layer);
      if (!layer || !root) throw new SigilError('layer.no_verity_root', 'no such verity layer in the image');
      const name = options.name ?? `sigil-${layer.digest.slice(7, 23)}`;
      await (await load.mount()).mountLayer(layout.blobPath(layer.digest), root, name, mountpoint);
      console.log(`mounted ${layer.digest} at ${mountpoint} (/dev/mapper/${name})`);
    });

  image
    .command('unmount')
    .description('unmount and close a layer mounted with `sigil image mount`')
    .argument('<name>', 'device-mapper name')
    .argument('<mountpoint>')
    .action(async (name: string, mountpoint: string) => {
      await (await load.mount()).unmountLayer(name, mountpoint);
    });
}
