import { utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { fromBase64, toBase64, toHex } from '../../core/hex.ts';
import { checkBundleName, jsonBundleSource, OfflineBundle, type BundleSource } from './bundle.ts';
import type { CachedResponse, CacheStore } from './http-cache.ts';

/**
 * The filesystem side of collateral: a bundle directory, a single-file bundle, and a directory
 * HTTP-cache store. The rest of this folder is isomorphic; this file reaches Node's fs through
 * `process.getBuiltinModule` at call time (as core/hash.ts does for node:crypto), so it imports
 * no `node:` module, bundles for browsers, and fails there with `collateral.no_filesystem` only
 * if called.
 */
interface NodeFs {
  readFile(path: string): Promise<Uint8Array>;
  writeFile(path: string, data: Uint8Array | string, options?: { mode?: number }): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  mkdir(path: string, options: { recursive: boolean }): Promise<unknown>;
  stat(path: string): Promise<{ isDirectory(): boolean; size: number }>;
}
interface NodePath {
  join(...parts: string[]): string;
}
interface NodeCrypto {
  createHash(name: string): { update(data: string): { digest(): Uint8Array } };
  randomBytes(n: number): Uint8Array;
}

function builtin<T>(id: string): T {
  const load = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  const module = load?.(id) as T | undefined;
  if (!module) throw new SigilError('collateral.no_filesystem', `${id} is not available in this runtime (collateral files need Node)`);
  return module;
}

const fs = () => builtin<NodeFs>('node:fs/promises');
const path = () => builtin<NodePath>('node:path');

function isMissing(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** Largest single collateral file read from disk. */
const MAX_FILE = 8 << 20;

/** Bundle files under `dir`, by their bundle names (see bundle.ts for the naming scheme). */
export function directorySource(dir: string): BundleSource {
  return {
    description: `collateral directory ${dir}`,
    async read(name) {
      const file = path().join(dir, ...checkBundleName(name).split('/'));
      try {
        const stat = await fs().stat(file);
        if (stat.isDirectory() || stat.size > MAX_FILE) throw new SigilError('collateral.bundle_malformed', `${file} is not a collateral file`, { file });
        return new Uint8Array(await fs().readFile(file));
      } catch (error) {
        if (isMissing(error)) return undefined;
        if (error instanceof SigilError) throw error;
        throw new SigilError('collateral.bundle_unreadable', `${file} could not be read`, { file }, { cause: error });
      }
    },
  };
}

/** An offline bundle from a directory, or from a single-file JSON bundle (bundle.ts). */
export async function openCollateralBundle(location: string): Promise<OfflineBundle> {
  let stat: { isDirectory(): boolean; size: number };
  try {
    stat = await fs().stat(location);
  } catch (error) {
    throw new SigilError('collateral.bundle_unreadable', `collateral bundle ${location} does not exist`, { location }, { cause: error });
  }
  if (stat.isDirectory()) return new OfflineBundle(directorySource(location));
  if (stat.size > 64 << 20) throw new SigilError('collateral.bundle_malformed', `collateral bundle ${location} is too large`, { location });
  const text = utf8.decode(new Uint8Array(await fs().readFile(location)));
  return new OfflineBundle(jsonBundleSource(text, `collateral bundle ${location}`));
}

/**
 * HTTP-cache entries as JSON files in `dir`, one per URL (named by SHA-256 of the URL), written
 * atomically (temporary file + rename) so concurrent verifiers never read half a file.
 */
export function directoryCacheStore(dir: string): CacheStore {
  const fileOf = (key: string) => path().join(dir, `${toHex(builtin<NodeCrypto>('node:crypto').createHash('sha256').update(key).digest())}.json`);
  return {
    async get(key) {
      let text: string;
      try {
        text = utf8.decode(new Uint8Array(await fs().readFile(fileOf(key))));
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
      try {
        const json = JSON.parse(text) as Record<string, unknown>;
        const headers = json.headers as Record<string, unknown>;
        if (json.url !== key || typeof json.body !== 'string' || typeof json.storedAt !== 'number' || (json.freshUntil !== null && typeof json.freshUntil !== 'number')) return undefined;
        if (typeof headers !== 'object' || headers === null || Object.values(headers).some((v) => typeof v !== 'string')) return undefined;
        return { url: key, body: fromBase64(json.body), headers: headers as Record<string, string>, storedAt: json.storedAt, freshUntil: json.freshUntil as number | null };
      } catch {
        return undefined; // a damaged cache file is a miss
      }
    },
    async put(key, entry: CachedResponse) {
      await fs().mkdir(dir, { recursive: true });
      const file = fileOf(key);
      const temporary = `${file}.${toHex(builtin<NodeCrypto>('node:crypto').randomBytes(6))}.tmp`;
      const json = JSON.stringify({ url: entry.url, body: toBase64(entry.body), headers: entry.headers, storedAt: entry.storedAt, freshUntil: entry.freshUntil });
      await fs().writeFile(temporary, json, { mode: 0o600 });
      await fs().rename(temporary, file);
    },
  };
}
