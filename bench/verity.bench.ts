/**
 * `npm run bench:verity`: whole-process `sigil verity format` against `veritysetup format` on the
 * same file (1 GiB by default; BENCH_VERITY_MIB for quick runs), same salt and UUID, several runs
 * in alternating order, medians. The hash files must be byte-identical, or the run is invalid.
 *
 * Also printed: the same command with Node started directly on src/cli/main.ts (without the sh
 * wrappers scripts/sigil and scripts/node.sh), Sigil's in-process format time (no process at
 * all), the CLI's start-up alone (`sigil verity --help`), and the SHA-256 ceiling of this
 * machine — `openssl speed -evp sha256` on 4 KiB blocks × cores — with the fraction of it each
 * way reaches.
 * Ratio `format_vs_veritysetup` = veritysetup time / sigil time (goal ≥ 1.5 on 2 cores).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatVerity } from '../src/image/verity/format.ts';
import { printResult, round } from './support.ts';

const MIB = 1024 * 1024;
const sizeMiB = Number(process.env.BENCH_VERITY_MIB ?? 1024);
const runs = Number(process.env.BENCH_VERITY_RUNS ?? 5);
const SALT = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const UUID = '0b5e1f0c-7d7e-4c1a-9d8b-3f2a1e0c9b8a';
const SIGIL = new URL('../scripts/sigil', import.meta.url).pathname;
const MAIN = new URL('../src/cli/main.ts', import.meta.url).pathname;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Share of CPU time idle over `ms` (from /proc/stat), or 1 where that file does not exist. */
async function idleFraction(ms: number): Promise<number> {
  const sample = () => {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    return { idle: fields[3] + fields[4], total: fields.reduce((a, b) => a + b, 0) };
  };
  try {
    const a = sample();
    await new Promise((r) => setTimeout(r, ms));
    const b = sample();
    return (b.idle - a.idle) / Math.max(1, b.total - a.total);
  } catch {
    return 1;
  }
}

/**
 * On a shared machine other work skews timings: before each timed run wait (up to
 * BENCH_IDLE_WAIT_S seconds, default 30) for a moment when the CPUs are at least 90% idle.
 */
let noisyRuns = 0;
async function waitForQuiet(): Promise<void> {
  const deadline = performance.now() + 1000 * Number(process.env.BENCH_IDLE_WAIT_S ?? 30);
  while (performance.now() < deadline) if ((await idleFraction(300)) >= 0.9) return;
  noisyRuns++;
}

/** Wall time of one process run, in seconds; it must succeed. */
function timed(command: string, args: string[]): number {
  const start = performance.now();
  const r = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const seconds = (performance.now() - start) / 1000;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.stderr}`);
  return seconds;
}

/** Bytes per second of one core hashing 4 KiB blocks with SHA-256 (`openssl speed`, machine-readable). */
function opensslSha256PerCore(): number {
  const out = execFileSync('openssl', ['speed', '-mr', '-evp', 'sha256', '-seconds', '2', '-bytes', '4096'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  // "+F:<n>:sha256:<bytes per second for each size>"
  const line = out.split('\n').find((l) => l.startsWith('+F:'));
  const value = Number(line?.split(':').at(-1));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`cannot parse openssl speed output:\n${out}`);
  return value;
}

function writeData(path: string, bytes: number): void {
  const cipher = createCipheriv('aes-256-ctr', Buffer.alloc(32, 7), Buffer.alloc(16));
  const zeros = Buffer.alloc(16 * MIB);
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes; done += zeros.length) writeSync(fd, cipher.update(zeros.subarray(0, Math.min(zeros.length, bytes - done))));
  } finally {
    closeSync(fd);
  }
}

const work = mkdtempSync(join(tmpdir(), 'sigil-bench-verity-'));
try {
  const data = join(work, 'data.img');
  const bytes = sizeMiB * MIB;
  writeData(data, bytes);
  readFileSync(data); // warm the page cache: both tools read from memory
  const cores = availableParallelism();
  console.log(`data: ${sizeMiB} MiB in ${work}; ${cores} cores; ${runs} runs each`);

  const veritysetupTimes: number[] = [];
  const sigilTimes: number[] = [];
  const directTimes: number[] = [];
  const args = (hash: string) => ['format', data, hash, '--salt', SALT, '--uuid', UUID];
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? ['veritysetup', 'sigil', 'direct'] : ['direct', 'sigil', 'veritysetup'];
    for (const who of order) {
      const hash = join(work, `${who}.hash`);
      rmSync(hash, { force: true });
      await waitForQuiet();
      if (who === 'veritysetup') veritysetupTimes.push(timed('veritysetup', args(hash)));
      else if (who === 'sigil') sigilTimes.push(timed('sh', [SIGIL, 'verity', ...args(hash)]));
      else directTimes.push(timed(process.execPath, [MAIN, 'verity', ...args(hash)]));
    }
  }
  for (const who of ['sigil', 'direct']) {
    if (Buffer.compare(readFileSync(join(work, 'veritysetup.hash')), readFileSync(join(work, `${who}.hash`))) !== 0) throw new Error('hash files differ: the run is invalid');
  }

  const inProcessTimes: number[] = [];
  for (let i = 0; i < runs; i++) {
    await waitForQuiet();
    const start = performance.now();
    await formatVerity(data, join(work, 'inprocess.hash'), { salt: Buffer.from(SALT, 'hex'), uuid: UUID });
    inProcessTimes.push((performance.now() - start) / 1000);
  }
  const startupTimes: number[] = [];
  for (let i = 0; i < runs; i++) {
    await waitForQuiet();
    startupTimes.push(timed('sh', [SIGIL, 'verity', '--help']));
  }

  const perCore = opensslSha256PerCore();
  const ceiling = perCore * cores;
  const vs = median(veritysetupTimes);
  const sg = median(sigilTimes);
  const direct = median(directTimes);
  const inProcess = median(inProcessTimes);
  const startup = median(startupTimes);
  const mbps = (seconds: number) => bytes / seconds / 1e6;

  console.log(`veritysetup format     median ${vs.toFixed(3)} s  (${mbps(vs).toFixed(0)} MB/s)  runs ${veritysetupTimes.map((t) => t.toFixed(3)).join(' ')}`);
  console.log(`sigil verity format    median ${sg.toFixed(3)} s  (${mbps(sg).toFixed(0)} MB/s)  runs ${sigilTimes.map((t) => t.toFixed(3)).join(' ')}`);
  console.log(`  node main.ts directly median ${direct.toFixed(3)} s  (${mbps(direct).toFixed(0)} MB/s, no sh wrappers)  runs ${directTimes.map((t) => t.toFixed(3)).join(' ')}`);
  console.log(`  in-process format    median ${inProcess.toFixed(3)} s  (${mbps(inProcess).toFixed(0)} MB/s)  runs ${inProcessTimes.map((t) => t.toFixed(3)).join(' ')}`);
  console.log(`  CLI start-up alone   median ${startup.toFixed(3)} s  (sigil verity --help)`);
  console.log(`SHA-256 ceiling: openssl speed 4 KiB ${(perCore / 1e6).toFixed(0)} MB/s per core × ${cores} = ${(ceiling / 1e6).toFixed(0)} MB/s`);
  console.log(`  reached: whole process ${((100 * mbps(sg) * 1e6) / ceiling).toFixed(0)}%, in-process ${((100 * mbps(inProcess) * 1e6) / ceiling).toFixed(0)}%, veritysetup ${((100 * mbps(vs) * 1e6) / ceiling).toFixed(0)}%`);
  if (noisyRuns > 0) console.log(`note: ${noisyRuns} timed run(s) started while the machine was busy (other work on the CPUs): figures are pessimistic`);
  console.log(`ratio veritysetup / sigil: ${(vs / sg).toFixed(2)} (goal ≥ 1.5); node directly ${(vs / direct).toFixed(2)}; in-process ${(vs / inProcess).toFixed(2)}`);

  printResult(
    'verity',
    {
      size_mib: sizeMiB,
      cores,
      runs,
      noisy_runs: noisyRuns,
      veritysetup_s: round(vs, 3),
      sigil_s: round(sg, 3),
      sigil_direct_node_s: round(direct, 3),
      sigil_in_process_s: round(inProcess, 3),
      sigil_startup_s: round(startup, 3),
      sha256_ceiling_mb_s: round(ceiling / 1e6, 0),
      ceiling_fraction_sigil: round((bytes / sg) / ceiling, 3),
      ceiling_fraction_in_process: round((bytes / inProcess) / ceiling, 3),
      ceiling_fraction_veritysetup: round((bytes / vs) / ceiling, 3),
    },
    { format_vs_veritysetup: round(vs / sg, 2), format_direct_node_vs_veritysetup: round(vs / direct, 2), format_in_process_vs_veritysetup: round(vs / inProcess, 2) },
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
