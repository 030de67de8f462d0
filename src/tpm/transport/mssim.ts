/**
 * The Microsoft / IBM TPM 2.0 simulator protocol (TpmTcpProtocol.h in ms-tpm-20-ref), spoken by
 * the reference simulator, IBM's tpm_server and tpm2-tss's "mssim" TCTI. swtpm does not speak it.
 *
 * TPM port (default 2321): TPM_SEND_COMMAND = u32 8, u8 locality, u32 length, command bytes;
 * answered by u32 length, response bytes, u32 0 (an acknowledgement appended "for regularity").
 * Platform port (default 2322): a bare u32 signal, acknowledged by u32 0.
 */
import { SigilError } from '../../core/errors.ts';
import { checkTpmCommand, checkTpmResponseSize, readU32, u32Bytes } from './framing.ts';
import { SocketExchange } from './socket-exchange.ts';
import type { TpmTransport } from './transport.ts';
import { DEFAULT_TIMEOUT_MS } from './swtpm.ts';

export const MSSIM = {
  TPM_SIGNAL_POWER_ON: 1,
  TPM_SIGNAL_POWER_OFF: 2,
  TPM_SIGNAL_PHYS_PRES_ON: 3,
  TPM_SIGNAL_PHYS_PRES_OFF: 4,
  TPM_SIGNAL_HASH_START: 5,
  TPM_SIGNAL_HASH_DATA: 6,
  TPM_SIGNAL_HASH_END: 7,
  TPM_SEND_COMMAND: 8,
  TPM_SIGNAL_CANCEL_ON: 9,
  TPM_SIGNAL_CANCEL_OFF: 10,
  TPM_SIGNAL_NV_ON: 11,
  TPM_SIGNAL_NV_OFF: 12,
  TPM_SIGNAL_KEY_CACHE_ON: 13,
  TPM_SIGNAL_KEY_CACHE_OFF: 14,
  TPM_SIGNAL_RESET: 17,
  TPM_SIGNAL_RESTART: 18,
  TPM_SESSION_END: 20,
  TPM_STOP: 21,
} as const;

export interface MssimTransportOptions {
  host?: string;
  port?: number;
  /** Locality byte sent with every command (0 to 4). */
  locality?: number;
  timeoutMs?: number;
}

export class MssimTransport implements TpmTransport {
  readonly host: string;
  readonly port: number;
  locality: number;
  private readonly exchange: SocketExchange;

  constructor(options: MssimTransportOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 2321;
    this.locality = options.locality ?? 0;
    this.exchange = new SocketExchange({
      host: this.host,
      port: this.port,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      what: `TPM simulator at ${this.host}:${this.port}`,
    });
  }

  async send(command: Uint8Array): Promise<Uint8Array> {
    checkTpmCommand(command);
    if (!Number.isInteger(this.locality) || this.locality < 0 || this.locality > 4) {
      throw new SigilError('tpm.locality_invalid', 'a TPM locality is an integer from 0 to 4', { locality: this.locality });
    }
    const message = new Uint8Array(9 + command.length);
    message.set(u32Bytes(MSSIM.TPM_SEND_COMMAND));
    message[4] = this.locality;
    message.set(u32Bytes(command.length), 5);
    message.set(command, 9);
    const what = `TPM simulator at ${this.host}:${this.port}`;
    const frame = await this.exchange.request(message, (buffered) =>
      buffered.length < 4 ? undefined : 4 + checkTpmResponseSize(readU32(buffered, 0), what) + 4,
    );
    const length = frame.length - 8;
    const response = frame.slice(4, 4 + length);
    const ack = readU32(frame, 4 + length);
    if (ack !== 0) {
      throw new SigilError('tpm.transport_response_invalid', `${what}: the response ended with ${ack}, not the 0 acknowledgement`, { ack });
    }
    if (readU32(response, 2) !== length) {
      throw new SigilError('tpm.transport_response_invalid', `${what}: the framed length and the TPM header size disagree`, {
        frameLength: length,
        headerSize: readU32(response, 2),
      });
    }
    return response;
  }

  /** TPM_SESSION_END tells the simulator this client is done, as tpm2-tss does. */
  close(): Promise<void> {
    return this.exchange.close(u32Bytes(MSSIM.TPM_SESSION_END));
  }
}

export interface MssimPlatformOptions {
  host?: string;
  /** The platform port, default 2322. */
  port?: number;
  timeoutMs?: number;
}

/** Send platform signals in order, each over the platform port, each acknowledged by u32 0. */
export async function mssimPlatformSignals(signals: number[], options: MssimPlatformOptions = {}): Promise<void> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 2322;
  const exchange = new SocketExchange({ host, port, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, what: `TPM simulator platform port ${host}:${port}` });
  try {
    for (const signal of signals) {
      const ack = await exchange.request(u32Bytes(signal), (buffered) => (buffered.length < 4 ? undefined : 4));
      const value = readU32(ack, 0);
      if (value !== 0) {
        throw new SigilError('tpm.control_failed', `the TPM simulator refused platform signal ${signal} (answered ${value})`, { signal, ack: value });
      }
    }
  } finally {
    await exchange.close(u32Bytes(MSSIM.TPM_SESSION_END));
  }
}

/**
 * Power the simulator on and make its NV available: the bring-up tpm2-tss's mssim TCTI does.
 * The TPM then needs TPM2_Startup.
 */
export function mssimPowerOn(options: MssimPlatformOptions = {}): Promise<void> {
  return mssimPlatformSignals([MSSIM.TPM_SIGNAL_POWER_ON, MSSIM.TPM_SIGNAL_NV_ON], options);
}
