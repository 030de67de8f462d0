/**
 * How TPM command bytes reach a TPM. Everything above this interface (marshaling, sessions, the
 * client) is transport-agnostic: swtpm over TCP, the MS simulator framing, /dev/tpmrm0, or a
 * recording wrapper in tests.
 */
export interface TpmTransport {
  /** Send one complete TPM command, resolve with the complete response. One command at a time. */
  send(command: Uint8Array): Promise<Uint8Array>;
  /** Release the connection or file. Idempotent. */
  close(): Promise<void>;
}
