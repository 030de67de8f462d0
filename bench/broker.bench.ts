/**
 * `npm run bench:broker`: concurrent attesters doing challenge + attest + release (TPM quotes,
 * EAR, JWE) against `sigil serve` child processes on loopback over TLS:
 *   - SQLite (embedded default), 1 replica;
 *   - PostgreSQL (a private cluster), 1 replica and 2 replicas (attesters split between them);
 *   - swtpm-backed: one attester with real TPM quotes (credential-activated AK), reported apart.
 * The load generator signs real TPMS_ATTEST quotes with software AKs (src/attester/software-
 * quoter.ts) so swtpm is not the bottleneck; it shares the 2 cores with the brokers (and
 * PostgreSQL). Each flow's latency is challenge → attest → JWE received. Goal (issue 4):
 * ≥ 1,000 flows/s and p99 < 50 ms on SQLite, ≥ 800/s on PostgreSQL.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BrokerClient } from '../src/attester/client.ts';
import { generateRuntimeKey, openReleasedSecret } from '../src/attester/runtime-key.ts';
import { SoftwareQuoter } from '../src/attester/software-quoter.ts';
import { enrolTpm, tpmEvidence } from '../src/attester/tpm-attester.ts';
import { startSwtpm } from '../src/tpm/swtpm-process.ts';
import { Tpm } from '../src/tpm/tpm.ts';
import { selectionFromSpec } from '../src/tpm/tpm-seal.ts';
import { postgresBinDir, startPostgres } from '../test/support/postgres.ts';
import { spawnBroker, type BrokerProcess } from '../test/broker/support/process.ts';
import { printResult, round } from './support.ts';

const DURATION_MS = Number(process.env.BENCH_MS ?? 5000);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 24);
const PCRS = { sha256: { '0': '00'.repeat(32), '7': '77'.repeat(32) } };
const SECRET = 'bench secret';

interface Result {
  flows: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function configure(admin: BrokerClient, quoters: SoftwareQuoter[]): Promise<void> {
  await admin.call('PUT', '/v1/admin/tenants/bench', {});
  await admin.call('PUT', '/v1/admin/tenants/bench/policies/p', { kind: 'tpm', referenceValues: { pcrs: { sha256: { '0': [PCRS.sha256['0']], '7': [PCRS.sha256['7']] } } } });
  await admin.call('PUT', '/v1/admin/tenants/bench/resources/app/key', { value: SECRET, releasePolicy: { policies: ['p'] } });
  for (const [i, q] of quoters.entries()) await admin.call('PUT', `/v1/admin/tenants/bench/devices/soft-${i}`, { kind: 'tpm', material: { akPublic: q.akPublicHex() } });
}

/** `CONCURRENCY` attesters spread over `brokers`, each looping challenge → attest → release. */
async function load(brokers: BrokerProcess[], quoters: SoftwareQuoter[]): Promise<Result> {
  const clients = brokers.map((b) => new BrokerClient(b.url, { ca: b.caPem, maxSockets: CONCURRENCY }));
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const worker = async (w: number) => {
    const client = clients[w % clients.length];
    const quoter = quoters[w % quoters.length];
    const deviceId = `soft-${w % quoters.length}`;
    const runtimeKey = await generateRuntimeKey();
    let checked = false;
    while (!stop) {
      const started = performance.now();
      try {
        const result = await client.attestWith({ tenant: 'bench', kind: 'tpm', deviceId, runtimeKey }, (binding) => quoter.quote(binding, PCRS));
        const jwe = await client.fetchResourceJwe('bench', 'app/key', result.ear);
        if (!checked) {
          // Decrypt once per attester (the client's own cost is not the broker's).
          if (new TextDecoder().decode(await openReleasedSecret(jwe, runtimeKey)) !== SECRET) throw new Error('wrong secret');
          checked = true;
        }
        if (measuring) latencies.push(performance.now() - started);
      } catch (error) {
        if (measuring) errors++;
        if (errors < 3 && measuring) console.error(String(error));
      }
    }
  };
  const workers = Array.from({ length: CONCURRENCY }, (_, w) => worker(w));
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  measuring = true;
  const start = performance.now();
  await new Promise((resolve) => setTimeout(resolve, DURATION_MS));
  measuring = false;
  const seconds = (performance.now() - start) / 1000;
  stop = true;
  await Promise.all(workers);
  for (const c of clients) c.close();
  latencies.sort((a, b) => a - b);
  return { flows: latencies.length, errors, rps: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

function report(label: string, r: Result): void {
  console.log(`${label.padEnd(34)} ${round(r.rps, 0).toString().padStart(6)} flows/s   p50 ${round(r.p50, 1)} ms   p99 ${round(r.p99, 1)} ms   (${r.flows} flows, ${r.errors} errors)`);
}

const figures: Record<string, number> = {};
const ratios: Record<string, number> = {};
const quoters = await Promise.all(Array.from({ length: 4 }, () => SoftwareQuoter.create()));
const cleanups: (() => Promise<void>)[] = [];
console.log(`bench:broker — ${CONCURRENCY} concurrent attesters, ${DURATION_MS / 1000} s per run after ${WARMUP_MS / 1000} s warm-up, TLS on loopback, ${os.cpus().length} cores`);
try {
  // SQLite, one replica.
  const sqliteDir = mkdtempSync(path.join(os.tmpdir(), 'sigil-bench-sqlite-'));
  cleanups.push(async () => rmSync(sqliteDir, { recursive: true, force: true }));
  const sqlite = await spawnBroker({ dataDir: sqliteDir, extra: ['--log-level', 'warn'] });
  cleanups.push(() => sqlite.kill('SIGTERM'));
  const sqliteAdmin = new BrokerClient(sqlite.url, { ca: sqlite.caPem, token: sqlite.bootstrapToken });
  await configure(sqliteAdmin, quoters);
  const onSqlite = await load([sqlite], quoters);
  report('SQLite, 1 replica', onSqlite);
  Object.assign(figures, { rps_sqlite: round(onSqlite.rps, 0), p50_ms_sqlite: round(onSqlite.p50, 1), p99_ms_sqlite: round(onSqlite.p99, 1), errors_sqlite: onSqlite.errors });

  // swtpm-backed: one attester, real quotes from a credential-activated AK.
  const swtpm = await startSwtpm({ ekCert: true });
  cleanups.push(() => swtpm.stop());
  const tpm = new Tpm(swtpm.transport());
  cleanups.push(() => tpm.close());
  await sqliteAdmin.call('PUT', '/v1/admin/tenants/bench/ca-bundles/swtpm', { purpose: 'tpm-ek', pem: readFileSync(swtpm.localCa!.rootCert, 'utf8') + readFileSync(swtpm.localCa!.intermediateCert, 'utf8') });
  const pcrs = await tpm.readSelection(selectionFromSpec('sha256:0,7'));
  const golden = Object.fromEntries([...pcrs.get(0x000b)!].map(([i, v]) => [String(i), [Buffer.from(v).toString('hex')]]));
  await sqliteAdmin.call('PUT', '/v1/admin/tenants/bench/policies/swtpm', { kind: 'tpm', referenceValues: { pcrs: { sha256: golden } } });
  await sqliteAdmin.call('PUT', '/v1/admin/tenants/bench/resources/app/key', { value: SECRET, releasePolicy: { policies: ['p', 'swtpm'] } });
  const device = await enrolTpm(sqliteAdmin, tpm, { tenant: 'bench', deviceId: 'swtpm-1' });
  const runtimeKey = await generateRuntimeKey();
  const swtpmLatencies: number[] = [];
  const swStart = performance.now();
  while (performance.now() - swStart < Math.min(DURATION_MS, 3000)) {
    const t = performance.now();
    const r = await sqliteAdmin.attestWith({ tenant: 'bench', kind: 'tpm', deviceId: device.deviceId, policyId: 'swtpm', runtimeKey }, (binding) => tpmEvidence(tpm, device.ak, binding, selectionFromSpec('sha256:0,7')));
    await sqliteAdmin.fetchResourceJwe('bench', 'app/key', r.ear);
    swtpmLatencies.push(performance.now() - t);
  }
  await tpm.flush(device.ak.handle);
  swtpmLatencies.sort((a, b) => a - b);
  const swtpmResult = { flows: swtpmLatencies.length, errors: 0, rps: swtpmLatencies.length / ((performance.now() - swStart) / 1000), p50: percentile(swtpmLatencies, 50), p99: percentile(swtpmLatencies, 99) };
  report('swtpm-backed, 1 attester (SQLite)', swtpmResult);
  Object.assign(figures, { rps_swtpm_1_attester: round(swtpmResult.rps, 1), p50_ms_swtpm: round(swtpmResult.p50, 1) });
  sqliteAdmin.close();
  await sqlite.kill('SIGTERM');

  if (postgresBinDir()) {
    const cluster = await startPostgres();
    cleanups.push(() => cluster.stop());
    const pgDir = mkdtempSync(path.join(os.tmpdir(), 'sigil-bench-pg-'));
    cleanups.push(async () => rmSync(pgDir, { recursive: true, force: true }));
    const db = await cluster.createDatabase('bench');
    const a = await spawnBroker({ dataDir: pgDir, db, extra: ['--log-level', 'warn', '--db-pool', '10'] });
    cleanups.push(() => a.kill('SIGTERM'));
    const pgAdmin = new BrokerClient(a.url, { ca: a.caPem, token: a.bootstrapToken });
    await configure(pgAdmin, quoters);
    pgAdmin.close();
    const onPg = await load([a], quoters);
    report('PostgreSQL, 1 replica', onPg);
    const b = await spawnBroker({ dataDir: pgDir, db, extra: ['--log-level', 'warn', '--db-pool', '10'] });
    cleanups.push(() => b.kill('SIGTERM'));
    const onPg2 = await load([a, b], quoters);
    report('PostgreSQL, 2 replicas', onPg2);
    Object.assign(figures, {
      rps_postgres: round(onPg.rps, 0),
      p50_ms_postgres: round(onPg.p50, 1),
      p99_ms_postgres: round(onPg.p99, 1),
      errors_postgres: onPg.errors,
      rps_postgres_2_replicas: round(onPg2.rps, 0),
      p99_ms_postgres_2_replicas: round(onPg2.p99, 1),
    });
    ratios.postgres_vs_sqlite = round(onPg.rps / onSqlite.rps, 2);
    ratios.two_replicas_vs_one = round(onPg2.rps / onPg.rps, 2);
  } else {
    console.log('PostgreSQL: skipped (binaries not installed)');
  }
  ratios.sqlite_vs_goal_1000 = round(onSqlite.rps / 1000, 2);
  ratios.swtpm_vs_software_quotes = round(swtpmResult.rps / onSqlite.rps, 3);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
printResult('broker', figures, ratios);
