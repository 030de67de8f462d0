/**
 * Checks shared by every transport: the 10-byte TPM header (tag u16, size u32, code u32) is the
 * only framing a raw TPM stream has, so a transport must trust nothing but that size field and
 * must bound it before waiting for that many bytes.
 */
import { SigilError } from '../../core/errors.ts';

export const TPM_HEADER_BYTES = 10;
/** No TPM command or response comes near this (TPM_PT_MAX_*_SIZE is 4 KiB on swtpm and chips). */
export const MAX_TPM_MESSAGE_BYTES = 64 * 1024;

export function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

export function u32Bytes(value: number): Uint8Array {
  return new Uint8Array([value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff]);
}

/** Reject a command whose header lies about its length: the TPM would wait for bytes that never come. */
export function checkTpmCommand(command: Uint8Array): void {
  if (command.length < TPM_HEADER_BYTES || command.length > MAX_TPM_MESSAGE_BYTES) {
    throw new SigilError('tpm.transport_command_invalid', `a TPM command must be 10 to ${MAX_TPM_MESSAGE_BYTES} bytes long`, {
      length: command.length,
    });
  }
  const size = readU32(command, 2);
  if (size !== command.length) {
    throw new SigilError('tpm.transport_command_invalid', 'the TPM command header size does not match its length', {
      headerSize: size,
      length: command.length,
    });
  }
}

/** Validate a response's declared size (bytes 2..6) as soon as it is known. */
export function checkTpmResponseSize(size: number, what: string): number {
  if (size < TPM_HEADER_BYTES || size > MAX_TPM_MESSAGE_BYTES) {
    throw new SigilError('tpm.transport_response_invalid', `${what} declared a response of ${size} bytes (allowed 10 to ${MAX_TPM_MESSAGE_BYTES})`, {
      size,
    });
  }
  return size;
}

/** Frame-length function for a raw TPM stream: total length once the size field has arrived. */
export function tpmResponseLength(buffered: Uint8Array, what = 'the TPM'): number | undefined {
  if (buffered.length < 6) return undefined;
  return checkTpmResponseSize(readU32(buffered, 2), what);
}
