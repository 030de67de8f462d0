/** Shared set-up for broker tests: an in-process broker with a movable clock, admin helpers. */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { BrokerClient } from '../../../src/attester/client.ts';
import { startBroker, type BrokerOptions, type RunningBroker } from '../../../src/broker/server.ts';
import { SigilError } from '../../../src/core/errors.ts';

export interface TestBroker {
  broker: RunningBroker;
  admin: BrokerClient;
  adminToken: string;
  /** Milliseconds added to the broker's clock. */
  clock: { offset: number };
  dataDir: string;
  options: BrokerOptions;
  client(token?: string): BrokerClient;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startTestBroker(options: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'sigil-broker-'));
  const clock = { offset: 0 };
  let bootstrap: string | undefined;
  const brokerOptions: BrokerOptions = {
    dataDir,
    listen: '127.0.0.1:0',
    logLevel: 'error',
    clock: () => Date.now() + clock.offset,
    onBootstrapToken: (token) => (bootstrap = token),
    ...options,
    config: { eventPollMs: 200, ...options.config },
  };
  let broker = await startBroker(brokerOptions);
  if (!bootstrap) throw new Error('a fresh broker printed no bootstrap token');
  const clients: BrokerClient[] = [];
  const harness: TestBroker = {
    broker,
    dataDir,
    clock,
    options: brokerOptions,
    admin: new BrokerClient(broker.url, { ca: broker.caPem, token: bootstrap }),
    adminToken: bootstrap,
    client(token?: string) {
      const client = new BrokerClient(harness.broker.url, { ca: harness.broker.caPem, token });
      clients.push(client);
      return client;
    },
    async restart() {
      await broker.close();
      // Same data directory, same database, same port: a restarted process.
      broker = await startBroker({ ...brokerOptions, listen: `127.0.0.1:${broker.port}` });
      harness.broker = broker;
    },
    async close() {
      for (const c of clients) c.close();
      harness.admin.close();
      await broker.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Expect a SigilError from a broker call; return it for further checks. */
export async function refused(promise: Promise<unknown>, code: string, status?: number): Promise<SigilError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SigilError, `expected a SigilError, got ${String(error)}`);
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    if (status !== undefined) assert.equal(error.details.status, status);
    return error;
  }
  assert.fail(`expected refusal ${code}, but the call succeeded`);
}

/** The trace of a refusal must name `rule` as failed. */
export function failedRules(error: SigilError): string[] {
  const trace = (error.details.trace ?? []) as { rule: string; result: string }[];
  return trace.filter((t) => t.result === 'fail').map((t) => t.rule);
}

export interface WebhookReceiver {
  url: string;
  received: { body: Record<string, unknown>; signature: string; at: number }[];
  next(match: (body: Record<string, unknown>) => boolean, ms: number): Promise<{ body: Record<string, unknown>; signature: string; at: number }>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: WebhookReceiver['received'] = [];
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')), signature: String(req.headers['sigil-signature'] ?? ''), at: Date.now() });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    async next(match, ms) {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline) {
        const found = received.find((r) => match(r.body));
        if (found) return found;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`no webhook within ${ms} ms`);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export function decodeJwt(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}
