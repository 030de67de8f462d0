/**
 * One request/response exchange at a time over a lazily opened, persistent TCP connection.
 * The swtpm, MS-simulator and swtpm control transports differ only in how a response frame's
 * length is found, so that is the one thing they pass in.
 *
 * Failure rules: any socket error, early close, timeout or invalid frame rejects the request with
 * a SigilError and drops the connection, because after a half-read response the stream position
 * is unknown; the next request reconnects.
 */
import net from 'node:net';
import { SigilError } from '../../core/errors.ts';

/** Total frame length once enough of it is buffered (else undefined); throws SigilError if invalid. */
export type FrameLength = (buffered: Uint8Array) => number | undefined;

export interface SocketExchangeOptions {
  host: string;
  port: number;
  /** Covers connecting, writing and reading the whole response. */
  timeoutMs: number;
  /** Names the peer in error messages, e.g. "swtpm at 127.0.0.1:2321". */
  what: string;
}

interface Pending {
  frameLength: FrameLength;
  settle: (error: SigilError | undefined, frame?: Uint8Array) => void;
}

export class SocketExchange {
  private readonly options: SocketExchangeOptions;
  private connection: Promise<net.Socket> | undefined;
  private socket: net.Socket | undefined;
  private buffer: Uint8Array = new Uint8Array(0);
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: SocketExchangeOptions) {
    this.options = options;
  }

  /** Queue a request; requests never interleave on the wire. */
  request(bytes: Uint8Array, frameLength: FrameLength): Promise<Uint8Array> {
    const run = (): Promise<Uint8Array> => this.exchange(bytes, frameLength);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Close for good; `farewell` bytes (a protocol goodbye) are written first when connected. */
  async close(farewell?: Uint8Array): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const socket = this.socket;
    if (!socket || socket.destroyed) return;
    this.failPending(this.error('tpm.transport_closed', 'the transport was closed while a command was in flight'));
    await new Promise<void>((resolve) => {
      const fallback = setTimeout(() => socket.destroy(), 1000);
      socket.once('close', () => {
        clearTimeout(fallback);
        resolve();
      });
      if (farewell && socket.writable) socket.end(farewell);
      else socket.end();
    });
  }

  private exchange(bytes: Uint8Array, frameLength: FrameLength): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(this.error('tpm.transport_closed', 'the transport is closed'));
    return new Promise<Uint8Array>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        this.dropConnection();
        settle(this.error('tpm.transport_timeout', `no complete response within ${this.options.timeoutMs} ms`, { timeoutMs: this.options.timeoutMs }));
      }, this.options.timeoutMs);
      const settle = (error: SigilError | undefined, frame?: Uint8Array): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (this.pending?.settle === settle) this.pending = undefined;
        this.socket?.unref();
        if (error) reject(error);
        else resolve(frame!);
      };
      this.connect().then(
        (socket) => {
          if (done) return; // timed out while connecting
          if (this.closed) return settle(this.error('tpm.transport_closed', 'the transport was closed while connecting'));
          this.pending = { frameLength, settle };
          socket.ref(); // an idle connection must not keep the process alive, a request must
          socket.write(bytes);
        },
        (error: SigilError) => settle(error),
      );
    });
  }

  private connect(): Promise<net.Socket> {
    if (this.connection) return this.connection;
    const { host, port } = this.options;
    const socket = net.createConnection({ host, port });
    this.socket = socket;
    socket.setNoDelay(true); // small request/response messages: Nagle would only add latency
    socket.unref();
    const connection = new Promise<net.Socket>((resolve, reject) => {
      let connected = false;
      let lastError: NodeJS.ErrnoException | undefined;
      socket.once('connect', () => {
        connected = true;
        resolve(socket);
      });
      socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
      socket.on('error', (error) => {
        lastError = error;
      });
      socket.on('close', () => {
        if (!connected) {
          if (this.socket === socket) this.dropConnection();
          const code = lastError?.code;
          reject(this.error('tpm.transport_connect_failed', `cannot connect${code ? ` (${code})` : ''}`, { code }, lastError));
          return;
        }
        if (this.socket !== socket) return; // dropped on purpose; the dropper settled the request
        const received = this.buffer.length;
        this.dropConnection();
        this.failPending(
          lastError
            ? this.error('tpm.transport_error', `socket error: ${lastError.message}`, { code: lastError.code }, lastError)
            : this.error('tpm.transport_closed', 'the connection closed before a complete response arrived', { received }),
        );
      });
    });
    this.connection = connection;
    return connection;
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    const pending = this.pending;
    if (!pending || socket !== this.socket) {
      // Bytes nobody asked for: the stream is out of step, so start over on a new connection.
      this.dropConnection();
      return;
    }
    const next = new Uint8Array(this.buffer.length + chunk.length);
    next.set(this.buffer);
    next.set(chunk, this.buffer.length);
    this.buffer = next;
    let length: number | undefined;
    try {
      length = pending.frameLength(this.buffer);
    } catch (error) {
      this.dropConnection();
      pending.settle(error instanceof SigilError ? error : this.error('tpm.transport_response_invalid', String(error)));
      return;
    }
    if (length === undefined || this.buffer.length < length) return;
    if (this.buffer.length > length) {
      this.dropConnection();
      pending.settle(this.error('tpm.transport_response_invalid', `${this.buffer.length - length} bytes arrived after the end of the response`));
      return;
    }
    const frame = this.buffer; // a plain Uint8Array that we own (not a Buffer view of a pool)
    this.buffer = new Uint8Array(0);
    pending.settle(undefined, frame);
  }

  private failPending(error: SigilError): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.settle(error);
  }

  private dropConnection(): void {
    const socket = this.socket;
    this.socket = undefined;
    this.connection = undefined;
    this.buffer = new Uint8Array(0);
    socket?.destroy();
  }

  private error(code: string, message: string, details: Record<string, unknown> = {}, cause?: unknown): SigilError {
    const { host, port } = this.options;
    return new SigilError(code, `${this.options.what}: ${message}`, { host, port, ...details }, cause ? { cause } : undefined);
  }
}
