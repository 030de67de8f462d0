/** `sigil serve` as a real child process, for crash, restart and multi-replica tests. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = new URL('../../../', import.meta.url).pathname;
const MAIN = path.join(ROOT, 'src/cli/main.ts');

export interface BrokerProcess {
  child: ChildProcess;
  url: string;
  caPem: string;
  /** The bootstrap token, when this process was the first on its database. */
  bootstrapToken?: string;
  output: string[];
  kill(signal: NodeJS.Signals): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

export async function spawnBroker(options: { dataDir: string; db?: string; listen?: string; extra?: string[]; env?: NodeJS.ProcessEnv; nodeOptions?: string[] }): Promise<BrokerProcess> {
  const tokenFile = path.join(options.dataDir, `bootstrap-${Date.now()}-${Math.random().toString(16).slice(2)}.token`);
  const args = [...(options.nodeOptions ?? []), MAIN, 'serve', '--data', options.dataDir, '--listen', options.listen ?? '127.0.0.1:0', '--bootstrap-token-file', tokenFile, '--log-level', 'info', ...(options.db ? ['--db', options.db] : []), ...(options.extra ?? [])];
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => children.delete(child));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start within 30 s:\n${output.join('')}`)), 30_000);
    // `sigil serve` says where it listens on stderr once ready, whatever the log level.
    let errText = '';
    child.stdout!.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => {
      output.push(chunk.toString());
      errText += chunk.toString();
      const match = /Sigil broker on (\S+)/.exec(errText);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`broker exited before listening (${child.exitCode ?? child.signalCode}):\n${output.join('')}`));
    });
  });
  return {
    child,
    url,
    caPem: existsSync(path.join(options.dataDir, 'tls', 'ca.pem')) ? readFileSync(path.join(options.dataDir, 'tls', 'ca.pem'), 'utf8') : '',
    bootstrapToken: existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined,
    output,
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** Run the CLI to completion (e.g. `audit verify`). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
