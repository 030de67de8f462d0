/**
 * The embedded default under a hard crash: kill -9 during a burst of writes, then restart. The
 * audit chain verifies with no gap (`sigil audit verify`), every acknowledged write is there,
 * and the restarted broker serves with the policies, resources and devices it had. Then the same
 * database is tampered with, and `sigil audit verify` names the entry.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { BrokerClient } from '../../src/attester/client.ts';
import { generateRuntimeKey } from '../../src/attester/runtime-key.ts';
import { SoftwareQuoter } from '../../src/attester/software-quoter.ts';
import { spawnBroker, runCli, type BrokerProcess } from './support/process.ts';

const PCRS = { sha256: { '7': 'cd'.repeat(32) } };

describe('crash recovery on SQLite', () => {
  let dataDir: string;
  let broker: BrokerProcess | undefined;
  let token: string;
  let quoter: SoftwareQuoter;
  const clients: BrokerClient[] = [];
  const connect = (p: BrokerProcess) => {
    const client = new BrokerClient(p.url, { ca: p.caPem, token });
    clients.push(client);
    return client;
  };

  before(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'sigil-crash-'));
    quoter = await SoftwareQuoter.create();
  });
  after(async () => {
    for (const c of clients) c.close();
    await broker?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('kill -9 during a burst of writes, restart: the audit chain verifies with no gap, nothing acknowledged is lost', async () => {
    broker = await spawnBroker({ dataDir });
    token = broker.bootstrapToken!;
    const admin = connect(broker);
    await admin.call('PUT', '/v1/admin/tenants/acme', {});
    await admin.call('PUT', '/v1/admin/tenants/acme/devices/soft-1', { kind: 'tpm', material: { akPublic: quoter.akPublicHex() } });
    await admin.call('PUT', '/v1/admin/tenants/acme/policies/p', { kind: 'tpm', referenceValues: { pcrs: PCRS } });
    await admin.call('PUT', '/v1/admin/tenants/acme/resources/app/key', { value: 'kept across crashes', releasePolicy: { policies: ['p'] } });
    const acknowledged = new Map<string, number>();
    let killed = false;
    const writer = async (worker: number) => {
      for (let i = 0; !killed; i++) {
        try {
          const answer = await admin.call<{ version: number }>('PUT', `/v1/admin/tenants/acme/resources/burst/w${worker}`, { value: `value ${i}`, releasePolicy: {} });
          acknowledged.set(`burst/w${worker}`, answer.version);
        } catch (error) {
          if (!killed) throw error;
        }
      }
    };
    const attester = async () => {
      const runtimeKey = await generateRuntimeKey();
      while (!killed) {
        try {
          await admin.attestWith({ tenant: 'acme', kind: 'tpm', deviceId: 'soft-1', runtimeKey }, (binding) => quoter.quote(binding, PCRS));
        } catch (error) {
          if (!killed) throw error;
        }
      }
    };
    const load = Promise.all([...Array.from({ length: 6 }, (_, w) => writer(w)), attester(), attester()]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    killed = true;
    await broker.kill('SIGKILL');
    await load;
    assert.ok([...acknowledged.values()].reduce((a, b) => a + b, 0) > 20, 'the burst wrote');

    const verify = runCli(['audit', 'verify', '--data', dataDir, '--json']);
    assert.equal(verify.status, 0, verify.stdout + verify.stderr);
    const report = JSON.parse(verify.stdout);
    assert.equal(report.ok, true);
    assert.deepEqual(report.problems, []);
    assert.equal(report.entries, report.lastSeq, 'entries 1..n, no gap');
    assert.equal(report.macChecked, true);

    broker = await spawnBroker({ dataDir });
    assert.equal(broker.bootstrapToken, undefined, 'a restart makes no new bootstrap token');
    const again = connect(broker);
    const stored = await again.call<{ items: { path: string; version: number }[] }>('GET', '/v1/admin/tenants/acme/resources');
    const versions = new Map(stored.items.map((r) => [r.path, r.version]));
    for (const [p, v] of acknowledged) assert.ok((versions.get(p) ?? 0) >= v, `${p} v${v} survived`);
    // Policies, devices and resources are all there: attest and release without re-pushing.
    const runtimeKey = await generateRuntimeKey();
    const result = await again.attestWith({ tenant: 'acme', kind: 'tpm', deviceId: 'soft-1', runtimeKey }, (binding) => quoter.quote(binding, PCRS));
    assert.equal(new TextDecoder().decode(await again.fetchResource('acme', 'app/key', result.ear, runtimeKey)), 'kept across crashes');
    await broker.kill('SIGTERM');
    broker = undefined;
  });

  test('`sigil audit verify` names an edited, a deleted and a cut-off entry', () => {
    const db = new DatabaseSync(path.join(dataDir, 'sigil.db'));
    try {
      const last = Number((db.prepare('SELECT max(seq) AS n FROM audit_log').get() as { n: number }).n);
      assert.ok(last > 10);
      db.prepare(`UPDATE audit_log SET data = replace(data, '"p"', '"q"') WHERE seq = 3`).run();
      let result = runCli(['audit', 'verify', '--data', dataDir]);
      assert.equal(result.status, 1);
      assert.match(result.stdout, /entry 3: its content does not match its hash \(edited\)/);

      db.prepare('DELETE FROM audit_log WHERE seq = 5').run();
      result = runCli(['audit', 'verify', '--data', dataDir, '--json']);
      assert.equal(result.status, 1);
      const problems = JSON.parse(result.stdout).problems as { seq: number; problem: string }[];
      assert.ok(problems.some((p) => p.seq === 3 && /edited/.test(p.problem)));
      assert.ok(problems.some((p) => p.seq === 5 && /missing/.test(p.problem)));

      db.prepare('DELETE FROM audit_log WHERE seq = ?').run(last);
      result = runCli(['audit', 'verify', '--data', dataDir]);
      assert.equal(result.status, 1);
      assert.match(result.stdout, new RegExp(`head says ${last} entries but the last entry is ${last - 1}`));
    } finally {
      db.close();
    }
  });
});
