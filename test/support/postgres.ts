/**
 * A private, throw-away PostgreSQL cluster for tests: initdb into a temporary folder, pg_ctl start
 * on a free loopback port with its socket in that folder, fsync off; always stopped (stop(), or
 * on process exit). initdb refuses to run as root, so as root the cluster belongs to `nobody`.
 * Tests skip with a reason only when the PostgreSQL binaries are absent (CI installs them).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface PostgresCluster {
  port: number;
  /** Connection URL of the default "postgres" database. */
  url: string;
  /** Create a fresh database and return its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (process.env.PG_BINDIR && existsSync(path.join(process.env.PG_BINDIR, 'initdb'))) return process.env.PG_BINDIR;
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(path.join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(base, versions[0], 'bin') : undefined;
}

/** node:test options: skip the suite when PostgreSQL is not installed. */
export function postgresTest(): { skip: string | false } {
  return { skip: postgresBinDir() ? false : 'PostgreSQL binaries are not installed (apt-get install postgresql, or npm run setup)' };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const live = new Set<{ dataDir: string; dir: string }>();
let exitHookInstalled = false;

function killSync(entry: { dataDir: string; dir: string }): void {
  try {
    const pid = Number(readFileSync(path.join(entry.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (pid > 0) process.kill(pid, 'SIGQUIT'); // immediate shutdown
  } catch {
    // not running
  }
  rmSync(entry.dir, { recursive: true, force: true });
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL binaries are not installed');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-pg-'));
  const dataDir = path.join(dir, 'data');
  let uid: number | undefined;
  if (asRoot) {
    uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    chmodSync(dir, 0o700);
  }
  const run = (tool: string, args: string[]) => {
    const command = asRoot ? 'runuser' : path.join(bin, tool);
    const fullArgs = asRoot ? ['-u', 'nobody', '--', path.join(bin, tool), ...args] : args;
    const result = spawnSync(command, fullArgs, { encoding: 'utf8', cwd: dir, timeout: 60_000 });
    if (result.status !== 0) throw new Error(`${tool} failed (${result.status}): ${result.stderr || result.stdout}`);
  };
  const entry = { dataDir, dir };
  try {
    run('initdb', ['-D', dataDir, '-U', 'sigil', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const e of live) killSync(e);
      });
    }
    live.add(entry);
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      try {
        run('pg_ctl', ['-D', dataDir, '-l', path.join(dir, 'postgres.log'), '-w', '-t', '30', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`, 'start']);
        break;
      } catch (error) {
        if (attempt >= 2) throw error; // most likely a port race
      }
    }
    const url = `postgres://sigil@127.0.0.1:${port}/postgres`;
    return {
      port,
      url,
      async createDatabase(name: string) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
        } finally {
          await client.end();
        }
        return `postgres://sigil@127.0.0.1:${port}/${name}`;
      },
      async stop() {
        if (!live.has(entry)) return;
        live.delete(entry);
        try {
          run('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
        } catch {
          killSync(entry);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    live.delete(entry);
    killSync(entry);
    throw error;
  }
}
