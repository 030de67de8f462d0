/**
 * swtpm over TCP (`swtpm socket --server type=tcp --ctrl type=tcp`).
 *
 * Data port: plain TPM 2.0 command and response bytes, no framing, so the response length comes
 * from the 10-byte header. swtpm serves one data client at a time: while a SwtpmTransport is
 * connected, other clients (tpm2-tools) wait, so close() it before handing the TPM to them.
 *
 * Control port: swtpm's control channel, include/swtpm/tpm_ioctl.h and swtpm_ioctls(3):
 * a 4-byte big-endian command code followed by the command's request struct, answered with the
 * response struct, whose first field is a u32 TPM 1.2-style result (0 = success). swtpm reads the
 * request with a single read(), so code and payload go out in one write.
 */
import { SigilError } from '../../core/errors.ts';
import { checkTpmCommand, readU32, tpmResponseLength, u32Bytes } from './framing.ts';
import { SocketExchange } from './socket-exchange.ts';
import type { TpmTransport } from './transport.ts';

export const DEFAULT_TIMEOUT_MS = 30_000;

export interface SwtpmTransportOptions {
  host?: string;
  port: number;
  timeoutMs?: number;
}

export class SwtpmTransport implements TpmTransport {
  readonly host: string;
  readonly port: number;
  private readonly exchange: SocketExchange;

  constructor(options: SwtpmTransportOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port;
    this.exchange = new SocketExchange({
      host: this.host,
      port: this.port,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      what: `swtpm at ${this.host}:${this.port}`,
    });
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    try {
      checkTpmCommand(command);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.exchange.request(command, (buffered) => tpmResponseLength(buffered, `swtpm at ${this.host}:${this.port}`));
  }

  close(): Promise<void> {
    return this.exchange.close();
  }
}

/** Control command codes (enum in tpm_ioctl.h, "Commands used by the non-CUSE TPMs"). */
export const SWTPM_CONTROL = {
  CMD_GET_CAPABILITY: 0x01,
  CMD_INIT: 0x02,
  CMD_SHUTDOWN: 0x03,
  CMD_GET_TPMESTABLISHED: 0x04,
  CMD_SET_LOCALITY: 0x05,
  CMD_HASH_START: 0x06,
  CMD_HASH_DATA: 0x07,
  CMD_HASH_END: 0x08,
  CMD_CANCEL_TPM_CMD: 0x09,
  CMD_STORE_VOLATILE: 0x0a,
  CMD_RESET_TPMESTABLISHED: 0x0b,
  CMD_GET_STATEBLOB: 0x0c,
  CMD_SET_STATEBLOB: 0x0d,
  CMD_STOP: 0x0e,
  CMD_GET_CONFIG: 0x0f,
  CMD_SET_DATAFD: 0x10,
  CMD_SET_BUFFERSIZE: 0x11,
  CMD_GET_INFO: 0x12,
  CMD_LOCK_STORAGE: 0x13,
} as const;

/** Capability bits returned by CMD_GET_CAPABILITY (PTM_CAP_* in tpm_ioctl.h). */
export const SWTPM_CAPABILITY = {
  INIT: 1 << 0,
  SHUTDOWN: 1 << 1,
  GET_TPMESTABLISHED: 1 << 2,
  SET_LOCALITY: 1 << 3,
  HASHING: 1 << 4,
  CANCEL_TPM_CMD: 1 << 5,
  STORE_VOLATILE: 1 << 6,
  RESET_TPMESTABLISHED: 1 << 7,
  GET_STATEBLOB: 1 << 8,
  SET_STATEBLOB: 1 << 9,
  STOP: 1 << 10,
  GET_CONFIG: 1 << 11,
  SET_DATAFD: 1 << 12,
  SET_BUFFERSIZE: 1 << 13,
  GET_INFO: 1 << 14,
  SEND_COMMAND_HEADER: 1 << 15,
  LOCK_STORAGE: 1 << 16,
} as const;

/** The TPM 1.2 result codes swtpm's control channel answers with, for readable errors. */
const CONTROL_RESULT_NAMES: Record<number, string> = {
  0x03: 'TPM_BAD_PARAMETER',
  0x09: 'TPM_FAIL',
  0x0a: 'TPM_BAD_ORDINAL',
  0x1f: 'TPM_IOERROR',
  0x3d: 'TPM_BAD_LOCALITY',
};
const TPM_FAIL = 0x09;
/** PTM_INIT_FLAG_DELETE_VOLATILE: drop saved volatile state instead of resuming from it. */
const INIT_FLAG_DELETE_VOLATILE = 1;

export interface SwtpmControlOptions {
  host?: string;
  port: number;
  timeoutMs?: number;
}

export class SwtpmControl {
  readonly host: string;
  readonly port: number;
  private readonly timeoutMs: number;

  constructor(options: SwtpmControlOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** PTM_CAP_* bits (see SWTPM_CAPABILITY). */
  async getCapability(): Promise<number> {
    // swtpm 0.7 answers a bare u64 of flags; 0.8+ a u32 result then u32 flags. The high half of
    // the u64 is always 0, so both read as result 0 + flags.
    const response = await this.request('CMD_GET_CAPABILITY', new Uint8Array(0), 8);
    return readU32(response, 4);
  }

  /**
   * _TPM_Init: a power cycle. PCRs and sessions reset; the TPM then needs TPM2_Startup even when
   * swtpm was started with `--flags startup-clear` (that flag applies to its first start only).
   */
  async init(options: { deleteVolatile?: boolean } = {}): Promise<void> {
    await this.request('CMD_INIT', u32Bytes(options.deleteVolatile ? INIT_FLAG_DELETE_VOLATILE : 0), 4);
  }

  /** Graceful shutdown: swtpm saves its state and exits. */
  async shutdown(): Promise<void> {
    await this.request('CMD_SHUTDOWN', new Uint8Array(0), 4);
  }

  /** Halt the TPM without exiting; init() starts it again. */
  async stop(): Promise<void> {
    await this.request('CMD_STOP', new Uint8Array(0), 4);
  }

  /**
   * Ask swtpm to cancel the running TPM command. swtpm runs commands synchronously and answers
   * TPM_FAIL when there is nothing it can cancel: that is reported as `false`, not thrown.
   */
  async cancel(): Promise<boolean> {
    try {
      await this.request('CMD_CANCEL_TPM_CMD', new Uint8Array(0), 4);
      return true;
    } catch (error) {
      if (error instanceof SigilError && error.details.result === TPM_FAIL) return false;
      throw error;
    }
  }

  /** The TPM's tpmEstablished flag. */
  async getEstablished(): Promise<boolean> {
    // Response struct ptm_est: u32 result, u8 bit, padded to 8 bytes by the C compiler.
    const response = await this.request('CMD_GET_TPMESTABLISHED', new Uint8Array(0), 8);
    return response[4] !== 0;
  }

  /** Reset tpmEstablished; the TPM only accepts this from locality 3 or 4. */
  async resetEstablished(locality: number): Promise<void> {
    await this.request('CMD_RESET_TPMESTABLISHED', new Uint8Array([checkLocality(locality)]), 4);
  }

  /** Locality for the following commands on the data channel. */
  async setLocality(locality: number): Promise<void> {
    await this.request('CMD_SET_LOCALITY', new Uint8Array([checkLocality(locality)]), 4);
  }

  /**
   * One short connection per request: control commands are rare, and a held control connection
   * would only be one more thing to clean up.
   */
  private async request(name: keyof typeof SWTPM_CONTROL, payload: Uint8Array, responseBytes: number): Promise<Uint8Array> {
    const message = new Uint8Array(4 + payload.length);
    message.set(u32Bytes(SWTPM_CONTROL[name]));
    message.set(payload, 4);
    const exchange = new SocketExchange({
      host: this.host,
      port: this.port,
      timeoutMs: this.timeoutMs,
      what: `swtpm control at ${this.host}:${this.port} (${name})`,
    });
    try {
      // An error answer is the bare u32 result, shorter than the success struct.
      const response = await exchange.request(message, (buffered) =>
        buffered.length < 4 ? undefined : readU32(buffered, 0) !== 0 ? 4 : responseBytes,
      );
      const result = readU32(response, 0);
      if (result !== 0) {
        const resultName = CONTROL_RESULT_NAMES[result] ?? `0x${result.toString(16)}`;
        throw new SigilError('tpm.control_failed', `swtpm control command ${name} failed with ${resultName}`, {
          command: name,
          result,
          resultName,
          host: this.host,
          port: this.port,
        });
      }
      return response;
    } finally {
      await exchange.close();
    }
  }
}

function checkLocality(locality: number): number {
  if (!Number.isInteger(locality) || locality < 0 || locality > 4) {
    throw new SigilError('tpm.locality_invalid', 'a TPM locality is an integer from 0 to 4', { locality });
  }
  return locality;
}
