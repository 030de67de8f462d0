import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BrokerClient } from '../../src/attester/client.ts';
import { generateRuntimeKey } from '../../src/attester/runtime-key.ts';
import { SoftwareQuoter } from '../../src/attester/software-quoter.ts';
import { startBroker } from '../../src/broker/server.ts';
import { ensureTls } from '../../src/broker/tls.ts';
import { SigilError } from '../../src/core/errors.ts';
import { refused, startTestBroker, type TestBroker } from './support/harness.ts';

let h: TestBroker;
before(async () => {
  h = await startTestBroker();
  await h.admin.call('PUT', '/v1/admin/tenants/acme', {});
});
after(async () => h?.close());

const isCode = (code: string) => (error: unknown) => error instanceof SigilError && error.code === code;

test('TLS by default: a local CA in the data directory issues a certificate for the loopback names', async () => {
  assert.equal(h.broker.tls, true);
  assert.match(h.broker.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const ca = new X509Certificate(h.broker.caPem!);
  assert.equal(h.broker.caFingerprint, ca.fingerprint256);
  const socket = await import('node:tls').then(
    (tls) =>
      new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: h.broker.port, ca: h.broker.caPem, servername: 'localhost' }, () => resolve(s));
        s.once('error', reject);
      }),
  );
  try {
    assert.equal(socket.authorized, true);
    const peer = socket.getPeerX509Certificate()!;
    assert.ok(peer.checkIssued(ca));
    assert.ok(peer.checkIP('127.0.0.1'));
    assert.ok(peer.checkHost('localhost'));
  } finally {
    socket.destroy();
  }
  // Without the CA a client refuses the broker (no silent trust).
  const stranger = new BrokerClient(h.broker.url);
  await assert.rejects(stranger.call('GET', '/healthz'), isCode('env.broker_unreachable'));
  stranger.close();
});

test('plain HTTP only with --insecure-http, and only on loopback', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-http-'));
  try {
    await assert.rejects(startBroker({ dataDir: dir, listen: '0.0.0.0:0', insecureHttp: true, logLevel: 'silent' }), isCode('cli.usage_insecure_http'));
    const broker = await startBroker({ dataDir: dir, listen: '127.0.0.1:0', insecureHttp: true, logLevel: 'silent', onBootstrapToken: () => undefined });
    try {
      assert.match(broker.url, /^http:\/\/127\.0\.0\.1:/);
      const client = new BrokerClient(broker.url);
      assert.equal((await client.call<{ status: string }>('GET', '/healthz')).status, 'ok');
      client.close();
    } finally {
      await broker.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the bootstrap token is made once; a different master key cannot open the data', async () => {
  let second: string | undefined;
  await h.restart();
  const again = await startBroker({ ...h.options, listen: '127.0.0.1:0', onBootstrapToken: (t) => (second = t) });
  await again.close();
  assert.equal(second, undefined);
  const previous = process.env.SIGIL_MASTER_KEY;
  process.env.SIGIL_MASTER_KEY = 'cd'.repeat(32);
  try {
    await assert.rejects(startBroker({ ...h.options, listen: '127.0.0.1:0' }), isCode('env.master_key_mismatch'));
  } finally {
    if (previous === undefined) delete process.env.SIGIL_MASTER_KEY;
    else process.env.SIGIL_MASTER_KEY = previous;
  }
});

test('bad requests are problem details: invalid JSON, wrong media type, schema errors, too large, unknown route', async () => {
  const raw = async (method: string, url: string, body: string, type = 'application/json') => {
    const { request } = await import('node:https');
    return new Promise<{ status: number; problem: Record<string, unknown> }>((resolve, reject) => {
      const req = request(`${h.broker.url}${url}`, { method, ca: h.broker.caPem, agent: false, headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': type } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          assert.equal(res.headers['content-type'], 'application/problem+json');
          resolve({ status: res.statusCode!, problem: JSON.parse(Buffer.concat(chunks).toString()) });
        });
      });
      req.on('error', reject);
      req.end(body);
    });
  };
  assert.equal((await raw('PUT', '/v1/admin/tenants/acme', '{not json')).status, 400);
  assert.equal((await raw('PUT', '/v1/admin/tenants/acme', '{}', 'text/plain')).status, 415);
  const schema = await raw('POST', '/v1/challenge', JSON.stringify({ tenant: 'acme', kind: 'tpm', extra: 1 }));
  assert.equal(schema.status, 400);
  assert.equal(schema.problem.code, 'broker.invalid_request');
  assert.ok(Array.isArray(schema.problem.errors));
  const big = await raw('PUT', '/v1/admin/tenants/acme/resources/big', JSON.stringify({ value: 'x'.repeat(1_100_000), releasePolicy: {} }));
  assert.equal(big.status, 413);
  assert.equal((await raw('GET', '/v1/nothing-here', '')).problem.code, 'broker.route_not_found');
});

test('fail closed at the edges: bad reference values, unknown kinds, unknown tenants', async () => {
  const error = await refused(h.admin.call('PUT', '/v1/admin/tenants/acme/policies/bad', { kind: 'tpm', referenceValues: { pcrs: { sha256: { '7': ['not hex'] } } } }), 'policy.reference_values_invalid', 400);
  assert.match(error.message, /sha256:7/);
  await refused(h.admin.call('PUT', '/v1/admin/tenants/acme/policies/bad', { kind: 'nonsense', referenceValues: {} }), 'evidence.kind_unknown', 404);
  await refused(h.admin.challenge('acme', 'nonsense'), 'evidence.kind_unknown', 404);
  await refused(h.admin.challenge('nobody', 'tpm'), 'broker.tenant_not_found', 404);
  // A resource without a release policy cannot be stored.
  await refused(h.admin.call('PUT', '/v1/admin/tenants/acme/resources/x', { value: 'x' }), 'broker.invalid_request', 400);
  // Attesting with no policy for the kind: refused, rule policy.present.
  const key = await generateRuntimeKey();
  const quoter = await SoftwareQuoter.create();
  await h.admin.call('PUT', '/v1/admin/tenants/acme/devices/d2', { kind: 'tpm', material: { akPublic: quoter.akPublicHex() } });
  const noPolicy = await refused(h.admin.attestWith({ tenant: 'acme', kind: 'tpm', deviceId: 'd2', runtimeKey: key }, (b) => quoter.quote(b, { sha256: { '7': '00'.repeat(32) } })), 'broker.policy_missing', 403);
  assert.equal((noPolicy.details.trace as { rule: string; result: string }[]).at(-1)!.rule, 'policy.present');
  // An AK that is not a restricted signing key (here: sign | decrypt, unrestricted) cannot be registered.
  const unrestricted = '0023000b00060072000000100010000300100020' + '11'.repeat(32) + '0020' + '22'.repeat(32);
  await refused(h.admin.call('PUT', '/v1/admin/tenants/acme/devices/d3', { kind: 'tpm', material: { akPublic: unrestricted } }), 'tpm.ak_attributes_invalid', 400);
});

test('TLS options: an operator certificate instead of the local CA; a wildcard listen names this host', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-owncert-'));
  try {
    const broker = await startBroker({
      dataDir: dir,
      listen: '127.0.0.1:0',
      logLevel: 'silent',
      tlsCertFile: path.join(h.dataDir, 'tls', 'server.pem'),
      tlsKeyFile: path.join(h.dataDir, 'tls', 'server.key'),
      onBootstrapToken: () => undefined,
    });
    try {
      const client = new BrokerClient(broker.url, { ca: h.broker.caPem });
      assert.equal((await client.call<{ status: string }>('GET', '/healthz')).status, 'ok');
      client.close();
      assert.equal(broker.caFingerprint, h.broker.caFingerprint, 'the chain\'s last certificate is reported as the CA');
    } finally {
      await broker.close();
    }
    const wildcard = await ensureTls(path.join(dir, 'wild'), '0.0.0.0');
    const leaf = new X509Certificate(wildcard.certPem);
    assert.ok(leaf.checkHost(os.hostname()), `SAN has ${os.hostname()}`);
    assert.ok(leaf.checkIP('127.0.0.1'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
