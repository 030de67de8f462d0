import cluster, { type Worker } from 'node:cluster';
import { mkdirSync } from 'node:fs';
import { SigilError } from '../core/errors.ts';
import { bootstrapToken } from './auth.ts';
import type { Logger } from './logger.ts';
import { loadMasterKey } from './master-key.ts';
import { checkMasterKey, DEFAULT_CONFIG, deliverBootstrapToken, parseListen, serverTls, type BrokerOptions } from './server.ts';
import { SigningKeys } from './signing-keys.ts';
import { openDatabase } from './store/database.ts';

/**
 * `sigil serve --workers N`: N broker processes behind one listening socket (node:cluster), so one
 * machine's cores all serve. Node runs a broker's JavaScript on one thread; on a 2-core machine a
 * single process cannot use the second core however light each request is.
 *
 * The workers are replicas in every sense the broker already knows (docs/broker-protocol.md):
 * they share the database — SQLite in WAL mode (write transactions BEGIN IMMEDIATE, so they queue
 * on the database lock instead of failing) or PostgreSQL — nonces are single-use because the
 * delete that returns the row owns it, the audit chain is appended under the head's lock, and
 * revocations reach every worker through the events table. What must happen once (migrations, the
 * master key file, the EAR signing key, the bootstrap token, the local CA) happens in the primary
 * before any worker starts, so workers never race to create them. The primary serves nothing: it
 * passes connections to the workers (round robin) and restarts a worker that dies.
 */
export interface WorkerListening {
  type: 'sigil-listening';
  url: string;
  tls: boolean;
  caFile?: string;
  caFingerprint?: string;
}

/** The once-only first-start work, done by the primary (the database is closed again after). */
export async function prepareBroker(options: BrokerOptions): Promise<void> {
  if (options.masterKeyTpm) {
    throw new SigilError('cli.usage_workers_tpm', '--workers cannot be combined with --master-key-tpm: each worker would unseal from the one TPM; use --master-key-file or SIGIL_MASTER_KEY');
  }
  const { host } = parseListen(options.listen ?? '127.0.0.1:8443');
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const master = await loadMasterKey({ dataDir: options.dataDir, file: options.masterKeyFile });
  const database = await openDatabase({ url: options.db, dataDir: options.dataDir, poolSize: 1 });
  try {
    await checkMasterKey(database, master);
    const now = options.clock ?? Date.now;
    await new SigningKeys(database.db, master, options.config?.earAlg ?? DEFAULT_CONFIG.earAlg, now).init();
    const token = await bootstrapToken(database.db, now());
    if (token) deliverBootstrapToken(options, token);
    await serverTls(options, host);
  } finally {
    await database.close();
  }
}

export interface WorkerPool {
  /** What the first worker reported, once all of them listen. */
  listening: WorkerListening;
  stop(): Promise<void>;
}

/** Fork `count` workers (each runs this same command) and keep them running until stop(). */
export async function runWorkers(count: number, logger: Logger): Promise<WorkerPool> {
  const workers = new Set<Worker>();
  let stopping = false;
  let listeningSeen = false;
  const reports: WorkerListening[] = [];
  let first: ((report: WorkerListening) => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  const listening = new Promise<WorkerListening>((resolve, reject) => {
    first = resolve;
    failed = reject;
  });
  const start = (): void => {
    const worker = cluster.fork({ SIGIL_BROKER_WORKER: '1' });
    workers.add(worker);
    worker.on('message', (message: WorkerListening) => {
      if (message?.type !== 'sigil-listening') return;
      reports.push(message);
      // Announce only when every worker listens: connections made before would all go to the
      // first one, and kept-alive connections stay where they landed.
      if (reports.length === count) first?.(reports[0]);
    });
    worker.once('exit', (code, signal) => {
      workers.delete(worker);
      if (stopping) return;
      if (!listeningSeen) {
        failed?.(new SigilError('env.worker_failed', `a broker worker exited before listening (${signal ?? code})`));
        return;
      }
      logger.error('broker worker died; starting another', { pid: worker.process.pid, code, signal });
      setTimeout(() => {
        if (!stopping) start();
      }, 1000).unref();
    });
  };
  for (let i = 0; i < count; i++) start();
  try {
    const report = await listening;
    listeningSeen = true;
    return {
      listening: report,
      async stop() {
        stopping = true;
        await Promise.all(
          [...workers].map(
            (worker) =>
              new Promise<void>((resolve) => {
                if (worker.isDead()) return resolve();
                worker.once('exit', () => resolve());
                worker.process.kill('SIGTERM');
              }),
          ),
        );
      },
    };
  } catch (error) {
    stopping = true;
    for (const worker of workers) worker.process.kill('SIGKILL');
    throw error;
  }
}

/** In a worker: tell the primary where this broker listens (it prints the banner once). */
export function reportListening(report: Omit<WorkerListening, 'type'>): void {
  if (cluster.isWorker) process.send?.({ type: 'sigil-listening', ...report });
}

export function isBrokerWorker(): boolean {
  return cluster.isWorker && process.env.SIGIL_BROKER_WORKER === '1';
}
