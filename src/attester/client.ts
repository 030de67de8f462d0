import { SigilError } from '../core/errors.ts';
import type { TraceEntry } from '../evidence/verifier.ts';
import { runtimeKeyBinding, type RuntimeJwk } from '../policy/binding.ts';
import { HttpClient, type HttpClientOptions, type HttpResponse } from './http.ts';
import { openReleasedSecret, type RuntimeKey } from './runtime-key.ts';

/**
 * The broker protocol from the attester's side (and the admin API, for tools and tests). Every
 * refusal becomes a SigilError with the problem's code; `details.trace` holds the broker's
 * decision trace and `details.status` the HTTP status.
 */
export interface Challenge {
  nonce: string;
  nonceBytes: Uint8Array;
  expiresAt: string;
}

export interface AttestResult {
  ear: string;
  expiresAt: string;
  status: string;
  attestationId: string;
  claims: Record<string, unknown>;
  trace: TraceEntry[];
}

export interface BrokerClientOptions extends HttpClientOptions {
  /** API token for admin calls and /v1/verify. */
  token?: string;
}

export class BrokerClient {
  readonly http: HttpClient;
  readonly #token?: string;

  constructor(url: string, options: BrokerClientOptions = {}) {
    this.http = new HttpClient(url, options);
    this.#token = options.token;
  }

  close(): void {
    this.http.close();
  }

  /** A client for the same broker with another API token. */
  withToken(token: string | undefined, ca?: string): BrokerClient {
    return new BrokerClient(this.http.base.toString(), { ca, token });
  }

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, bearer: string | undefined = this.#token): Promise<T> {
    const response = await this.http.request(method, path, { body, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
    return parse<T>(response);
  }

  async challenge(tenant: string, kind: string, deviceId?: string): Promise<Challenge> {
    const answer = await this.call<{ nonce: string; expiresAt: string }>('POST', '/v1/challenge', { tenant, kind, deviceId }, undefined);
    return { nonce: answer.nonce, nonceBytes: new Uint8Array(Buffer.from(answer.nonce, 'base64url')), expiresAt: answer.expiresAt };
  }

  async attest(request: { tenant: string; kind: string; nonce: string; evidence: Record<string, unknown>; runtimeKey: RuntimeJwk; deviceId?: string; policyId?: string }): Promise<AttestResult> {
    return this.call<AttestResult>('POST', '/v1/attest', request, undefined);
  }

  /** The released secret's JWE (compact), as the broker sent it. */
  async fetchResourceJwe(tenant: string, path: string, ear: string | undefined): Promise<string> {
    const response = await this.http.request('GET', `/v1/resources/${encodeURIComponent(tenant)}/${path.split('/').map(encodeURIComponent).join('/')}`, { headers: ear ? { authorization: `Bearer ${ear}` } : {} });
    if (response.status !== 200) return parse<never>(response);
    return response.body.toString('utf8');
  }

  async fetchResource(tenant: string, path: string, ear: string, runtimeKey: RuntimeKey): Promise<Uint8Array> {
    return openReleasedSecret(await this.fetchResourceJwe(tenant, path, ear), runtimeKey);
  }

  /**
   * challenge → evidence (from `produce`, given the binding to put in it) → attest. `produce`
   * makes a TPM quote, an SNP/TDX report, … with `binding` as its caller data.
   */
  async attestWith(options: { tenant: string; kind: string; deviceId?: string; policyId?: string; runtimeKey: RuntimeKey }, produce: (binding: Uint8Array) => Promise<Record<string, unknown>>): Promise<AttestResult> {
    const challenge = await this.challenge(options.tenant, options.kind, options.deviceId);
    const binding = await runtimeKeyBinding(challenge.nonceBytes, options.runtimeKey.publicJwk);
    const evidence = await produce(binding);
    return this.attest({ tenant: options.tenant, kind: options.kind, nonce: challenge.nonce, evidence, runtimeKey: options.runtimeKey.publicJwk, deviceId: options.deviceId, policyId: options.policyId });
  }
}

function parse<T>(response: HttpResponse): T {
  const text = response.body.toString('utf8');
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  if (response.status >= 200 && response.status < 300) return body as T;
  const problem = (typeof body === 'object' && body !== null ? body : {}) as { code?: string; detail?: string; trace?: TraceEntry[] };
  throw new SigilError(problem.code ?? `broker.http_${response.status}`, problem.detail ?? `the broker answered ${response.status}`, { status: response.status, trace: problem.trace ?? [], problem: body });
}
