/**
 * The bundle part of `sigil demo` (src/bundle/demo-steps.ts) runs end to end on two swtpm
 * machines, reports each step in order, and leaves no swtpm behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runBundleDemo, type DemoStep } from '../../src/bundle/demo-steps.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('seal a bundle to two machines, open on each, revoke one, re-key, open on the other, the revoked one is refused', async () => {
  const seen: DemoStep[] = [];
  const pids: number[] = [];
  const steps = await runBundleDemo({ onStep: (s) => seen.push(s), onMachine: (m) => pids.push(m.pid) });
  assert.equal(pids.length, 2, 'two swtpm machines');
  assert.deepEqual(
    steps.map((s) => s.step),
    [
      'provision two machines',
      'seal a bundle to both',
      'open on machine A',
      'open on machine B',
      'revoke machine B, re-key',
      'open the re-keyed bundle on machine A',
      'open the re-keyed bundle on machine B',
    ],
  );
  assert.deepEqual(seen, steps, 'each step was reported as it finished');
  assert.match(steps[4].detail, /^epoch 2: a new data key, wrapped for DEMO-B-0001 only$/);
  assert.match(steps[6].detail, /^refused: .*\[bundle\.not_a_recipient\]$/);
  assert.ok(steps.every((s) => Number.isInteger(s.ms) && s.ms >= 0));
  for (const pid of pids) assert.equal(alive(pid), false, `swtpm ${pid} was stopped`);
});
