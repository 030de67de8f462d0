import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSwtpm } from '../../../src/tpm/swtpm-process.ts';
import type { SwtpmInstance } from '../../../src/tpm/swtpm-process.ts';
import { SWTPM_CAPABILITY } from '../../../src/tpm/transport/swtpm.ts';
import { toHex } from '../../../src/core/hex.ts';
import { GET_RANDOM_8, STARTUP_CLEAR, rejectsSigil, responseCode } from './fake-server.ts';

let tpm: SwtpmInstance;
before(async () => {
  tpm = await startSwtpm();
});
after(async () => {
  await tpm.stop();
});

function assertRandomResponse(response: Uint8Array): void {
  assert.equal(response.constructor, Uint8Array, 'a plain Uint8Array, not a Buffer');
  assert.equal(response.length, 20); // header 10 + TPM2B size 2 + 8 bytes
  assert.equal(toHex(response.subarray(0, 10)), '80010000001400000000');
  assert.equal(toHex(response.subarray(10, 12)), '0008');
}

test('TPM2_GetRandom(8) over the raw port returns rc 0 and 8 random bytes', async () => {
  const transport = tpm.transport();
  try {
    const first = await transport.send(GET_RANDOM_8);
    const second = await transport.send(GET_RANDOM_8);
    assertRandomResponse(first);
    assertRandomResponse(second);
    assert.notEqual(toHex(first.subarray(12)), toHex(second.subarray(12)));
  } finally {
    await transport.close();
  }
});

test('many sequential and concurrent sends on one connection all complete, in order', async () => {
  const transport = tpm.transport();
  try {
    for (let i = 0; i < 200; i++) assertRandomResponse(await transport.send(GET_RANDOM_8));
    const responses = await Promise.all(Array.from({ length: 100 }, () => transport.send(GET_RANDOM_8)));
    responses.forEach(assertRandomResponse);
    assert.equal(new Set(responses.map((r) => toHex(r.subarray(12)))).size, 100);
  } finally {
    await transport.close();
  }
});

test('malformed commands are refused before they reach swtpm', async () => {
  const transport = tpm.transport();
  try {
    await rejectsSigil(transport.send(new Uint8Array(5)), 'tpm.transport_command_invalid');
    const wrongSize = GET_RANDOM_8.slice();
    wrongSize[5] = 0x20; // header claims 32 bytes, 12 are sent: swtpm would wait for ever
    await rejectsSigil(transport.send(wrongSize), 'tpm.transport_command_invalid');
    assertRandomResponse(await transport.send(GET_RANDOM_8)); // the connection is still usable
  } finally {
    await transport.close();
  }
});

test('close() is idempotent and a closed transport refuses to send', async () => {
  const transport = tpm.transport();
  assertRandomResponse(await transport.send(GET_RANDOM_8));
  await transport.close();
  await transport.close();
  await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_closed');
});

test('control: capabilities, power cycle, Startup, locality and the established flag', async () => {
  const capabilities = await tpm.control.getCapability();
  for (const bit of [SWTPM_CAPABILITY.INIT, SWTPM_CAPABILITY.SHUTDOWN, SWTPM_CAPABILITY.SET_LOCALITY, SWTPM_CAPABILITY.RESET_TPMESTABLISHED]) {
    assert.ok(capabilities & bit, `capability bit ${bit}`);
  }

  const transport = tpm.transport();
  try {
    assert.equal(responseCode(await transport.send(GET_RANDOM_8)), 0);
    await tpm.control.init(); // _TPM_Init: the TPM now needs TPM2_Startup
    assert.equal(responseCode(await transport.send(GET_RANDOM_8)), 0x100, 'TPM_RC_INITIALIZE before Startup');
    assert.equal(responseCode(await transport.send(STARTUP_CLEAR)), 0);
    assertRandomResponse(await transport.send(GET_RANDOM_8));
    assert.equal(responseCode(await transport.send(STARTUP_CLEAR)), 0x100, 'a second Startup is refused');

    assert.equal(typeof (await tpm.control.getEstablished()), 'boolean');
    const refused = await rejectsSigil(tpm.control.resetEstablished(0), 'tpm.control_failed');
    assert.equal(refused.details.resultName, 'TPM_BAD_LOCALITY');
    await tpm.control.setLocality(3);
    await tpm.control.resetEstablished(3);
    assert.equal(await tpm.control.getEstablished(), false);
    await tpm.control.setLocality(0);
    await rejectsSigil(tpm.control.setLocality(5), 'tpm.locality_invalid');
    assert.equal(typeof (await tpm.control.cancel()), 'boolean');
    assertRandomResponse(await transport.send(GET_RANDOM_8));
  } finally {
    await transport.close();
  }
});
