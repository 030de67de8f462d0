/**
 * `npm test` after setup: type-check and lint, run every test file, then prove that no swtpm
 * process the run started is still alive (issue acceptance: "no swtpm process survives").
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

// The tests get a temporary folder of their own (TMPDIR): every swtpm they start keeps its state
// below it, which tells their processes apart from any other swtpm on the machine.
const runDir = mkdtempSync(join(tmpdir(), 'sigil-test-run-'));
// Like /tmp itself (sticky, world-writable): tests run PostgreSQL as an unprivileged user below it.
chmodSync(runDir, 0o1777);

function ourSwtpmPids(): number[] {
  try {
    return execFileSync('pgrep', ['-af', 'swtpm'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(runDir))
      .map((line) => Number(line.split(' ')[0]));
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}
const check = spawnSync(process.execPath, ['scripts/check.ts'], { cwd: root, stdio: 'inherit' });
if (check.status !== 0) process.exit(1);

const args = ['--test', '--test-concurrency=1', ...(process.argv.slice(2).length ? process.argv.slice(2) : ['test/**/*.test.ts'])];
const tests = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env: { ...process.env, TMPDIR: runDir } });

// Give exiting instances a moment to be reaped before judging.
await new Promise((resolve) => setTimeout(resolve, 300));
const leftover = ourSwtpmPids();
rmSync(runDir, { recursive: true, force: true });
if (leftover.length > 0) {
  console.error(`test: ${leftover.length} swtpm process(es) survived the run: ${leftover.join(', ')}`);
  process.exit(1);
}
console.log('test: no swtpm process survived the run');
process.exit(tests.status ?? 1);
