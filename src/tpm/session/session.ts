/**
 * What the client needs from any session (password, HMAC, policy, trial). A session value is
 * passed to each command that uses it, as in go-tpm's direct API.
 *
 * Per command the client calls, in this order (Part 1, 18-21):
 *   prepare → encryptParameter (if `decrypt`) → authorize → [TPM] → verifyResponse →
 *   decryptParameter (if `encrypt`).
 */
export interface SessionEntity {
  handle: number;
  name: Uint8Array;
  /** The entity's authValue (empty when none). */
  authValue: Uint8Array;
}

export interface CommandContext {
  commandCode: number;
  /** Names of every command handle, in order (cpHash input). */
  handleNames: Uint8Array[];
  /** The marshaled parameter area, first parameter already encrypted. */
  parameters: Uint8Array;
  /**
   * Only for the first session when it authorizes a handle: the nonceTPM of a different session
   * that decrypts, then of one that encrypts (Part 1, 19.6.5; reference ComputeCommandHMAC).
   */
  extraNonces?: Uint8Array[];
}

export interface ResponseContext {
  commandCode: number;
  /** The marshaled response parameter area, still encrypted. */
  parameters: Uint8Array;
}

export interface ResponseAuth {
  nonce: Uint8Array;
  attributes: number;
  hmac: Uint8Array;
}

export interface Session {
  readonly handle: number;
  /** Whether this session encrypts the command's first parameter (TPMA_SESSION.decrypt). */
  readonly decrypt: boolean;
  /** Whether this session encrypts the response's first parameter (TPMA_SESSION.encrypt). */
  readonly encrypt: boolean;
  /** Start a command: roll the caller nonce; `entity` is set when the session authorizes a handle. */
  prepare(entity: SessionEntity | undefined): void | Promise<void>;
  encryptParameter?(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** The marshaled TPMS_AUTH_COMMAND for this command. */
  authorize(context: CommandContext): Uint8Array | Promise<Uint8Array>;
  /** Check the TPM's response HMAC (and roll the TPM nonce); throw SigilError when it is wrong. */
  verifyResponse(context: ResponseContext, auth: ResponseAuth): void | Promise<void>;
  decryptParameter?(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
  /** Whether any handle needs its name for this session (HMAC/policy sessions do; passwords don't). */
  readonly needsNames: boolean;
  /** The TPM's current nonce (HMAC and policy sessions; absent for passwords). */
  readonly nonceTpm?: Uint8Array;
}
