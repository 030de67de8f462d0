import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { createToken } from '../broker/auth.ts';
import { createLogger, type LogLevel } from '../broker/logger.ts';
import { isBrokerWorker, prepareBroker, reportListening, runWorkers } from '../broker/workers.ts';
import { startBroker } from '../broker/server.ts';
import { openDatabase } from '../broker/store/database.ts';
import { SigilError } from '../core/errors.ts';
import type { SnpProduct } from '../evidence/snp/product.ts';
import type { EarAlgorithm } from '../policy/ear.ts';

/** Where the broker keeps its state unless told: $SIGIL_DATA_DIR, else $XDG_DATA_HOME/sigil/broker. */
export function defaultDataDir(): string {
  if (process.env.SIGIL_DATA_DIR) return process.env.SIGIL_DATA_DIR;
  const base = process.env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'sigil', 'broker');
}

interface ServeOptions {
  data: string;
  listen: string;
  db?: string;
  dbPool: string;
  insecureHttp?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  masterKeyFile?: string;
  masterKeyTpm?: string;
  masterKeyPcrs: string;
  bootstrapTokenFile?: string;
  earTtl: string;
  earAlg: string;
  logLevel: string;
  newAdminToken?: boolean;
  collateral?: string;
  collateralOnline?: boolean;
  snpProduct?: string;
  workers: string;
}

function positive(text: string, what: string, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) throw new SigilError('cli.usage_number', `${what} must be a whole number 1..${max}, not "${text}"`);
  return value;
}

/** Resolve after SIGINT or SIGTERM, once `stop` finished. */
function untilSignal(stop: (signal: string) => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const handle = (signal: string) => void stop(signal).then(resolve, resolve);
    process.once('SIGINT', () => handle('SIGINT'));
    process.once('SIGTERM', () => handle('SIGTERM'));
  });
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the broker: attestation, EAR tokens, secret release, admin API (TLS on by default)')
    .option('--data <dir>', 'data directory: SQLite database, TLS CA and certificate, master key', defaultDataDir())
    .option('--listen <host:port>', 'address to listen on', '127.0.0.1:8443')
    .option('--db <url>', 'postgres://user@host:port/db for PostgreSQL (several replicas); default SQLite in --data')
    .option('--db-pool <n>', 'PostgreSQL connections per process (fixed upper bound)', '10')
    .option('--insecure-http', 'INSECURE: plain HTTP instead of TLS, allowed on loopback only')
    .option('--tls-cert <file>', 'your own server certificate chain (PEM) instead of the local CA')
    .option('--tls-key <file>', 'the key for --tls-cert (PEM)')
    .option('--master-key-file <file>', 'master key file (32 bytes, hex or base64, mode 0600); or set SIGIL_MASTER_KEY')
    .option('--master-key-tpm <uri>', 'seal the master key to this TPM (swtpm://…, device:///dev/tpmrm0)')
    .option('--master-key-pcrs <spec>', 'PCRs the TPM-sealed master key is bound to', 'sha256:7')
    .option('--bootstrap-token-file <file>', 'write the first-start admin token to this file (0600) instead of printing it')
    .option('--ear-ttl <seconds>', 'lifetime of attestation results (EAR) and so of every lease', '300')
    .option('--ear-alg <alg>', 'EAR signature algorithm: ES256 or ES384', 'ES256')
    .option('--collateral <dir>', 'offline collateral bundle for SNP/TDX evidence: a directory or a single-file JSON bundle (AMD chains, CRLs, VCEKs; Intel TCB info, QE identity, CRLs)')
    .option('--collateral-online', 'fetch missing collateral from AMD KDS and Intel PCS, cached in the data directory (off by default)')
    .option('--snp-product <name>', 'SEV-SNP product assumed for version-2 reports that name none: Milan, Genoa or Turin')
    .option('--workers <n>', 'broker processes sharing the listening socket and the database (one per core)', '1')
    .option('--log-level <level>', 'debug, info, warn, error', 'info')
    .option('--new-admin-token', 'print a new admin token and exit (recovery: needs access to the data directory or database)')
    .action(async (options: ServeOptions) => {
      if (options.newAdminToken) {
        const database = await openDatabase({ url: options.db, dataDir: options.data, poolSize: 1 });
        try {
          const { token } = await createToken(database.db, { role: 'admin', tenant: null, name: `cli-${new Date().toISOString()}` }, Date.now());
          process.stdout.write(`${token}\n`);
        } finally {
          await database.close();
        }
        return;
      }
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) throw new SigilError('cli.usage_tls', '--tls-cert and --tls-key go together');
      if (!['ES256', 'ES384'].includes(options.earAlg)) throw new SigilError('cli.usage_ear_alg', `--ear-alg must be ES256 or ES384, not ${options.earAlg}`);
      if (!['debug', 'info', 'warn', 'error'].includes(options.logLevel)) throw new SigilError('cli.usage_log_level', `--log-level must be debug, info, warn or error`);
      if (options.snpProduct !== undefined && !['Milan', 'Genoa', 'Turin'].includes(options.snpProduct)) throw new SigilError('cli.usage_snp_product', `--snp-product must be Milan, Genoa or Turin, not ${options.snpProduct}`);
      const brokerOptions = {
        collateralDir: options.collateral,
        collateralOnline: options.collateralOnline,
        snpProduct: options.snpProduct as SnpProduct | undefined,
        dataDir: options.data,
        listen: options.listen,
        db: options.db,
        dbPoolSize: positive(options.dbPool, '--db-pool', 1000),
        insecureHttp: options.insecureHttp,
        tlsCertFile: options.tlsCert,
        tlsKeyFile: options.tlsKey,
        masterKeyFile: options.masterKeyFile,
        masterKeyTpm: options.masterKeyTpm,
        masterKeyTpmPcrs: options.masterKeyPcrs,
        bootstrapTokenFile: options.bootstrapTokenFile,
        logLevel: options.logLevel as LogLevel,
        config: { earTtlSeconds: positive(options.earTtl, '--ear-ttl', 86400), earAlg: options.earAlg as EarAlgorithm },
      };
      const workers = positive(options.workers, '--workers', 64);
      const banner = (report: { url: string; tls: boolean; caFile?: string; caFingerprint?: string }, extra = '') =>
        process.stderr.write(
          report.tls ? `Sigil broker on ${report.url}${extra}\n  CA certificate: ${report.caFile}\n  CA SHA-256 fingerprint: ${report.caFingerprint}\n` : `Sigil broker on ${report.url}${extra} — PLAIN HTTP (--insecure-http)\n`,
        );
      if (workers > 1 && !isBrokerWorker()) {
        // The primary: first-start work once, then the workers; it serves nothing itself.
        await prepareBroker(brokerOptions);
        const logger = createLogger(options.logLevel as LogLevel);
        const pool = await runWorkers(workers, logger);
        banner(pool.listening, ` (${workers} workers)`);
        await untilSignal((signal) => {
          logger.info('shutting down', { signal, workers });
          return pool.stop();
        });
        return;
      }
      const broker = await startBroker(brokerOptions);
      const report = { url: broker.url, tls: broker.tls, caFile: broker.caFile, caFingerprint: broker.caFingerprint };
      if (isBrokerWorker()) reportListening(report);
      else banner(report);
      await untilSignal((signal) => {
        broker.context.logger.info('shutting down', { signal });
        return broker.close();
      });
      // A worker's IPC channel to the primary would keep it alive.
      if (isBrokerWorker()) process.disconnect?.();
    });
}
