/**
 * Test helpers: a throwaway TCP server whose behaviour each test scripts, and the raw TPM
 * commands the transport tests send (hand-written bytes, so these tests do not depend on the
 * command layer).
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { fromHex } from '../../../src/core/hex.ts';
import { SigilError } from '../../../src/core/errors.ts';

/** TPM2_GetRandom(8). */
export const GET_RANDOM_8 = fromHex('80010000000c0000017b0008');
/** TPM2_Startup(TPM_SU_CLEAR). */
export const STARTUP_CLEAR = fromHex('80010000000c000001440000');

export function responseCode(response: Uint8Array): number {
  return new DataView(response.buffer, response.byteOffset, response.byteLength).getUint32(6);
}

export interface FakeServer {
  port: number;
  connections: number;
  close(): Promise<void>;
}

/** Listen on a free 127.0.0.1 port; `onConnection` scripts what each client sees. */
export async function startFakeServer(onConnection: (socket: net.Socket, index: number) => void): Promise<FakeServer> {
  const sockets = new Set<net.Socket>();
  const fake = { port: 0, connections: 0, close: async () => {} };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket, fake.connections++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.port = (server.address() as net.AddressInfo).port;
  fake.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return fake;
}

/** Call `handle` with each complete message, using `frameLength` to cut the stream. */
export function onFrames(socket: net.Socket, frameLength: (buffered: Buffer) => number | undefined, handle: (frame: Buffer) => void): void {
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (;;) {
      const length = frameLength(buffered);
      if (length === undefined || buffered.length < length) return;
      const frame = buffered.subarray(0, length);
      buffered = buffered.subarray(length);
      handle(frame);
    }
  });
}

/** Raw TPM framing: the size field at bytes 2..6. */
export const tpmFrame = (buffered: Buffer): number | undefined => (buffered.length < 6 ? undefined : buffered.readUInt32BE(2));

/** Await a promise that must reject with a SigilError; return it for further checks. */
export async function rejectsSigil(promise: Promise<unknown>, code: string | RegExp): Promise<SigilError> {
  try {
    await promise;
  } catch (error) {
    if (!(error instanceof SigilError)) throw new Error(`expected a SigilError, got ${String(error)}`, { cause: error });
    const ok = typeof code === 'string' ? error.code === code : code.test(error.code);
    if (!ok) throw new Error(`expected error code ${String(code)}, got ${error.code}: ${error.message}`, { cause: error });
    return error;
  }
  throw new Error(`expected a rejection with ${String(code)}, but the promise resolved`);
}

/** A pid counts as running unless kill(pid, 0) fails or /proc shows a zombie awaiting its reaper. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
