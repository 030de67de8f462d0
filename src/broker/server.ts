import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { SigilError } from '../core/errors.ts';
import { directoryCacheStore, openCollateralBundle } from '../evidence/collateral/node-files.ts';
import { OnlineCollateral } from '../evidence/collateral/online.ts';
import { firstOf, type CollateralProvider } from '../evidence/collateral/provider.ts';
import { defaultEvidenceKinds } from '../evidence/kinds.ts';
import type { SnpProduct } from '../evidence/snp/product.ts';
import { createApp } from './app.ts';
import { AuditBatcher } from './audit-batch.ts';
import { IssuedEars } from './ear-jws.ts';
import { bootstrapToken } from './auth.ts';
import type { BrokerConfig, BrokerContext } from './context.ts';
import { EventBus } from './events.ts';
import { createLogger, type Logger, type LogLevel } from './logger.ts';
import { loadMasterKey, type MasterKey } from './master-key.ts';
import { Metrics } from './metrics.ts';
import { SigningKeys } from './signing-keys.ts';
import { openDatabase, type BrokerDatabase } from './store/database.ts';
import { ensureTls, providedTls } from './tls.ts';
import type { EarAlgorithm } from '../policy/ear.ts';

export interface BrokerOptions {
  dataDir: string;
  /** HOST:PORT; default 127.0.0.1:8443. Port 0 picks a free port. */
  listen?: string;
  /** postgres://… for PostgreSQL; default SQLite in the data directory. */
  db?: string;
  dbPoolSize?: number;
  /** Plain HTTP: refused unless the host is a loopback address. */
  insecureHttp?: boolean;
  /** The operator's own certificate chain and key (PEM) instead of the local CA. */
  tlsCertFile?: string;
  tlsKeyFile?: string;
  masterKeyFile?: string;
  masterKeyTpm?: string;
  masterKeyTpmPcrs?: string;
  /** Write the first-start admin token to this file (0600) instead of printing it. */
  bootstrapTokenFile?: string;
  logLevel?: LogLevel;
  logger?: Logger;
  config?: Partial<BrokerConfig>;
  /** Tests move time forward; production uses Date.now. */
  clock?: () => number;
  /** Called once with the bootstrap token on a fresh database (default: printed to stderr). */
  onBootstrapToken?: (token: string) => void;
  /** An offline collateral bundle (directory or single-file JSON, src/evidence/collateral/README.md). */
  collateralDir?: string;
  /** Fetch missing collateral from AMD KDS and Intel PCS (cached under DATA/collateral-cache). Off by default. */
  collateralOnline?: boolean;
  /** A collateral provider built by the caller (tests); used before the bundle and the network. */
  collateral?: CollateralProvider;
  /** The SEV-SNP product assumed for version-2 reports that name none. */
  snpProduct?: SnpProduct;
}

export interface RunningBroker {
  url: string;
  port: number;
  host: string;
  tls: boolean;
  caPem?: string;
  caFile?: string;
  caFingerprint?: string;
  bootstrapToken?: string;
  context: BrokerContext;
  close(): Promise<void>;
}

export const DEFAULT_CONFIG: BrokerConfig = { earTtlSeconds: 300, nonceTtlSeconds: 120, earAlg: 'ES256' as EarAlgorithm, eventPollMs: 500, attestationRetentionMs: 7 * 24 * 3600 * 1000 };

export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new SigilError('cli.usage_listen', `--listen must be HOST:PORT, not "${listen}"`);
  return { host: match[1] ?? match[2], port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export async function checkMasterKey(database: BrokerDatabase, master: MasterKey): Promise<void> {
  await database.db.insertInto('meta').values({ key: 'master_key_id', value: master.id }).onConflict((oc) => oc.column('key').doNothing()).execute();
  const row = await database.db.selectFrom('meta').select('value').where('key', '=', 'master_key_id').executeTakeFirstOrThrow();
  if (row.value !== master.id) {
    throw new SigilError('env.master_key_mismatch', `this database was set up with master key ${row.value}, not ${master.id}: start with the same key (SIGIL_MASTER_KEY, --master-key-file or --master-key-tpm)`, {
      expected: row.value,
      actual: master.id,
    });
  }
}

/** The first start's admin token: to the file, the callback, or stderr (shown once). */
export function deliverBootstrapToken(options: Pick<BrokerOptions, 'bootstrapTokenFile' | 'onBootstrapToken'>, token: string): void {
  if (options.bootstrapTokenFile) writeFileSync(options.bootstrapTokenFile, `${token}\n`, { mode: 0o600 });
  else if (options.onBootstrapToken) options.onBootstrapToken(token);
  else process.stderr.write(`\nSigil bootstrap admin token (shown once, keep it safe):\n  ${token}\n\n`);
}

/** The server certificate: the operator's, or the local CA's (made on first start); none with --insecure-http. */
export async function serverTls(options: BrokerOptions, host: string) {
  if (options.insecureHttp) return undefined;
  return options.tlsCertFile && options.tlsKeyFile ? providedTls(options.tlsCertFile, options.tlsKeyFile) : ensureTls(options.dataDir, host);
}

/** The configured collateral: the caller's provider, then the offline bundle, then (if enabled) the vendors' services. */
async function collateralProvider(options: BrokerOptions): Promise<{ provider?: CollateralProvider; description: Record<string, unknown> }> {
  const providers: CollateralProvider[] = [];
  const description: Record<string, unknown> = { bundle: options.collateralDir ?? null, online: options.collateralOnline === true };
  if (options.collateral) providers.push(options.collateral);
  if (options.collateralDir) {
    providers.push(await openCollateralBundle(options.collateralDir));
  }
  if (options.collateralOnline) {
    providers.push(new OnlineCollateral({ store: directoryCacheStore(path.join(options.dataDir, 'collateral-cache')) }));
  }
  return { provider: providers.length === 0 ? undefined : providers.length === 1 ? providers[0] : firstOf(...providers), description };
}

export async function startBroker(options: BrokerOptions): Promise<RunningBroker> {
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:8443');
  if (options.insecureHttp && !isLoopback(host)) {
    throw new SigilError('cli.usage_insecure_http', `--insecure-http serves plain HTTP on loopback only, not on ${host}: use TLS`);
  }
  const logger = options.logger ?? createLogger(options.logLevel ?? 'info');
  const collateral = await collateralProvider(options);
  const now = options.clock ?? Date.now;
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const master = await loadMasterKey({ dataDir: options.dataDir, file: options.masterKeyFile, tpm: options.masterKeyTpm, tpmPcrs: options.masterKeyTpmPcrs });
  const database = await openDatabase({ url: options.db, dataDir: options.dataDir, poolSize: options.dbPoolSize });
  const config: BrokerConfig = { ...DEFAULT_CONFIG, ...options.config };
  const kinds = defaultEvidenceKinds({ ...(collateral.provider ? { collateral: collateral.provider } : {}), ...(options.snpProduct ? { snpProduct: options.snpProduct } : {}) });
  let events: EventBus | undefined;
  try {
    await checkMasterKey(database, master);
    const keys = new SigningKeys(database.db, master, config.earAlg, now);
    await keys.init();
    events = new EventBus({ db: database.db, master, logger, now, pollMs: config.eventPollMs });
    const metrics = new Metrics();
    const audit = new AuditBatcher(database.db, { dialect: database.dialect, macKey: master.derive('audit-mac'), now });
    const ctx: BrokerContext = { database, db: database.db, master, keys, events, audit, logger, metrics, config, kinds, issuedEars: new IssuedEars(), now, replicaId: randomUUID().slice(0, 8) };
    metrics.gauge('sigil_event_subscribers', 'Open SSE streams', () => ctx.events.subscribers);
    const token = await bootstrapToken(database.db, now());
    if (token) deliverBootstrapToken(options, token);
    const tls = await serverTls(options, host);
    const app = createApp(ctx);
    const server = tls
      ? serve({ fetch: app.fetch, hostname: host, port, createServer: createHttpsServer, serverOptions: { key: tls.keyPem, cert: tls.certPem } })
      : serve({ fetch: app.fetch, hostname: host, port, createServer: createHttpServer });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', (error) => reject(new SigilError('env.listen_failed', `cannot listen on ${host}:${port}: ${error.message}`, { host, port }, { cause: error })));
    });
    events.start();
    const janitor = setInterval(() => void sweep(ctx).catch((error) => logger.warn('cleanup failed', { error: String(error) })), 60_000);
    janitor.unref();
    const actualPort = (server.address() as AddressInfo).port;
    const urlHost = host.includes(':') ? `[${host}]` : host;
    const url = `${tls ? 'https' : 'http'}://${urlHost}:${actualPort}`;
    logger.info('broker listening', { url, database: database.dialect, location: database.location, replica: ctx.replicaId, kinds: [...kinds.keys()], collateral: collateral.description, masterKey: { id: master.id, source: master.source }, tls: tls ? { caFingerprint: tls.caFingerprint, caFile: tls.caFile } : 'off (--insecure-http)' });
    if (!tls) logger.warn('PLAIN HTTP: --insecure-http is on; anything on this machine can read tokens and secrets in transit', { url });
    let closing: Promise<void> | undefined;
    return {
      url,
      port: actualPort,
      host,
      tls: tls !== undefined,
      caPem: tls?.caPem,
      caFile: tls?.caFile,
      caFingerprint: tls?.caFingerprint,
      bootstrapToken: token,
      context: ctx,
      close() {
        closing ??= (async () => {
          clearInterval(janitor);
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          await closed;
          await ctx.events.stop();
          await ctx.audit.settle();
          await database.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await events?.stop();
    await database.close().catch(() => undefined);
    throw error;
  }
}

/** Drop expired nonces and enrolments, old attestation records and delivered events. */
async function sweep(ctx: BrokerContext): Promise<void> {
  const now = ctx.now();
  await ctx.db.deleteFrom('nonces').where('expires_at', '<', now).execute();
  await ctx.db.deleteFrom('enrolments').where('expires_at', '<', now).execute();
  await ctx.db.deleteFrom('attestations').where('at', '<', now - ctx.config.attestationRetentionMs).execute();
  await ctx.db.deleteFrom('events').where('created_at', '<', now - 24 * 3600 * 1000).execute();
}
