/** `npm test` runs this first: type-check and lint, so a red build never reaches the tests. */
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
for (const [label, args] of [
  ['typecheck', ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.']],
  ['lint', ['scripts/lint.ts']],
] as const) {
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`check: ${label} failed`);
    process.exit(1);
  }
}
console.log('check: typecheck and lint passed');
