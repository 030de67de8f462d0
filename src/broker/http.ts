import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { SigilError } from '../core/errors.ts';
import type { Principal } from './auth.ts';
import type { BrokerContext } from './context.ts';

/**
 * Hono environment shared by the route files. Under @hono/node-server, `c.env.incoming` is the
 * Node request; in `app.request()` (tests) there is none and the Fetch API objects are used.
 *
 * Why the helpers below read Node's request and build responses themselves: on the attestation
 * hot path, asking Hono for a header, the body or a response header makes @hono/node-server turn
 * its lightweight request and response into undici Request, Headers and stream objects — measured
 * at about 0.1-0.2 ms of CPU per request, more than the TLS record and the SQLite statements of a
 * challenge together (docs/broker-performance.md).
 */
export interface BrokerEnv {
  Bindings: { incoming?: IncomingMessage };
  Variables: { principal: Principal; requestId: string; requestIdSent: boolean };
}

/** Largest request body the broker reads (evidence with an IMA log is the largest legitimate one). */
export const MAX_BODY_BYTES = 1024 * 1024;

function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
}

/** A request header without materializing a Fetch Headers object. */
export function header(c: Context, name: string): string | undefined {
  const incoming = incomingOf(c);
  if (!incoming) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

const tooLarge = () => new SigilError('broker.request_too_large', `the request body is larger than ${MAX_BODY_BYTES >> 20} MiB`, { status: 413 });

function readIncoming(incoming: IncomingMessage): Promise<string> {
  if (Number(incoming.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        incoming.removeAllListeners('data');
        incoming.resume();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    incoming.once('end', () => resolve(chunks.length === 1 ? chunks[0].toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    incoming.once('error', reject);
  });
}

export async function readJson(c: Context): Promise<unknown> {
  const type = header(c, 'content-type') ?? '';
  // Read the body first even when it will be refused: an unread body makes the server drop a
  // kept-alive connection the client is about to reuse.
  const incoming = incomingOf(c);
  const text = incoming && !incoming.readableEnded ? await readIncoming(incoming) : await c.req.text();
  if (text.length > MAX_BODY_BYTES) throw tooLarge();
  if (!/^application\/([a-z.+-]*\+)?json\b/i.test(type)) throw new SigilError('broker.invalid_request', 'send the body as application/json', { status: 415 });
  try {
    return JSON.parse(text);
  } catch {
    throw new SigilError('broker.invalid_request', 'the request body is not valid JSON', { status: 400 });
  }
}

/**
 * A response with plain-object headers (no Fetch Headers object) that already carries the
 * request id, so the request middleware need not add it afterwards.
 */
export function respond(c: Context<BrokerEnv>, body: string | null, status: number, headers: Record<string, string>): Response {
  c.set('requestIdSent', true);
  return new Response(body, { status, headers: { ...headers, 'x-request-id': c.get('requestId') } });
}

export function json(c: Context<BrokerEnv>, value: unknown, status = 200): Response {
  return respond(c, JSON.stringify(value), status, { 'content-type': 'application/json' });
}

export function iso(ms: number): string {
  return new Date(Number(ms)).toISOString();
}

/** Route files export one function that adds their routes to the app. */
export type RouteModule = (app: import('hono').Hono<BrokerEnv>, ctx: BrokerContext) => void;
