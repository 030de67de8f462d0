import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runBrokerDemo } from '../../src/broker/demo-steps.ts';

test('the broker demo walks enrol → attest → secret → revoke → refused, and stops everything', async () => {
  const seen: string[] = [];
  const steps = await runBrokerDemo({ onStep: (s) => seen.push(s.step) });
  assert.deepEqual(
    steps.map((s) => s.step),
    ['start swtpm and a broker', 'configure tenant "demo"', 'enrol the TPM', 'attest', 'receive the secret', 'revoke the device', 'be refused'],
  );
  assert.deepEqual(seen, steps.map((s) => s.step));
  assert.match(steps.at(-1)!.detail, /broker\.revoked, rule revocation\.device/);
  assert.match(steps[4].detail, /correct horse/);
});
