/**
 * OCI distribution-spec client on global fetch: blobs (HEAD, GET with every byte checked
 * against the digest, monolithic upload POST then PUT ?digest=), manifests, tags, and OCI 1.1
 * referrers with the tag-schema fallback (`<alg>-<hex>` → image index) for registries without
 * the referrers API (Debian's docker-registry 2.8 answers 404 and sends no OCI-Subject header).
 * Auth: anonymous, HTTP Basic, or a bearer token obtained from the registry's challenge.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { SigilError } from '../../core/errors.ts';
import { digestBytes, digestParts, verifyContent } from './digest.ts';
import { encodeJson, MAX_MANIFEST_BYTES, MEDIA_TYPES, parseIndex, parseManifest, type Descriptor, type ImageIndex } from './manifest.ts';
import { checkRepository, checkTag } from './reference.ts';

export interface RegistryOptions {
  /** host[:port] */
  registry: string;
  repository: string;
  /** Plain HTTP: only for a registry on loopback or a private test network. */
  plainHttp?: boolean;
  username?: string;
  password?: string;
  fetch?: typeof fetch;
}

export interface FetchedManifest {
  bytes: Uint8Array;
  mediaType: string;
  digest: string;
}

const MANIFEST_ACCEPT = [MEDIA_TYPES.manifest, MEDIA_TYPES.index].join(', ');

export function fallbackTag(digest: string): string {
  const { algorithm, hex } = digestParts(digest);
  return `${algorithm}-${hex}`.slice(0, 128);
}

export class RegistryClient {
  readonly base: string;
  readonly repository: string;
  private readonly fetcher: typeof fetch;
  private readonly basic: string | undefined;
  private token: string | undefined;

  constructor(options: RegistryOptions) {
    this.repository = checkRepository(options.repository);
    this.base = `${options.plainHttp ? 'http' : 'https'}://${options.registry}`;
    this.fetcher = options.fetch ?? fetch;
    this.basic = options.username !== undefined ? `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}` : undefined;
  }

  private url(path: string): string {
    return `${this.base}/v2/${this.repository}/${path}`;
  }

  /** fetch with auth; on a 401 bearer challenge, get a token once and retry. */
  private async request(url: string, init: RequestInit & { duplex?: 'half' } = {}, retry = true): Promise<Response> {
    const headers = new Headers(init.headers);
    const auth = this.token ? `Bearer ${this.token}` : this.basic;
    if (auth) headers.set('authorization', auth);
    let response: Response;
    try {
      response = await this.fetcher(url, { ...init, headers });
    } catch (error) {
      throw new SigilError('oci.registry_unreachable', `cannot reach ${new URL(url).host}: ${(error as Error).message}`, { url }, { cause: error });
    }
    if (response.status === 401 && retry && !(init.body instanceof ReadableStream)) {
      const challenge = response.headers.get('www-authenticate') ?? '';
      await response.body?.cancel();
      if (/^bearer\s/i.test(challenge)) {
        await this.fetchToken(challenge);
        return this.request(url, init, false);
      }
    }
    return response;
  }

  private async fetchToken(challenge: string): Promise<void> {
    const params: Record<string, string> = {};
    for (const m of challenge.slice(challenge.indexOf(' ') + 1).matchAll(/(\w+)="([^"]*)"/g)) params[m[1]] = m[2];
    if (!params.realm) throw new SigilError('oci.auth_failed', 'the registry asked for a token without a realm');
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    if (params.scope) realm.searchParams.set('scope', params.scope);
    const response = await this.fetcher(realm, { headers: this.basic ? { authorization: this.basic } : {} });
    const body = (await response.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
    const token = body.token ?? body.access_token;
    if (!response.ok || typeof token !== 'string') throw new SigilError('oci.auth_failed', `the token service answered ${response.status}`, { status: response.status });
    this.token = token;
  }

  private async failure(response: Response, what: string): Promise<SigilError> {
    const text = (await response.text().catch(() => '')).slice(0, 500);
    let detail = text;
    try {
      const errors = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors;
      if (Array.isArray(errors) && errors.length) detail = errors.map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
    } catch {
      // not JSON: keep the text
    }
    const code = response.status === 401 || response.status === 403 ? 'oci.auth_failed' : response.status === 404 ? 'oci.not_found' : 'oci.registry_error';
    return new SigilError(code, `${what}: registry answered ${response.status}${detail ? ` (${detail})` : ''}`, { status: response.status });
  }

  async hasBlob(digest: string): Promise<boolean> {
    const response = await this.request(this.url(`blobs/${digest}`), { method: 'HEAD' });
    if (response.status === 404) return false;
    if (!response.ok) throw await this.failure(response, `HEAD blob ${digest}`);
    return true;
  }

  /** Monolithic upload: POST /blobs/uploads/, then PUT <Location>?digest= with the bytes or the file. */
  async pushBlob(descriptor: Descriptor, content: Uint8Array | { path: string }): Promise<void> {
    if (await this.hasBlob(descriptor.digest)) return;
    const start = await this.request(this.url('blobs/uploads/'), { method: 'POST' });
    if (start.status !== 202) throw await this.failure(start, 'start blob upload');
    await start.body?.cancel();
    const location = start.headers.get('location');
    if (!location) throw new SigilError('oci.registry_error', 'the registry started an upload without a Location');
    const target = new URL(location, this.base);
    target.searchParams.set('digest', descriptor.digest);
    const body = content instanceof Uint8Array ? content : (Readable.toWeb(createReadStream(content.path)) as ReadableStream<Uint8Array>);
    const put = await this.request(target.href, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(descriptor.size) },
      body: body as BodyInit,
      ...(content instanceof Uint8Array ? {} : { duplex: 'half' as const }),
    });
    if (put.status !== 201) throw await this.failure(put, `upload blob ${descriptor.digest}`);
    await put.body?.cancel();
  }

  private async openBlob(descriptor: Descriptor): Promise<ReadableStream<Uint8Array>> {
    const response = await this.request(this.url(`blobs/${descriptor.digest}`));
    if (!response.ok || !response.body) throw await this.failure(response, `GET blob ${descriptor.digest}`);
    return response.body;
  }

  /**
   * Stream a blob through `sink`, hashing as it comes and refusing more bytes than the descriptor
   * says; the digest is checked before returning (a wrong blob → oci.digest_mismatch).
   */
  private async streamBlob(descriptor: Descriptor, sink: (chunk: Uint8Array) => Promise<void> | void): Promise<void> {
    const { algorithm } = digestParts(descriptor.digest);
    const hash = createHash(algorithm);
    let size = 0;
    const reader = (await this.openBlob(descriptor)).getReader();
    try {
      for (;;) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        size += chunk.length;
        if (size > descriptor.size) {
          throw new SigilError('oci.digest_mismatch', `blob ${descriptor.digest} is longer than the ${descriptor.size} bytes its descriptor says`, { expected: descriptor.digest, size: descriptor.size });
        }
        hash.update(chunk);
        await sink(chunk);
      }
    } catch (error) {
      await reader.cancel().catch(() => undefined);
      throw error;
    }
    const actual = `${algorithm}:${hash.digest('hex')}`;
    if (size !== descriptor.size || actual !== descriptor.digest) {
      throw new SigilError('oci.digest_mismatch', `blob from the registry does not match ${descriptor.digest}`, { expected: descriptor.digest, actual, size: descriptor.size, actualSize: size });
    }
  }

  async pullBlob(descriptor: Descriptor): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    await this.streamBlob(descriptor, (chunk) => {
      chunks.push(chunk);
    });
    return new Uint8Array(Buffer.concat(chunks));
  }

  /** Download to `path`; the file appears only once its digest checked out. */
  async pullBlobToFile(descriptor: Descriptor, path: string): Promise<void> {
    const temporary = `${path}.${randomBytes(6).toString('hex')}.partial`;
    const file = await open(temporary, 'wx', 0o644);
    try {
      await this.streamBlob(descriptor, async (chunk) => {
        await file.write(chunk);
      });
      await file.close();
      await rename(temporary, path);
    } catch (error) {
      await file.close().catch(() => undefined);
      await rm(temporary, { force: true });
      throw error;
    }
  }

  async pushManifest(reference: string, bytes: Uint8Array, mediaType: string): Promise<{ digest: string; subjectAccepted: boolean }> {
    const digest = digestBytes(bytes);
    const response = await this.request(this.url(`manifests/${reference}`), { method: 'PUT', headers: { 'content-type': mediaType }, body: bytes as BodyInit });
    if (response.status !== 201) throw await this.failure(response, `PUT manifest ${reference}`);
    await response.body?.cancel();
    const echoed = response.headers.get('docker-content-digest');
    if (echoed && echoed !== digest) throw new SigilError('oci.digest_mismatch', `the registry stored the manifest as ${echoed}, not ${digest}`, { expected: digest, actual: echoed });
    return { digest, subjectAccepted: response.headers.has('oci-subject') };
  }

  /** A manifest or index by tag or digest; by digest the bytes are checked, by tag against the registry's digest header. */
  async getManifest(reference: string): Promise<FetchedManifest | undefined> {
    const response = await this.request(this.url(`manifests/${reference}`), { headers: { accept: MANIFEST_ACCEPT } });
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) throw await this.failure(response, `GET manifest ${reference}`);
    const declared = Number(response.headers.get('content-length') ?? 0);
    if (declared > MAX_MANIFEST_BYTES) {
      await response.body?.cancel();
      throw new SigilError('oci.manifest_invalid', `manifest ${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`, { size: declared });
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0].trim();
    if (reference.includes(':')) {
      verifyContent(bytes, reference, undefined, 'manifest');
      return { bytes, mediaType, digest: reference };
    }
    const digest = digestBytes(bytes);
    const echoed = response.headers.get('docker-content-digest');
    if (echoed && echoed.startsWith('sha256:') && echoed !== digest) throw new SigilError('oci.digest_mismatch', `manifest ${reference} does not match the registry's digest ${echoed}`, { expected: echoed, actual: digest });
    return { bytes, mediaType, digest };
  }

  async listTags(): Promise<string[]> {
    const response = await this.request(this.url('tags/list'));
    if (response.status === 404) return [];
    if (!response.ok) throw await this.failure(response, 'list tags');
    const body = (await response.json().catch(() => ({}))) as { tags?: unknown };
    return Array.isArray(body.tags) ? body.tags.filter((t): t is string => typeof t === 'string') : [];
  }

  /** Manifests whose subject is `digest`: the referrers API, else the fallback tag's index. */
  async referrers(digest: string, artifactType?: string): Promise<Descriptor[]> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const response = await this.request(this.url(`referrers/${digest}${query}`), { headers: { accept: MEDIA_TYPES.index } });
    let index: ImageIndex | undefined;
    if (response.ok) {
      index = parseIndex(new Uint8Array(await response.arrayBuffer()));
    } else if (response.status === 404) {
      await response.body?.cancel();
      const fallback = await this.getManifest(fallbackTag(digest));
      index = fallback ? parseIndex(fallback.bytes) : undefined;
    } else {
      throw await this.failure(response, `referrers of ${digest}`);
    }
    const all = index?.manifests ?? [];
    return artifactType ? all.filter((d) => d.artifactType === artifactType) : all;
  }

  /**
   * Push a manifest that has a `subject`. When the registry does not confirm it indexed the
   * subject (no OCI-Subject header), also add it to the fallback tag's index (distribution-spec
   * "Pushing Manifests with Subject").
   */
  async pushReferrer(bytes: Uint8Array): Promise<Descriptor> {
    const manifest = parseManifest(bytes);
    if (!manifest.subject) throw new SigilError('oci.manifest_invalid', 'a referrer manifest needs a subject');
    const { digest, subjectAccepted } = await this.pushManifest(digestBytes(bytes), bytes, MEDIA_TYPES.manifest);
    const descriptor: Descriptor = {
      mediaType: MEDIA_TYPES.manifest,
      digest,
      size: bytes.length,
      artifactType: manifest.artifactType ?? manifest.config.mediaType,
      ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
    };
    if (subjectAccepted) return descriptor;
    const tag = checkTag(fallbackTag(manifest.subject.digest));
    const existing = await this.getManifest(tag);
    const index: ImageIndex = existing ? parseIndex(existing.bytes) : { schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: [] };
    if (!index.manifests.some((d) => d.digest === digest)) {
      index.manifests.push(descriptor);
      await this.pushManifest(tag, encodeJson(index), MEDIA_TYPES.index);
    }
    return descriptor;
  }
}
