/**
 * Test transports. RecordingTransport sits between the client and a real transport and keeps
 * copies of every command and response, so tests can assert what went over the wire, and can
 * alter a response (e.g. corrupt a response HMAC) to prove the layer above rejects it.
 * ReplayTransport answers from such a recording without a TPM, for fuzzing and offline tests.
 */
import { bytesEqual } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import { readU32 } from './framing.ts';
import type { TpmTransport } from './transport.ts';

export interface RecordedExchange {
  command: Uint8Array;
  /** The response as the caller received it (after any tampering). */
  response: Uint8Array;
  /** The TPM's own response, present only when `tamper` changed it. */
  original?: Uint8Array;
}

/** Receives a copy of the response; `index` counts the exchanges through this wrapper from 0. */
export type TamperFunction = (response: Uint8Array, index: number) => Uint8Array;

export class RecordingTransport implements TpmTransport {
  readonly exchanges: RecordedExchange[] = [];
  tamper: TamperFunction | undefined;
  private readonly inner: TpmTransport;
  private count = 0;

  constructor(inner: TpmTransport, options: { tamper?: TamperFunction } = {}) {
    this.inner = inner;
    this.tamper = options.tamper;
  }

  async send(command: Uint8Array): Promise<Uint8Array> {
    const sent = command.slice(); // copy now: the caller may reuse its buffer
    const index = this.count++;
    const original = await this.inner.send(command);
    // The caller gets its own copy, so mutating it later cannot rewrite the recording.
    const response = this.tamper ? this.tamper(original.slice(), index).slice() : original.slice();
    const entry: RecordedExchange = { command: sent, response: response.slice() };
    if (!bytesEqual(response, original)) entry.original = original;
    this.exchanges.push(entry);
    return response;
  }

  /** Forget what was recorded so far (the tamper index keeps counting). */
  clear(): void {
    this.exchanges.length = 0;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * How a replayed command must match its recording: exact bytes; the command code only (robust
 * to fresh nonces and random salts); or not at all (answer in order whatever is asked).
 */
export type ReplayMatch = 'bytes' | 'commandCode' | 'none';

export class ReplayTransport implements TpmTransport {
  private readonly exchanges: readonly RecordedExchange[];
  private readonly match: ReplayMatch;
  private position = 0;

  constructor(exchanges: readonly RecordedExchange[], options: { match?: ReplayMatch } = {}) {
    this.exchanges = exchanges.map((e) => ({ command: e.command.slice(), response: e.response.slice() }));
    this.match = options.match ?? 'commandCode';
  }

  /** How many recorded exchanges have been answered. */
  get used(): number {
    return this.position;
  }

  async send(command: Uint8Array): Promise<Uint8Array> {
    const recorded = this.exchanges[this.position];
    if (!recorded) {
      throw new SigilError('tpm.replay_exhausted', `the recording has only ${this.exchanges.length} exchanges`, { index: this.position });
    }
    if (!this.matches(recorded.command, command)) {
      throw new SigilError('tpm.replay_mismatch', `command ${this.position} differs from the recording`, {
        index: this.position,
        expected: toHex(recorded.command.subarray(0, 10)),
        actual: toHex(command.subarray(0, 10)),
      });
    }
    this.position++;
    return recorded.response.slice();
  }

  async close(): Promise<void> {}

  private matches(recorded: Uint8Array, actual: Uint8Array): boolean {
    if (this.match === 'none') return true;
    if (this.match === 'bytes') return bytesEqual(recorded, actual);
    return recorded.length >= 10 && actual.length >= 10 && readU32(recorded, 6) === readU32(actual, 6);
  }
}
