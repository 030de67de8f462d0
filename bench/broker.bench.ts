/**
 * `npm run bench:broker`: concurrent attesters doing challenge + attest + release (TPM quotes,
 * EAR, JWE) against `sigil serve` child processes on loopback over TLS:
 *   - SQLite (embedded default): one broker process, then `--workers 2` (two processes, one socket);
 *   - swtpm-backed: one attester with real TPM quotes (credential-activated AK), reported apart;
 *   - PostgreSQL (a private cluster), 1 replica and 2 replicas (attesters split between them).
 * The load generator signs real TPMS_ATTEST quotes with software AKs (src/attester/software-
 * quoter.ts) so swtpm is not the bottleneck; it shares the 2 cores with the brokers (and
 * PostgreSQL). Each flow's latency is challenge → attest → JWE received. Goal (issue 4):
 * ≥ 1,000 flows/s and p99 < 50 ms on SQLite, ≥ 800/s on PostgreSQL.
 *
 * Each run also prints the CPU one flow costs, from /proc: the broker processes, PostgreSQL, this
 * load generator, and the rest of the machine (other work sharing the cores, which the figures in
 * flows/s cannot tell apart). "2 free cores fit" is 2000 ms divided by the flow's own CPU: what
 * this machine would do with nothing else running (docs/broker-performance.md).
 *
 *   BENCH_MS, BENCH_WARMUP_MS, BENCH_CONCURRENCY       run length and attesters (5000, 1000, 24)
 *   BENCH_SKIP=sqlite,swtpm,postgres                   leave parts out
 *   BENCH_PROFILE=DIR                                  brokers write V8 CPU profiles (--cpu-prof) there
 *   BENCH_BROKER_NODE_OPTIONS="--perf-basic-prof"      more node options for the brokers
 *   BENCH_PID_FILE=FILE                                the SQLite broker's pid, for perf record -p
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').filter(Boolean));
const PROFILE_DIR = process.env.BENCH_PROFILE;

interface Result {
  flows: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
  /** CPU milliseconds per flow: the broker process(es), this load generator, everything else on the machine. */
  cpu?: { broker: number; database: number; generator: number; other: number; idle: number };
}

/**
 * CPU accounting from /proc: the brokers' utime+stime, this process's own, and the whole
 * machine's busy and idle time over the measured window. Divided by the flows, it is the cost of
 * one flow on each side, which says what 2 cores can do whatever else runs on them.
 */
const TICK_MS = 10; // USER_HZ = 100 on Linux
function processTicks(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}
function machineTicks(): { busy: number; idle: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3] + cpu[4];
  return { busy: cpu.slice(0, 8).reduce((a, b) => a + b, 0) - idle, idle };
}
/** A broker's process and its workers (`--workers`: children of the primary). */
function brokerTicks(pid: number): number {
  let ticks = processTicks(pid);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
      if (Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}
/** The private PostgreSQL cluster's postmaster (its command line names the port) and its backends. */
let postgresPort: number | undefined;
function databaseTicks(): number {
  if (postgresPort === undefined) return 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline[0].endsWith('/postgres') && cmdline.includes(String(postgresPort))) return brokerTicks(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return 0;
}
function cpuSnapshot(brokers: BrokerProcess[]) {
  const own = process.cpuUsage();
  return {
    brokers: brokers.reduce((sum, b) => sum + brokerTicks(b.child.pid!), 0) * TICK_MS,
    database: databaseTicks() * TICK_MS,
    generator: (own.user + own.system) / 1000,
    machine: machineTicks(),
  };
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
  const before = cpuSnapshot(brokers);
  await new Promise((resolve) => setTimeout(resolve, DURATION_MS));
  measuring = false;
  const after = cpuSnapshot(brokers);
  const seconds = (performance.now() - start) / 1000;
  stop = true;
  await Promise.all(workers);
  for (const c of clients) c.close();
  latencies.sort((a, b) => a - b);
  const flows = Math.max(1, latencies.length);
  const broker = (after.brokers - before.brokers) / flows;
  const generator = (after.generator - before.generator) / flows;
  const busy = ((after.machine.busy - before.machine.busy) * TICK_MS) / flows;
  const database = (after.database - before.database) / flows;
  const cpu = { broker, database, generator, other: Math.max(0, busy - broker - database - generator), idle: ((after.machine.idle - before.machine.idle) * TICK_MS) / flows };
  return { flows: latencies.length, errors, rps: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpu };
}

function report(label: string, r: Result): void {
  console.log(`${label.padEnd(34)} ${round(r.rps, 0).toString().padStart(6)} flows/s   p50 ${round(r.p50, 1)} ms   p99 ${round(r.p99, 1)} ms   (${r.flows} flows, ${r.errors} errors)`);
  if (r.cpu) {
    const c = r.cpu;
    const db = c.database > 0 ? `, PostgreSQL ${round(c.database, 2)} ms` : '';
    console.log(
      `${''.padEnd(34)} CPU per flow: broker ${round(c.broker, 2)} ms${db}, load generator ${round(c.generator, 2)} ms, rest of the machine ${round(c.other, 2)} ms, idle ${round(c.idle, 2)} ms` +
        ` → 2 free cores fit ${round(2000 / (c.broker + c.database + c.generator), 0)} flows/s`,
    );
  }
}

/** One attester with real TPM quotes from swtpm (credential-activated AK), for as long as a run. */
async function swtpmFlows(admin: BrokerClient): Promise<Result> {
  const swtpm = await startSwtpm({ ekCert: true });
  const tpm = new Tpm(swtpm.transport());
  try {
    await admin.call('PUT', '/v1/admin/tenants/bench/ca-bundles/swtpm', { purpose: 'tpm-ek', pem: readFileSync(swtpm.localCa!.rootCert, 'utf8') + readFileSync(swtpm.localCa!.intermediateCert, 'utf8') });
    const pcrs = await tpm.readSelection(selectionFromSpec('sha256:0,7'));
    const golden = Object.fromEntries([...pcrs.get(0x000b)!].map(([i, v]) => [String(i), [Buffer.from(v).toString('hex')]]));
    await admin.call('PUT', '/v1/admin/tenants/bench/policies/swtpm', { kind: 'tpm', referenceValues: { pcrs: { sha256: golden } } });
    await admin.call('PUT', '/v1/admin/tenants/bench/resources/app/key', { value: SECRET, releasePolicy: { policies: ['p', 'swtpm'] } });
    const device = await enrolTpm(admin, tpm, { tenant: 'bench', deviceId: 'swtpm-1' });
    try {
      const runtimeKey = await generateRuntimeKey();
      const latencies: number[] = [];
      const started = performance.now();
      while (performance.now() - started < Math.min(DURATION_MS, 3000)) {
        const t = performance.now();
        const r = await admin.attestWith({ tenant: 'bench', kind: 'tpm', deviceId: device.deviceId, policyId: 'swtpm', runtimeKey }, (binding) => tpmEvidence(tpm, device.ak, binding, selectionFromSpec('sha256:0,7')));
        await admin.fetchResourceJwe('bench', 'app/key', r.ear);
        latencies.push(performance.now() - t);
      }
      latencies.sort((a, b) => a - b);
      return { flows: latencies.length, errors: 0, rps: latencies.length / ((performance.now() - started) / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
    } finally {
      await tpm.flush(device.ak.handle).catch(() => undefined);
    }
  } finally {
    await tpm.close();
    await swtpm.stop();
  }
}

const figures: Record<string, number> = {};
const ratios: Record<string, number> = {};
const quoters = await Promise.all(Array.from({ length: 4 }, () => SoftwareQuoter.create()));
const cleanups: (() => Promise<void>)[] = [];
console.log(`bench:broker — ${CONCURRENCY} concurrent attesters, ${DURATION_MS / 1000} s per run after ${WARMUP_MS / 1000} s warm-up, TLS on loopback, ${os.cpus().length} cores`);
try {
  // SQLite: one broker process, then two worker processes behind one socket (--workers 2: the
  // machine has two cores and Node runs a broker on one thread).
  const nodeOptions = [...(PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : []), ...(process.env.BENCH_BROKER_NODE_OPTIONS ?? '').split(' ').filter(Boolean)];
  const sqliteBroker = async (workers: number) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-bench-sqlite-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const broker = await spawnBroker({ dataDir: dir, extra: ['--log-level', 'warn', '--workers', String(workers)], nodeOptions });
    cleanups.push(() => broker.kill('SIGTERM'));
    if (process.env.BENCH_PID_FILE) writeFileSync(process.env.BENCH_PID_FILE, String(broker.child.pid));
    const admin = new BrokerClient(broker.url, { ca: broker.caPem, token: broker.bootstrapToken });
    await configure(admin, quoters);
    return { broker, admin };
  };
  let sqliteRps: number | undefined;
  if (SKIP.has('sqlite')) console.log('SQLite: skipped (BENCH_SKIP)');
  else {
    // The default: one process. Then --workers 2, two processes on one socket and one database.
    const single = await sqliteBroker(1);
    const onSqlite = await load([single.broker], quoters);
    report('SQLite, 1 process', onSqlite);
    single.admin.close();
    await single.broker.kill('SIGTERM');
    const { broker: sqlite, admin: sqliteAdmin } = await sqliteBroker(2);
    const onWorkers = await load([sqlite], quoters);
    report('SQLite, --workers 2', onWorkers);
    sqliteRps = onSqlite.rps;
    Object.assign(figures, {
      rps_sqlite: round(onSqlite.rps, 0),
      p50_ms_sqlite: round(onSqlite.p50, 1),
      p99_ms_sqlite: round(onSqlite.p99, 1),
      errors_sqlite: onSqlite.errors,
      cpu_ms_per_flow_broker_sqlite: round(onSqlite.cpu!.broker, 3),
      cpu_ms_per_flow_generator_sqlite: round(onSqlite.cpu!.generator, 3),
      cpu_ms_per_flow_other_sqlite: round(onSqlite.cpu!.other, 3),
      rps_sqlite_2_workers: round(onWorkers.rps, 0),
      p99_ms_sqlite_2_workers: round(onWorkers.p99, 1),
      cpu_ms_per_flow_broker_sqlite_2_workers: round(onWorkers.cpu!.broker, 3),
    });
    ratios.two_workers_vs_one_sqlite = round(onWorkers.rps / onSqlite.rps, 2);
    ratios.sqlite_vs_goal_1000 = round(onSqlite.rps / 1000, 2);
    ratios.sqlite_free_cores_vs_goal_1000 = round(2000 / (onSqlite.cpu!.broker + onSqlite.cpu!.generator) / 1000, 2);
    if (!SKIP.has('swtpm')) {
      // swtpm-backed: one attester, real quotes from a credential-activated AK.
      const swtpmResult = await swtpmFlows(sqliteAdmin);
      report('swtpm-backed, 1 attester (SQLite)', swtpmResult);
      Object.assign(figures, { rps_swtpm_1_attester: round(swtpmResult.rps, 1), p50_ms_swtpm: round(swtpmResult.p50, 1) });
      ratios.swtpm_vs_software_quotes = round(swtpmResult.rps / onSqlite.rps, 3);
    }
    sqliteAdmin.close();
    await sqlite.kill('SIGTERM');
  }

  if (SKIP.has('postgres')) {
    console.log('PostgreSQL: skipped (BENCH_SKIP)');
  } else if (postgresBinDir()) {
    const cluster = await startPostgres();
    postgresPort = cluster.port;
    cleanups.push(() => cluster.stop());
    const pgDir = mkdtempSync(path.join(os.tmpdir(), 'sigil-bench-pg-'));
    cleanups.push(async () => rmSync(pgDir, { recursive: true, force: true }));
    const db = await cluster.createDatabase('bench');
    const a = await spawnBroker({ dataDir: pgDir, db, extra: ['--log-level', 'warn', '--db-pool', '10'], nodeOptions });
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
    ratios.postgres_free_cores_vs_goal_800 = round(2000 / (onPg.cpu!.broker + onPg.cpu!.database + onPg.cpu!.generator) / 800, 2);
    Object.assign(figures, {
      rps_postgres: round(onPg.rps, 0),
      p50_ms_postgres: round(onPg.p50, 1),
      p99_ms_postgres: round(onPg.p99, 1),
      errors_postgres: onPg.errors,
      rps_postgres_2_replicas: round(onPg2.rps, 0),
      p99_ms_postgres_2_replicas: round(onPg2.p99, 1),
      cpu_ms_per_flow_broker_postgres: round(onPg.cpu!.broker, 3),
      cpu_ms_per_flow_database_postgres: round(onPg.cpu!.database, 3),
      cpu_ms_per_flow_other_postgres: round(onPg.cpu!.other, 3),
    });
    if (sqliteRps) ratios.postgres_vs_sqlite = round(onPg.rps / sqliteRps, 2);
    ratios.two_replicas_vs_one = round(onPg2.rps / onPg.rps, 2);
  } else {
    console.log('PostgreSQL: skipped (binaries not installed)');
  }
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
printResult('broker', figures, ratios);
