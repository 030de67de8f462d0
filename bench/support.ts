/**
 * Shared bench helpers: timing loops, peer-process runs, and the closing JSON line every bench
 * prints (DESIGN.md section 6): {"bench": name, "figures": {...}, "ratios": {...}}.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface Rate {
  ops: number;
  seconds: number;
  opsPerSecond: number;
  msPerOp: number;
}

/** Run `op` until `budgetMs` has passed (at least `minOps` times) after `warmup` untimed runs. */
export async function measure(op: () => Promise<unknown>, budgetMs = 1500, minOps = 5, warmup = 2): Promise<Rate> {
  for (let i = 0; i < warmup; i++) await op();
  const start = performance.now();
  let ops = 0;
  while (ops < minOps || performance.now() - start < budgetMs) {
    await op();
    ops++;
  }
  const seconds = (performance.now() - start) / 1000;
  return { ops, seconds, opsPerSecond: ops / seconds, msPerOp: (seconds * 1000) / ops };
}

export async function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await execFileAsync(command, args, { env, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function printResult(bench: string, figures: Record<string, number>, ratios: Record<string, number>): void {
  console.log(JSON.stringify({ bench, figures, ratios }));
}
