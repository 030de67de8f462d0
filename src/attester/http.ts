import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { SigilError } from '../core/errors.ts';

/**
 * A small HTTP(S) client on node:http with keep-alive and a pinned CA (the broker's local CA):
 * global fetch cannot take a CA without undici as a dependency.
 */
export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface HttpClientOptions {
  /** PEM of the CA that issued the broker's certificate. */
  ca?: string;
  timeoutMs?: number;
  maxSockets?: number;
}

export class HttpClient {
  readonly base: URL;
  readonly #agent: HttpAgent | HttpsAgent;
  readonly #timeoutMs: number;

  constructor(baseUrl: string, options: HttpClientOptions = {}) {
    this.base = new URL(baseUrl);
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64 };
    this.#agent = this.base.protocol === 'https:' ? new HttpsAgent({ ...agentOptions, ca: options.ca }) : new HttpAgent(agentOptions);
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  async request(method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}): Promise<HttpResponse> {
    try {
      return await this.#send(method, path, options);
    } catch (error) {
      // A kept-alive socket the server closed meanwhile (restart, idle timeout) fails before the
      // request reaches it: send once more on a new socket (Node's documented pattern).
      if ((error as { reusedSocket?: boolean }).reusedSocket) return this.#send(method, path, options);
      throw error;
    }
  }

  #send(method: string, path: string, options: { body?: unknown; headers?: Record<string, string> }): Promise<HttpResponse> {
    const url = new URL(path, this.base);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = { accept: 'application/json, application/problem+json, application/jose', ...options.headers };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.#agent, timeout: this.#timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', (error) => {
        const failure = new SigilError('env.broker_unreachable', `cannot reach the broker at ${this.base.origin}: ${error.message}`, { url: url.toString() }, { cause: error });
        const code = (error as NodeJS.ErrnoException).code;
        if (req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) Object.defineProperty(failure, 'reusedSocket', { value: true });
        reject(failure);
      });
      req.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}
