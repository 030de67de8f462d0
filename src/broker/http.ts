import type { Context } from 'hono';
import { SigilError } from '../core/errors.ts';
import type { Principal } from './auth.ts';
import type { BrokerContext } from './context.ts';

/** Hono environment shared by the route files. */
export interface BrokerEnv {
  Variables: { principal: Principal; requestId: string };
}

export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  // Read the body first even when it will be refused: an unread body makes the server drop a
  // kept-alive connection the client is about to reuse.
  const text = await c.req.text();
  if (!/^application\/([a-z.+-]*\+)?json\b/i.test(type)) throw new SigilError('broker.invalid_request', 'send the body as application/json', { status: 415 });
  try {
    return JSON.parse(text);
  } catch {
    throw new SigilError('broker.invalid_request', 'the request body is not valid JSON', { status: 400 });
  }
}

export function iso(ms: number): string {
  return new Date(Number(ms)).toISOString();
}

/** Route files export one function that adds their routes to the app. */
export type RouteModule = (app: import('hono').Hono<BrokerEnv>, ctx: BrokerContext) => void;
