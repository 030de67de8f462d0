/**
 * Two broker processes on one PostgreSQL: a nonce issued by one is accepted exactly once across
 * both; a revocation on one reaches the other's SSE stream within 2 s and applies there at once;
 * SIGKILL of one in the middle of a load loses no acknowledged write and the other keeps serving.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BrokerClient } from '../../src/attester/client.ts';
import { generateRuntimeKey } from '../../src/attester/runtime-key.ts';
import { SoftwareQuoter } from '../../src/attester/software-quoter.ts';
import { SigilError } from '../../src/core/errors.ts';
import { runtimeKeyBinding } from '../../src/policy/binding.ts';
import { postgresTest, startPostgres, type PostgresCluster } from '../support/postgres.ts';
import { failedRules, refused } from './support/harness.ts';
import { spawnBroker, type BrokerProcess } from './support/process.ts';
import { openSse } from './support/sse.ts';

const PCRS = { sha256: { '7': 'ab'.repeat(32) } };

describe('two replicas on one PostgreSQL', postgresTest(), () => {
  let cluster: PostgresCluster;
  let dataDir: string;
  let a: BrokerProcess;
  let b: BrokerProcess;
  let adminA: BrokerClient;
  let adminB: BrokerClient;
  let quoter: SoftwareQuoter;

  before(async () => {
    cluster = await startPostgres();
    const db = await cluster.createDatabase('replicas');
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'sigil-replicas-'));
    // Both replicas share the data directory's master key and TLS CA (as a deployment would
    // share SIGIL_MASTER_KEY and a certificate); the state lives in PostgreSQL.
    a = await spawnBroker({ dataDir, db, extra: ['--db-pool', '4'] });
    b = await spawnBroker({ dataDir, db, extra: ['--db-pool', '4'] });
    assert.ok(a.bootstrapToken, 'the first replica makes the bootstrap token');
    assert.equal(b.bootstrapToken, undefined, 'the second finds it made');
    adminA = new BrokerClient(a.url, { ca: a.caPem, token: a.bootstrapToken });
    adminB = new BrokerClient(b.url, { ca: b.caPem, token: a.bootstrapToken });
    quoter = await SoftwareQuoter.create();
    await adminA.call('PUT', '/v1/admin/tenants/acme', {});
    await adminA.call('PUT', '/v1/admin/tenants/acme/devices/soft-1', { kind: 'tpm', material: { akPublic: quoter.akPublicHex() } });
    await adminA.call('PUT', '/v1/admin/tenants/acme/devices/soft-2', { kind: 'tpm', material: { akPublic: quoter.akPublicHex() } });
    await adminA.call('PUT', '/v1/admin/tenants/acme/policies/p', { kind: 'tpm', referenceValues: { pcrs: PCRS } });
    await adminA.call('PUT', '/v1/admin/tenants/acme/resources/app/key', { value: 'replicated secret', releasePolicy: {} });
  });

  after(async () => {
    adminA?.close();
    adminB?.close();
    await a?.kill('SIGTERM');
    await b?.kill('SIGTERM');
    await cluster?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('a nonce issued by one replica is accepted once across both', async () => {
    const runtimeKey = await generateRuntimeKey();
    const challenge = await adminA.challenge('acme', 'tpm', 'soft-1');
    const evidence = await quoter.quote(await runtimeKeyBinding(challenge.nonceBytes, runtimeKey.publicJwk), PCRS);
    const request = { tenant: 'acme', kind: 'tpm', nonce: challenge.nonce, evidence, runtimeKey: runtimeKey.publicJwk, deviceId: 'soft-1' };
    const result = await adminB.attest(request);
    assert.equal(result.status, 'affirming');
    // The EAR from B releases on A (shared signing key).
    assert.equal(new TextDecoder().decode(await adminA.fetchResource('acme', 'app/key', result.ear, runtimeKey)), 'replicated secret');
    assert.deepEqual(failedRules(await refused(adminA.attest(request), 'broker.nonce_invalid', 403)), ['nonce.fresh']);
    assert.deepEqual(failedRules(await refused(adminB.attest(request), 'broker.nonce_invalid', 403)), ['nonce.fresh']);
    // Racing the same nonce on both replicas at once: exactly one wins, every time.
    for (let round = 0; round < 10; round++) {
      const c = await (round % 2 ? adminA : adminB).challenge('acme', 'tpm', 'soft-1');
      const ev = await quoter.quote(await runtimeKeyBinding(c.nonceBytes, runtimeKey.publicJwk), PCRS);
      const req = { ...request, nonce: c.nonce, evidence: ev };
      const outcomes = await Promise.allSettled([adminA.attest(req), adminB.attest(req), adminA.attest(req), adminB.attest(req)]);
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, `round ${round}`);
      for (const o of outcomes) if (o.status === 'rejected') assert.equal((o.reason as SigilError).code, 'broker.nonce_invalid');
    }
  });

  test('a revocation on one replica reaches the other\'s SSE within 2 s and applies there at once', async () => {
    const runtimeKey = await generateRuntimeKey();
    const { ear } = await adminB.attestWith({ tenant: 'acme', kind: 'tpm', deviceId: 'soft-2', runtimeKey }, (binding) => quoter.quote(binding, PCRS));
    const sse = await openSse(`${b.url}/v1/admin/events`, a.bootstrapToken!, b.caPem);
    try {
      const started = Date.now();
      await adminA.call('POST', '/v1/admin/tenants/acme/devices/soft-2/revoke', { reason: 'test' });
      const event = await sse.next('revocation', (d) => d.subject === 'soft-2', 2000);
      assert.ok(event.receivedAt - started < 2000, `${event.receivedAt - started} ms`);
    } finally {
      sse.close();
    }
    assert.deepEqual(failedRules(await refused(adminB.fetchResource('acme', 'app/key', ear, runtimeKey), 'broker.revoked', 403)), ['revocation.device']);
  });

  test('SIGKILL of one replica mid-load: no acknowledged write lost, the other keeps serving', async () => {
    const acknowledged = new Map<string, number>();
    const failures: string[] = [];
    let stop = false;
    let killedAt = 0;
    const writer = async (worker: number) => {
      for (let i = 0; !stop; i++) {
        const client = i % 2 === 0 ? adminA : adminB;
        const pathName = `load/w${worker}-${i}`;
        try {
          const answer = await client.call<{ version: number }>('PUT', `/v1/admin/tenants/acme/resources/${pathName}`, { value: `v${i}`, releasePolicy: {} });
          acknowledged.set(pathName, answer.version);
        } catch (error) {
          // Only requests to the killed replica may fail, and only after the kill began.
          if (client !== adminA || killedAt === 0) failures.push(`${pathName}: ${String(error)}`);
        }
      }
    };
    const attester = async () => {
      const runtimeKey = await generateRuntimeKey();
      while (!stop) {
        try {
          const r = await adminB.attestWith({ tenant: 'acme', kind: 'tpm', deviceId: 'soft-1', runtimeKey }, (binding) => quoter.quote(binding, PCRS));
          await adminB.fetchResource('acme', 'app/key', r.ear, runtimeKey);
        } catch (error) {
          failures.push(`attest on B: ${String(error)}`);
        }
      }
    };
    const load = [...Array.from({ length: 6 }, (_, w) => writer(w)), attester(), attester()];
    await new Promise((resolve) => setTimeout(resolve, 1200));
    killedAt = Date.now();
    await a.kill('SIGKILL');
    const beforeKill = acknowledged.size;
    await new Promise((resolve) => setTimeout(resolve, 1200));
    stop = true;
    await Promise.all(load);
    assert.deepEqual(failures, []);
    assert.ok(beforeKill > 10, `load ran (${beforeKill} writes before the kill)`);
    assert.ok(acknowledged.size > beforeKill, 'B kept accepting writes after A died');
    const stored = await adminB.call<{ items: { path: string; version: number }[] }>('GET', '/v1/admin/tenants/acme/resources');
    const versions = new Map(stored.items.map((r) => [r.path, r.version]));
    const lost = [...acknowledged].filter(([p, v]) => (versions.get(p) ?? 0) < v);
    assert.deepEqual(lost, [], 'every acknowledged write is in the database');
    const audit = await adminB.call<{ ok: boolean; problems: unknown[] }>('GET', '/v1/admin/audit/verify');
    assert.deepEqual(audit.problems, []);
    // B still serves the whole protocol.
    const runtimeKey = await generateRuntimeKey();
    const r = await adminB.attestWith({ tenant: 'acme', kind: 'tpm', deviceId: 'soft-1', runtimeKey }, (binding) => quoter.quote(binding, PCRS));
    assert.equal(new TextDecoder().decode(await adminB.fetchResource('acme', 'app/key', r.ear, runtimeKey)), 'replicated secret');
  });
});
