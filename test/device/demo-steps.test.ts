/**
 * The device part of `sigil demo` (src/device/demo-steps.ts) runs end to end on two swtpm
 * machines, reports each step in order, and leaves no swtpm behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runDeviceDemo, type DemoStep } from '../../src/device/demo-steps.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('provision two machines, sign a policy, boot-unseal, lock-out, reboot, unseal again', async () => {
  const seen: DemoStep[] = [];
  const pids: number[] = [];
  const steps = await runDeviceDemo({ onStep: (s) => seen.push(s), onMachine: (m) => pids.push(m.pid) });
  assert.equal(pids.length, 2, 'two swtpm machines');
  assert.deepEqual(
    steps.map((s) => s.step),
    [
      'create a vendor keyset',
      'provision machine A',
      'provision machine B',
      "seal each machine's disk passphrase",
      'sign a boot policy offline',
      'boot-unseal on machine A',
      'boot-unseal on machine B',
      'unseal again in the same boot',
      'reboot machine A, unseal again',
    ],
  );
  assert.deepEqual(seen, steps, 'each step was reported as it finished');
  assert.match(steps[7].detail, /refused: .*\[device\.locked_out\]/);
  assert.match(steps[5].detail, /"disk passphrase of…" released, PCR 15 extended/);
  assert.ok(steps.every((s) => Number.isInteger(s.ms) && s.ms >= 0));
  assert.deepEqual(pids.filter(alive), [], 'both swtpm machines were stopped');
});
