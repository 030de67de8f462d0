/**
 * `npm test` after setup: type-check and lint, run every test file, then prove that no swtpm
 * process the run started is still alive (issue acceptance: "no swtpm process survives").
 */
import { execFileSync, spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;

function swtpmPids(): Set<number> {
  try {
    return new Set(execFileSync('pgrep', ['-x', 'swtpm'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number));
  } catch {
    return new Set(); // pgrep exits 1 when nothing matches
  }
}

const before = swtpmPids();
const check = spawnSync(process.execPath, ['scripts/check.ts'], { cwd: root, stdio: 'inherit' });
if (check.status !== 0) process.exit(1);

const args = ['--test', '--test-concurrency=1', ...(process.argv.slice(2).length ? process.argv.slice(2) : ['test/**/*.test.ts'])];
const tests = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });

// Give exiting instances a moment to be reaped before judging.
await new Promise((resolve) => setTimeout(resolve, 300));
const leftover = [...swtpmPids()].filter((pid) => !before.has(pid));
if (leftover.length > 0) {
  console.error(`test: ${leftover.length} swtpm process(es) survived the run: ${leftover.join(', ')}`);
  process.exit(1);
}
console.log('test: no swtpm process survived the run');
process.exit(tests.status ?? 1);
