import { SigilError } from '../../core/errors.ts';

/**
 * A small HTTP cache for collateral services (isomorphic: global fetch, no filesystem; a
 * persistent CacheStore can be plugged in, e.g. node-files.ts `directoryCacheStore`).
 *
 * Freshness is decided by the caller per resource, because the services' own cache headers say
 * little: TCB info, QE identity and CRLs are fresh until their nextUpdate, VCEKs and AMD chains
 * never change ('immutable'). A fresh entry is served without a request. A stale one is
 * revalidated with If-None-Match / If-Modified-Since (a 304 keeps the body). When the service
 * cannot be reached or fails (network error, timeout, 5xx, 429), an expired entry is served with
 * `stale: true` (stale-if-error) instead of failing; 404 is an answer, not an error.
 */
export interface CachedResponse {
  url: string;
  body: Uint8Array;
  /** Response headers, names lowercased. */
  headers: Record<string, string>;
  /** When the body was fetched or last revalidated (ms since epoch). */
  storedAt: number;
  /** Fresh until (ms since epoch); null = immutable. */
  freshUntil: number | null;
}

export interface CacheStore {
  get(key: string): Promise<CachedResponse | undefined>;
  put(key: string, entry: CachedResponse): Promise<void>;
}

/** When a fetched body stops being fresh: a time (ms), or 'immutable'. May throw on a malformed body. */
export type Freshness = (body: Uint8Array, headers: Record<string, string>) => number | 'immutable';

export interface HttpCacheOptions {
  fetch?: typeof globalThis.fetch;
  /** A persistent layer under the in-memory one. */
  store?: CacheStore;
  now?: () => number;
  /** When a body's own freshness has already passed, check again after this long. Default 1 h. */
  recheckMs?: number;
  /** Default 30 s. */
  timeoutMs?: number;
  /** Default 8 MiB. */
  maxBodyBytes?: number;
}

export interface CacheResult {
  response: CachedResponse;
  source: 'network' | 'cache';
  stale: boolean;
}

export class HttpCache {
  private readonly memory = new Map<string, CachedResponse>();
  private readonly inflight = new Map<string, Promise<CacheResult>>();
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly store?: CacheStore;
  readonly now: () => number;
  private readonly recheckMs: number;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  /** Requests actually sent (for diagnostics and tests). */
  requests = 0;

  constructor(options: HttpCacheOptions = {}) {
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new SigilError('collateral.no_fetch', 'no fetch implementation is available');
    this.fetchImpl = fetchImpl;
    if (options.store) this.store = options.store;
    this.now = options.now ?? Date.now;
    this.recheckMs = options.recheckMs ?? 3_600_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxBodyBytes = options.maxBodyBytes ?? 8 << 20;
  }

  /** GET `url` through the cache; concurrent calls for one URL share a request. */
  get(url: string, freshness: Freshness): Promise<CacheResult> {
    const running = this.inflight.get(url);
    if (running) return running;
    const task = this.lookup(url, freshness).finally(() => this.inflight.delete(url));
    this.inflight.set(url, task);
    return task;
  }

  private async cached(url: string): Promise<CachedResponse | undefined> {
    const hit = this.memory.get(url);
    if (hit) return hit;
    const stored = await this.store?.get(url).catch(() => undefined);
    if (stored) this.memory.set(url, stored);
    return stored;
  }

  private async save(entry: CachedResponse): Promise<void> {
    this.memory.set(entry.url, entry);
    // A cache that cannot be written is not a verification failure.
    await this.store?.put(entry.url, entry).catch(() => undefined);
  }

  private isFresh(entry: CachedResponse): boolean {
    return entry.freshUntil === null || this.now() < entry.freshUntil;
  }

  private freshUntil(freshness: Freshness, body: Uint8Array, headers: Record<string, string>): number | null {
    const until = freshness(body, headers);
    if (until === 'immutable') return null;
    const now = this.now();
    return until > now ? until : now + this.recheckMs;
  }

  private async lookup(url: string, freshness: Freshness): Promise<CacheResult> {
    const entry = await this.cached(url);
    if (entry && this.isFresh(entry)) return { response: entry, source: 'cache', stale: false };
    const conditional: Record<string, string> = {};
    if (entry?.headers.etag) conditional['if-none-match'] = entry.headers.etag;
    if (entry?.headers['last-modified']) conditional['if-modified-since'] = entry.headers['last-modified'];
    let response: Response;
    try {
      this.requests++;
      response = await this.fetchImpl(url, { headers: conditional, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      if (entry) return { response: entry, source: 'cache', stale: true };
      throw new SigilError('collateral.fetch_failed', `${url} could not be fetched: ${error instanceof Error ? error.message : String(error)}`, { url }, { cause: error });
    }
    if (response.status === 304 && entry) {
      const revalidated = { ...entry, storedAt: this.now(), freshUntil: this.freshUntil(freshness, entry.body, entry.headers) };
      await this.save(revalidated);
      return { response: revalidated, source: 'cache', stale: false };
    }
    if (response.status === 404) {
      await response.body?.cancel().catch(() => undefined);
      throw new SigilError('collateral.not_found', `${url} answered 404`, { url, status: 404 });
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      if (entry && (response.status >= 500 || response.status === 429)) return { response: entry, source: 'cache', stale: true };
      throw new SigilError('collateral.fetch_failed', `${url} answered ${response.status}`, { url, status: response.status });
    }
    const body = await this.readBody(response, url, entry);
    if (!body) return { response: entry!, source: 'cache', stale: true };
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name.toLowerCase()] = value;
    });
    let freshUntil: number | null;
    try {
      freshUntil = this.freshUntil(freshness, body, headers);
    } catch (error) {
      // A damaged answer is never cached; a good old copy beats it.
      if (entry) return { response: entry, source: 'cache', stale: true };
      throw error;
    }
    const fresh: CachedResponse = { url, body, headers, storedAt: this.now(), freshUntil };
    await this.save(fresh);
    return { response: fresh, source: 'network', stale: false };
  }

  /** The body within the size limit; undefined (serve stale) when reading fails and a copy exists. */
  private async readBody(response: Response, url: string, entry: CachedResponse | undefined): Promise<Uint8Array | undefined> {
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > this.maxBodyBytes) {
      await response.body?.cancel().catch(() => undefined);
      throw new SigilError('collateral.response_malformed', `${url} sent ${declared} bytes, more than the ${this.maxBodyBytes} allowed`, { url });
    }
    try {
      const body = new Uint8Array(await response.arrayBuffer());
      if (body.length > this.maxBodyBytes) throw new SigilError('collateral.response_malformed', `${url} sent more than ${this.maxBodyBytes} bytes`, { url });
      return body;
    } catch (error) {
      if (error instanceof SigilError) throw error;
      if (entry) return undefined;
      throw new SigilError('collateral.fetch_failed', `${url}: the response body could not be read`, { url }, { cause: error });
    }
  }

  /** Forget everything in memory (the persistent store is left alone). */
  clearMemory(): void {
    this.memory.clear();
  }
}
