import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startSwtpm } from '../../../src/tpm/swtpm-process.ts';
import type { SwtpmInstance } from '../../../src/tpm/swtpm-process.ts';
import { RecordingTransport, ReplayTransport } from '../../../src/tpm/transport/recording.ts';
import { fromHex, toHex } from '../../../src/core/hex.ts';
import { GET_RANDOM_8, rejectsSigil } from './fake-server.ts';

let tpm: SwtpmInstance;
before(async () => {
  tpm = await startSwtpm();
});
after(async () => {
  await tpm.stop();
});

/** TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES, TPM_PT_MANUFACTURER, 1). */
const GET_MANUFACTURER = fromHex('800100000016' + '0000017a' + '00000006' + '00000105' + '00000001');

test('records copies of each command and response as they crossed the wire', async () => {
  const recording = new RecordingTransport(tpm.transport());
  try {
    const command = GET_RANDOM_8.slice();
    const random = await recording.send(command);
    const manufacturer = await recording.send(GET_MANUFACTURER);
    assert.equal(recording.exchanges.length, 2);
    assert.deepEqual(recording.exchanges[0]!.command, GET_RANDOM_8);
    assert.deepEqual(recording.exchanges[0]!.response, random);
    assert.deepEqual(recording.exchanges[1]!.response, manufacturer);
    assert.equal(recording.exchanges[0]!.original, undefined);
    // swtpm reports manufacturer "IBM" (0x49424d00) in the property list.
    assert.ok(toHex(manufacturer).endsWith('0000010549424d00'), toHex(manufacturer));

    // Mutating what the caller holds cannot rewrite the record.
    command.fill(0);
    random.fill(0);
    assert.deepEqual(recording.exchanges[0]!.command, GET_RANDOM_8);
    assert.notDeepEqual(recording.exchanges[0]!.response, random);

    recording.clear();
    assert.equal(recording.exchanges.length, 0);
  } finally {
    await recording.close();
  }
});

test('tamper alters chosen responses and the record keeps both versions', async () => {
  const seen: number[] = [];
  const recording = new RecordingTransport(tpm.transport(), {
    tamper: (response, index) => {
      seen.push(index);
      if (index === 1) response[response.length - 1] ^= 0xff; // flip the last random byte
      return response;
    },
  });
  try {
    await recording.send(GET_RANDOM_8);
    const tampered = await recording.send(GET_RANDOM_8);
    assert.deepEqual(seen, [0, 1]);
    const record = recording.exchanges[1]!;
    assert.deepEqual(record.response, tampered);
    assert.ok(record.original);
    assert.equal(record.original[19], tampered[19]! ^ 0xff);
    assert.deepEqual(record.original.subarray(0, 19), tampered.subarray(0, 19));
    assert.equal(recording.exchanges[0]!.original, undefined);
  } finally {
    await recording.close();
  }
});

test('ReplayTransport answers from a recording and refuses what does not match', async () => {
  const recording = new RecordingTransport(tpm.transport());
  await recording.send(GET_RANDOM_8);
  await recording.send(GET_MANUFACTURER);
  await recording.close();

  const replay = new ReplayTransport(recording.exchanges);
  assert.deepEqual(await replay.send(GET_RANDOM_8), recording.exchanges[0]!.response);
  assert.deepEqual(await replay.send(GET_MANUFACTURER), recording.exchanges[1]!.response);
  assert.equal(replay.used, 2);
  await rejectsSigil(replay.send(GET_RANDOM_8), 'tpm.replay_exhausted');

  // commandCode matching (the default) ignores parameters; bytes matching does not.
  const otherCount = fromHex('80010000000c0000017b0010');
  assert.deepEqual(await new ReplayTransport(recording.exchanges).send(otherCount), recording.exchanges[0]!.response);
  const mismatch = await rejectsSigil(new ReplayTransport(recording.exchanges, { match: 'bytes' }).send(otherCount), 'tpm.replay_mismatch');
  assert.equal(mismatch.details.index, 0);
  await rejectsSigil(new ReplayTransport(recording.exchanges).send(GET_MANUFACTURER), 'tpm.replay_mismatch');
  assert.deepEqual(await new ReplayTransport(recording.exchanges, { match: 'none' }).send(GET_MANUFACTURER), recording.exchanges[0]!.response);
});
