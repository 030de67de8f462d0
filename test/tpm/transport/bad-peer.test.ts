/**
 * Transports against scripted fake servers: truncated, oversized, garbled, silent and chatty
 * peers must each give a SigilError, never a crash, a hang or a wrong answer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SigilError } from '../../../src/core/errors.ts';
import { SwtpmControl, SwtpmTransport } from '../../../src/tpm/transport/swtpm.ts';
import { GET_RANDOM_8, rejectsSigil, startFakeServer, tpmFrame, onFrames } from './fake-server.ts';

const OK_RESPONSE = Buffer.from('8001000000140000000000080102030405060708', 'hex');

/** A server that answers each complete command with `answer(index)` and then does `after`. */
async function withServer(
  answer: (socket: import('node:net').Socket, connection: number) => void,
  run: (port: number) => Promise<void>,
): Promise<void> {
  const server = await startFakeServer((socket, connection) => onFrames(socket, tpmFrame, () => answer(socket, connection)));
  try {
    await run(server.port);
  } finally {
    await server.close();
  }
}

test('a well-formed response delivered one byte at a time is reassembled', async () => {
  await withServer(
    (socket) => {
      let i = 0;
      const drip = setInterval(() => {
        socket.write(OK_RESPONSE.subarray(i, i + 1));
        if (++i === OK_RESPONSE.length) clearInterval(drip);
      }, 1);
    },
    async (port) => {
      const transport = new SwtpmTransport({ port, timeoutMs: 5000 });
      const response = await transport.send(GET_RANDOM_8);
      assert.deepEqual(response, new Uint8Array(OK_RESPONSE));
      await transport.close();
    },
  );
});

test('a truncated response followed by a close is tpm.transport_closed', async () => {
  await withServer(
    (socket) => socket.end(OK_RESPONSE.subarray(0, 12)),
    async (port) => {
      const transport = new SwtpmTransport({ port, timeoutMs: 5000 });
      const error = await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_closed');
      assert.equal(error.details.received, 12);
      await transport.close();
    },
  );
});

test('declared sizes below 10 or above 64 KiB are rejected as soon as the header arrives', async () => {
  for (const size of [0, 9, 0x10001, 0xffffffff]) {
    await withServer(
      (socket) => {
        const header = Buffer.from('8001000000000000', 'hex');
        header.writeUInt32BE(size, 2);
        socket.write(header); // and keep the connection open: the transport must not wait
      },
      async (port) => {
        const transport = new SwtpmTransport({ port, timeoutMs: 5000 });
        const error = await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_response_invalid');
        assert.equal(error.details.size, size);
        await transport.close();
      },
    );
  }
});

test('bytes after the end of a response are an error', async () => {
  await withServer(
    (socket) => socket.write(Buffer.concat([OK_RESPONSE, Buffer.from('ff', 'hex')])),
    async (port) => {
      const transport = new SwtpmTransport({ port, timeoutMs: 5000 });
      await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_response_invalid');
      await transport.close();
    },
  );
});

test('a silent peer times out, and the next command reconnects', async () => {
  await withServer(
    (socket, connection) => {
      if (connection > 0) socket.write(OK_RESPONSE); // the first connection never answers
    },
    async (port) => {
      const transport = new SwtpmTransport({ port, timeoutMs: 150 });
      const error = await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_timeout');
      assert.equal(error.details.timeoutMs, 150);
      assert.deepEqual(await transport.send(GET_RANDOM_8), new Uint8Array(OK_RESPONSE));
      await transport.close();
    },
  );
});

test('closing while a command is in flight rejects it with tpm.transport_closed', async () => {
  await withServer(
    () => {},
    async (port) => {
      const transport = new SwtpmTransport({ port, timeoutMs: 5000 });
      const pending = transport.send(GET_RANDOM_8);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await transport.close();
      await rejectsSigil(pending, 'tpm.transport_closed');
    },
  );
});

test('nothing listening is tpm.transport_connect_failed', async () => {
  const server = await startFakeServer(() => {});
  const port = server.port;
  await server.close();
  const transport = new SwtpmTransport({ port, timeoutMs: 2000 });
  const error = await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_connect_failed');
  assert.equal(error.details.code, 'ECONNREFUSED');
  await transport.close();
});

test('fuzz: 300 random replies give a checked response or a SigilError, never anything else', async () => {
  let replies: Buffer[] = [];
  let outcomes = { ok: 0, error: 0 };
  await withServer(
    (socket, connection) => {
      const reply = replies[connection]!;
      // Half the time close after the garbage, half the time leave the socket open (timeout path).
      if (connection % 2 === 0) socket.end(reply);
      else socket.write(reply);
    },
    async (port) => {
      replies = Array.from({ length: 300 }, (_, i) => {
        const garbage = randomBytes(i % 40);
        // Every third reply gets a plausible size field, so the accumulate path is fuzzed too.
        if (i % 3 === 0 && garbage.length >= 6) garbage.writeUInt32BE(10 + (garbage[5]! % 40), 2);
        return garbage;
      });
      for (let i = 0; i < replies.length; i++) {
        // A fresh transport per reply, so every reply is a new connection the server can index.
        const transport = new SwtpmTransport({ port, timeoutMs: 30 });
        try {
          const response = await transport.send(GET_RANDOM_8);
          assert.equal(response.length, new DataView(response.buffer).getUint32(2));
          outcomes.ok++;
        } catch (error) {
          assert.ok(error instanceof SigilError, `reply ${i}: ${String(error)}`);
          assert.match(error.code, /^tpm\.transport_(closed|timeout|response_invalid|error)$/);
          outcomes.error++;
        } finally {
          await transport.close();
        }
      }
    },
  );
  assert.equal(outcomes.ok + outcomes.error, 300);
  assert.ok(outcomes.error > 250);
});

test('control channel: a non-zero result is tpm.control_failed, a short reply tpm.transport_closed', async () => {
  const server = await startFakeServer((socket, connection) => {
    socket.once('data', () => {
      if (connection === 0) socket.write(Buffer.from('00000009', 'hex')); // TPM_FAIL
      else if (connection === 1) socket.end(Buffer.from('0000', 'hex'));
      else socket.write(Buffer.from('0000000000000001', 'hex')); // capability: INIT only
    });
  });
  try {
    const control = new SwtpmControl({ port: server.port, timeoutMs: 2000 });
    const failed = await rejectsSigil(control.init(), 'tpm.control_failed');
    assert.deepEqual([failed.details.command, failed.details.result, failed.details.resultName], ['CMD_INIT', 9, 'TPM_FAIL']);
    await rejectsSigil(control.shutdown(), 'tpm.transport_closed');
    assert.equal(await control.getCapability(), 1);
  } finally {
    await server.close();
  }
});
