/**
 * `sigil serve --workers 2` on SQLite: two broker processes behind one socket and one database
 * file. Attestations spread over both; every nonce is used once across them; the audit chain
 * written by both verifies with no gap; SIGTERM stops the primary and its workers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BrokerClient } from '../../src/attester/client.ts';
import { generateRuntimeKey } from '../../src/attester/runtime-key.ts';
import { SoftwareQuoter } from '../../src/attester/software-quoter.ts';
import { runtimeKeyBinding } from '../../src/policy/binding.ts';
import { failedRules, refused } from './support/harness.ts';
import { runCli, spawnBroker, type BrokerProcess } from './support/process.ts';

const PCRS = { sha256: { '7': '07'.repeat(32) } };
let dir: string;
let broker: BrokerProcess;
let admin: BrokerClient;
let quoter: SoftwareQuoter;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-workers-'));
  broker = await spawnBroker({ dataDir: dir, extra: ['--workers', '2', '--log-level', 'warn'] });
  admin = new BrokerClient(broker.url, { ca: broker.caPem, token: broker.bootstrapToken });
  quoter = await SoftwareQuoter.create();
  await admin.call('PUT', '/v1/admin/tenants/acme', {});
  await admin.call('PUT', '/v1/admin/tenants/acme/policies/p', { kind: 'tpm', referenceValues: { pcrs: { sha256: { '7': [PCRS.sha256['7']] } } } });
  await admin.call('PUT', '/v1/admin/tenants/acme/resources/app/key', { value: 'shared by both workers', releasePolicy: { policies: ['p'] } });
  await admin.call('PUT', '/v1/admin/tenants/acme/devices/d1', { kind: 'tpm', material: { akPublic: quoter.akPublicHex() } });
});

after(async () => {
  admin?.close();
  await broker?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the first start made one admin token, one CA and one EAR signing key for both workers', async () => {
  assert.ok(broker.bootstrapToken?.startsWith('sigil_'));
  assert.match(broker.output.join(''), /Sigil broker on https:\/\/127\.0\.0\.1:\d+ \(2 workers\)/);
  const jwks = await admin.call<{ keys: { kid: string }[] }>('GET', '/.well-known/jwks.json');
  assert.equal(jwks.keys.length, 1);
});

test('concurrent attest + release over many connections reach both workers; nonces are single-use across them', async () => {
  const replicas = new Set<string>();
  const clients = Array.from({ length: 8 }, () => new BrokerClient(broker.url, { ca: broker.caPem, maxSockets: 2 }));
  try {
    const runtimeKey = await generateRuntimeKey();
    const results = await Promise.all(
      clients.flatMap((client) =>
        Array.from({ length: 6 }, async () => {
          replicas.add((await client.call<{ replica: string }>('GET', '/healthz')).replica);
          const result = await client.attestWith({ tenant: 'acme', kind: 'tpm', deviceId: 'd1', runtimeKey }, (binding) => quoter.quote(binding, PCRS));
          return new TextDecoder().decode(await client.fetchResource('acme', 'app/key', result.ear, runtimeKey));
        }),
      ),
    );
    assert.equal(results.length, 48);
    assert.ok(results.every((r) => r === 'shared by both workers'));
    assert.equal(replicas.size, 2, 'connections were served by both workers');
    // One nonce, presented on every connection at once: exactly one attestation wins.
    const challenge = await admin.challenge('acme', 'tpm', 'd1');
    const evidence = await quoter.quote(await runtimeKeyBinding(challenge.nonceBytes, runtimeKey.publicJwk), PCRS);
    const request = { tenant: 'acme', kind: 'tpm', nonce: challenge.nonce, evidence, runtimeKey: runtimeKey.publicJwk, deviceId: 'd1' };
    const outcomes = await Promise.allSettled(clients.map((client) => client.attest(request)));
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    for (const o of outcomes) if (o.status === 'rejected') assert.deepEqual(failedRules(o.reason), ['nonce.fresh']);
    await refused(admin.attest(request), 'broker.nonce_invalid', 403);
  } finally {
    for (const c of clients) c.close();
  }
});

test('the audit chain both workers appended verifies with no gap, online and with `sigil audit verify`', async () => {
  const online = await admin.call<{ ok: boolean; entries: number; problems: unknown[] }>('GET', '/v1/admin/audit/verify');
  assert.deepEqual(online.problems, []);
  // 4 admin changes + 49 attestations (48, and the one that won the nonce race) + 48 releases;
  // the refused replays were refused before appraisal and record nothing.
  assert.equal(online.entries, 101);
  const cli = runCli(['audit', 'verify', '--data', dir, '--json']);
  assert.equal(cli.status, 0, cli.stderr);
  assert.equal(JSON.parse(cli.stdout).ok, true);
});

test('SIGTERM stops the primary and both workers', async () => {
  await broker.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 500));
  const { spawnSync } = await import('node:child_process');
  const survivors = spawnSync('pgrep', ['-f', `serve --data ${dir}`], { encoding: 'utf8' }).stdout.trim();
  assert.equal(survivors, '', 'no broker process of this data directory is left');
});
