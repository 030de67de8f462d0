/**
 * A release in staging: `staging/<document digest>/` holds the signed document (manifest.json),
 * the signature that verified (manifest.jws) and an OCI layout with every target image, each
 * tagged with its target name. Downloads resume: a blob already there (from an interrupted run or
 * hard-linked from the running release) is re-hashed instead of fetched, and a blob appears under
 * its name only after its digest checked out (RegistryClient.pullBlobToFile), so a kill during a
 * download leaves at most a `.partial` file, which the next start removes.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SigilError } from '../../core/errors.ts';
import { OciLayout } from '../oci/layout.ts';
import type { RegistryClient } from '../oci/registry.ts';
import { pullImage } from '../oci/transfer.ts';
import { verifyProductManifest, verifyTargetImages, type ManifestCheck, type VerifiedProductManifest } from '../manifest/verify.ts';
import { pausePoint } from './pause.ts';
import { fsyncPath, seedBlobs } from './state-dir.ts';

export const DOCUMENT_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'manifest.jws';
export const LAYOUT_DIR = 'layout';

/** Where releases come from: the product manifest's reference and a client per repository. */
export interface UpdateSource {
  /** A client for `repository`, or for the product manifest's own repository when absent. */
  client(repository?: string): RegistryClient;
  /** Tag or digest of the release manifest (e.g. "stable"). */
  reference: string;
  /** registry/repository, for the release records. */
  location: string;
}

export type Progress = (what: string, done: number, total: number) => void;

export function writeFileAtomic(path: string, bytes: Uint8Array | string, mode = 0o644): void {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(temporary, bytes, { mode });
  fsyncPath(temporary);
  renameSync(temporary, path);
}

export interface DownloadOptions {
  source: UpdateSource;
  verified: VerifiedProductManifest;
  staging: string;
  /** The running release's layout: its blobs are linked in instead of downloaded again. */
  seedLayout?: string;
  onProgress?: Progress;
}

export async function downloadRelease(options: DownloadOptions): Promise<void> {
  const { verified, staging } = options;
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(staging, DOCUMENT_FILE), verified.document);
  writeFileAtomic(join(staging, SIGNATURE_FILE), verified.signature);
  const layout = await OciLayout.init(join(staging, LAYOUT_DIR));
  if (options.seedLayout && existsSync(options.seedLayout)) seedBlobs(options.seedLayout, layout.dir);
  for (const target of verified.manifest.targets) {
    const client = options.source.client(target.repository);
    const pulled = await pullImage(client, target.digest, layout, target.name, (done, total) => options.onProgress?.(`download ${target.name}`, done, total));
    if (pulled.size !== target.size) {
      throw new SigilError('manifest.image_digest_mismatch', `the image of target "${target.name}" has ${pulled.size} bytes, the manifest says ${target.size}`, { target: target.name });
    }
    await pausePoint('download');
  }
}

/**
 * Verify a staged release from its own files, as if it had never been seen: document and
 * signature against the trust bundle, device and floor as they are now, then every image,
 * blob and verity tree.
 */
export async function verifyStagedRelease(staging: string, check: ManifestCheck, options: { threads?: number; onProgress?: Progress } = {}): Promise<VerifiedProductManifest> {
  let document: Uint8Array;
  let signature: Uint8Array;
  try {
    document = new Uint8Array(readFileSync(join(staging, DOCUMENT_FILE)));
    signature = new Uint8Array(readFileSync(join(staging, SIGNATURE_FILE)));
  } catch (error) {
    throw new SigilError('update.staging_invalid', `the staged release in ${staging} lacks its manifest or signature`, { staging }, { cause: error });
  }
  const verified = await verifyProductManifest(document, signature, check);
  const layout = await OciLayout.open(join(staging, LAYOUT_DIR));
  await verifyTargetImages(verified.manifest, layout, {
    threads: options.threads,
    onProgress: (done, total) => options.onProgress?.('verify', done, total),
    beforeTarget: () => pausePoint('verify'),
  });
  return verified;
}
