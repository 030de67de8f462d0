/**
 * swtpm does not speak the MS-simulator protocol, so the test runs a small mssim server that
 * unwraps each TPM_SEND_COMMAND and forwards the command to a real swtpm: the framing is ours
 * to check, the TPM responses are real.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { startSwtpm } from '../../../src/tpm/swtpm-process.ts';
import type { SwtpmInstance } from '../../../src/tpm/swtpm-process.ts';
import { MSSIM, MssimTransport, mssimPowerOn } from '../../../src/tpm/transport/mssim.ts';
import type { SwtpmTransport } from '../../../src/tpm/transport/swtpm.ts';
import { openTransport } from '../../../src/tpm/transport/uri.ts';
import { toHex } from '../../../src/core/hex.ts';
import type { FakeServer } from './fake-server.ts';
import { GET_RANDOM_8, onFrames, rejectsSigil, responseCode, startFakeServer } from './fake-server.ts';

let tpm: SwtpmInstance;
let upstream: SwtpmTransport;
let simulator: FakeServer;
let platform: FakeServer;
const signals: number[] = [];
const tpmPortLog: { command: number; locality?: number }[] = [];
/** When set, the simulator corrupts its next answer this way. */
let corrupt: ((frame: Buffer) => Buffer) | undefined;

function mssimFrame(buffered: Buffer): number | undefined {
  if (buffered.length < 4) return undefined;
  if (buffered.readUInt32BE(0) !== MSSIM.TPM_SEND_COMMAND) return 4;
  return buffered.length < 9 ? undefined : 9 + buffered.readUInt32BE(5);
}

function serveTpmPort(socket: net.Socket): void {
  onFrames(socket, mssimFrame, (frame) => {
    const command = frame.readUInt32BE(0);
    if (command !== MSSIM.TPM_SEND_COMMAND) {
      tpmPortLog.push({ command });
      if (command === MSSIM.TPM_SESSION_END) socket.end();
      return;
    }
    tpmPortLog.push({ command, locality: frame[4] });
    void upstream.send(new Uint8Array(frame.subarray(9))).then((response) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(response.length);
      let reply: Buffer = Buffer.concat([length, response, Buffer.alloc(4)]);
      if (corrupt) {
        reply = corrupt(reply);
        corrupt = undefined;
      }
      socket.write(reply);
    });
  });
}

before(async () => {
  tpm = await startSwtpm();
  upstream = tpm.transport();
  simulator = await startFakeServer(serveTpmPort);
  platform = await startFakeServer((socket) =>
    onFrames(socket, (b) => (b.length < 4 ? undefined : 4), (frame) => {
      signals.push(frame.readUInt32BE(0));
      if (frame.readUInt32BE(0) !== MSSIM.TPM_SESSION_END) socket.write(Buffer.alloc(4));
    }),
  );
});
after(async () => {
  await simulator.close();
  await platform.close();
  await tpm.stop();
});

test('mssimPowerOn sends POWER_ON then NV_ON on the platform port and ends the session', async () => {
  signals.length = 0;
  await mssimPowerOn({ port: platform.port });
  await new Promise((resolve) => setTimeout(resolve, 20)); // let the goodbye arrive
  assert.deepEqual(signals, [MSSIM.TPM_SIGNAL_POWER_ON, MSSIM.TPM_SIGNAL_NV_ON, MSSIM.TPM_SESSION_END]);
});

test('MssimTransport frames commands and unframes real TPM responses', async () => {
  tpmPortLog.length = 0;
  const transport = new MssimTransport({ port: simulator.port, locality: 2 });
  const responses = await Promise.all(Array.from({ length: 20 }, () => transport.send(GET_RANDOM_8)));
  for (const response of responses) {
    assert.equal(responseCode(response), 0);
    assert.equal(toHex(response.subarray(0, 12)), '800100000014000000000008');
  }
  await transport.close();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(tpmPortLog.length, 21);
  assert.ok(tpmPortLog.slice(0, 20).every((entry) => entry.command === MSSIM.TPM_SEND_COMMAND && entry.locality === 2));
  assert.deepEqual(tpmPortLog[20], { command: MSSIM.TPM_SESSION_END });
});

test('mssim:// URIs open an MssimTransport', async () => {
  const transport = openTransport(`mssim://127.0.0.1:${simulator.port}`);
  assert.ok(transport instanceof MssimTransport);
  assert.equal(responseCode(await transport.send(GET_RANDOM_8)), 0);
  await transport.close();
});

test('a bad acknowledgement or a length that disagrees with the TPM header is rejected', async () => {
  const transport = new MssimTransport({ port: simulator.port, timeoutMs: 2000 });
  corrupt = (reply) => {
    reply.writeUInt32BE(1, reply.length - 4);
    return reply;
  };
  const ack = await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_response_invalid');
  assert.equal(ack.details.ack, 1);
  corrupt = (reply) => {
    reply.writeUInt32BE(0x30, 6); // the TPM header inside claims 48 bytes
    return reply;
  };
  await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_response_invalid');
  corrupt = (reply) => {
    reply.writeUInt32BE(0x20000, 0); // 128 KiB frame
    return reply;
  };
  await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_response_invalid');
  assert.equal(responseCode(await transport.send(GET_RANDOM_8)), 0, 'a fresh connection works again');
  await transport.close();
});

test('a refused platform signal is tpm.control_failed', async () => {
  const refusing = await startFakeServer((socket) => socket.on('data', () => socket.write(Buffer.from('00000001', 'hex'))));
  try {
    const error = await rejectsSigil(mssimPowerOn({ port: refusing.port, timeoutMs: 2000 }), 'tpm.control_failed');
    assert.equal(error.details.signal, MSSIM.TPM_SIGNAL_POWER_ON);
  } finally {
    await refusing.close();
  }
});
