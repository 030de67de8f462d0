/**
 * A Linux TPM character device: /dev/tpmrm0 (through the kernel's resource manager, the one to
 * use) or /dev/tpm0 (raw, exclusive). The kernel driver takes one whole command per write() and
 * returns the whole response in one read(), so no framing is needed beyond checking the header.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { SigilError } from '../../core/errors.ts';
import { checkTpmCommand, MAX_TPM_MESSAGE_BYTES, readU32, TPM_HEADER_BYTES } from './framing.ts';
import type { TpmTransport } from './transport.ts';

export const DEFAULT_TPM_DEVICE = '/dev/tpmrm0';

export class DeviceTransport implements TpmTransport {
  readonly path: string;
  private handle: Promise<FileHandle> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** Opening is lazy, so constructing never fails; the first send() reports a missing device. */
  constructor(path: string = DEFAULT_TPM_DEVICE) {
    this.path = path;
  }

  send(command: Uint8Array): Promise<Uint8Array> {
    // The driver holds one command per open file: a second write before the read fails (EBUSY).
    const run = (): Promise<Uint8Array> => this.exchange(command);
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await handle.then((h) => h.close(), () => undefined);
  }

  private async exchange(command: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new SigilError('tpm.transport_closed', `${this.path}: the transport is closed`, { path: this.path });
    checkTpmCommand(command);
    const file = await this.open();
    try {
      await file.write(command, 0, command.length, null);
      const buffer = new Uint8Array(MAX_TPM_MESSAGE_BYTES);
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead < TPM_HEADER_BYTES || readU32(buffer, 2) !== bytesRead) {
        throw new SigilError('tpm.transport_response_invalid', `${this.path}: the TPM returned a malformed response`, {
          path: this.path,
          bytesRead,
        });
      }
      return buffer.slice(0, bytesRead);
    } catch (error) {
      if (error instanceof SigilError) throw error;
      throw new SigilError('tpm.transport_error', `${this.path}: ${(error as Error).message}`, {
        path: this.path,
        code: (error as NodeJS.ErrnoException).code,
      }, { cause: error });
    }
  }

  private open(): Promise<FileHandle> {
    this.handle ??= open(this.path, 'r+').catch((error: NodeJS.ErrnoException) => {
      this.handle = undefined; // let a later call retry, e.g. after the device appears
      throw deviceUnavailable(this.path, error);
    });
    return this.handle;
  }
}

function deviceUnavailable(path: string, error: NodeJS.ErrnoException): SigilError {
  const reasons: Record<string, string> = {
    ENOENT: `there is no TPM device at ${path}`,
    EACCES: `permission denied opening ${path}: run as root or as a member of the tss group`,
    EPERM: `permission denied opening ${path}: run as root or as a member of the tss group`,
    EBUSY: `${path} is in use by another process (use /dev/tpmrm0, which the kernel shares)`,
  };
  const message = reasons[error.code ?? ''] ?? `cannot open ${path}: ${error.message}`;
  return new SigilError('tpm.device_unavailable', message, { path, code: error.code }, { cause: error });
}
