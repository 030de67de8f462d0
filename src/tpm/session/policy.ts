import { SigilError } from '../../core/errors.ts';
import type { RunOptions, TpmClient } from '../client.ts';
import type { Command } from '../command.ts';
import {
  nullVerifiedTicket,
  policyAuthorize,
  policyAuthValue,
  policyCommandCode,
  policyDuplicationSelect,
  policyGetDigest,
  policyNv,
  policyOr,
  policyPassword,
  policyPcr,
  policyRestart,
  policySecret,
  policySigned,
  type PolicyAuthResult,
  type PolicySecretInput,
  type PolicySignedInput,
} from '../commands/policy.ts';
import { TPM_SE } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import type { PcrSelection, Ticket } from '../structures/basic.ts';
import { KeyedSession, openSession, type SessionOptions, type StartedSession } from './hmac.ts';
import type { SessionEntity } from './session.ts';

/**
 * Policy sessions (TPM_SE_POLICY) and trial sessions (TPM_SE_TRIAL), Part 1, 19.7. The methods run
 * the policy commands on this session and track what the TPM tracks: whether PolicyAuthValue
 * (authValue joins the HMAC key) or PolicyPassword (authValue in clear) was asserted. A policy
 * session is never "bound" for HMAC purposes, though a bind still feeds its session key.
 */

export interface PolicySessionOptions extends SessionOptions {
  /** A trial session only computes a digest; it cannot authorize anything. */
  trial?: boolean;
}

export class PolicySession extends KeyedSession {
  readonly trial: boolean;
  private readonly client: TpmClient;
  private authValueNeeded = false;
  private passwordNeeded = false;
  private asserted: string[] = [];

  private constructor(client: TpmClient, started: StartedSession, trial: boolean) {
    super(started);
    this.client = client;
    this.trial = trial;
  }

  static async start(client: TpmClient, options: PolicySessionOptions = {}): Promise<PolicySession> {
    const trial = options.trial ?? false;
    return new PolicySession(client, await openSession(client, trial ? TPM_SE.TRIAL : TPM_SE.POLICY, options), trial);
  }

  /** The policy commands run since the session started or was last reset, e.g. ['PolicyPCR']. */
  get assertions(): readonly string[] {
    return this.asserted;
  }

  get requiresAuthValue(): boolean {
    return this.authValueNeeded;
  }

  get requiresPassword(): boolean {
    return this.passwordNeeded;
  }

  protected includeAuthValue(_entity: SessionEntity): boolean {
    return this.authValueNeeded;
  }

  protected override usesPassword(): boolean {
    return this.passwordNeeded;
  }

  override prepare(entity: SessionEntity | undefined): void {
    if (this.trial) throw new SigilError('tpm.session_invalid', 'a trial session computes a policy digest; it cannot authorize a command');
    super.prepare(entity);
  }

  /** The TPM resets a policy session's digest and flags after each command it authorizes (continueSession). */
  protected override afterResponse(continued: boolean): void {
    if (continued) this.reset();
  }

  private reset(): void {
    this.authValueNeeded = false;
    this.passwordNeeded = false;
    this.asserted = [];
  }

  private async assert<R>(name: string, command: Command<R>): Promise<R> {
    this.assertOpen();
    const result = await this.client.run(command);
    this.asserted.push(name);
    return result;
  }

  /** An empty or absent pcrDigest means "the PCRs' current values" (the usual case when unsealing). */
  async policyPCR(selection: PcrSelection[], pcrDigest?: Uint8Array): Promise<void> {
    try {
      await this.assert('PolicyPCR', policyPcr(this.handle, selection, pcrDigest));
    } catch (error) {
      // With an explicit digest the TPM compares at once and answers TPM_RC_VALUE on a mismatch.
      if (pcrDigest && pcrDigest.length > 0 && error instanceof SigilError && error.code === 'tpm.rc.value') {
        throw pcrMismatch(error, ['PolicyPCR']);
      }
      throw error;
    }
  }

  async policyAuthValue(): Promise<void> {
    await this.assert('PolicyAuthValue', policyAuthValue(this.handle));
    this.authValueNeeded = true;
    this.passwordNeeded = false;
  }

  async policyPassword(): Promise<void> {
    await this.assert('PolicyPassword', policyPassword(this.handle));
    this.passwordNeeded = true;
    this.authValueNeeded = false;
  }

  async policyCommandCode(commandCode: number): Promise<void> {
    await this.assert('PolicyCommandCode', policyCommandCode(this.handle, commandCode));
  }

  async policyOR(digests: Uint8Array[]): Promise<void> {
    await this.assert('PolicyOR', policyOr(this.handle, digests));
  }

  async policyNV(authHandle: AuthHandle, nvIndex: HandleArg, operandB: Uint8Array, offset: number, operation: number): Promise<void> {
    await this.assert('PolicyNV', policyNv(authHandle, nvIndex, this.handle, operandB, offset, operation));
  }

  /** checkTicket defaults to the NULL ticket (enough in a trial session). */
  async policyAuthorize(approvedPolicy: Uint8Array, policyRef: Uint8Array, keySignName: Uint8Array, checkTicket: Ticket = nullVerifiedTicket()): Promise<void> {
    await this.assert('PolicyAuthorize', policyAuthorize(this.handle, approvedPolicy, policyRef, keySignName, checkTicket));
  }

  /** Pass `nonceTpm: session.nonceTpm` to bind the signature to this session. */
  async policySigned(authObject: HandleArg, input: PolicySignedInput): Promise<PolicyAuthResult> {
    return this.assert('PolicySigned', policySigned(authObject, this.handle, input));
  }

  async policySecret(authHandle: AuthHandle, input: PolicySecretInput = {}): Promise<PolicyAuthResult> {
    return this.assert('PolicySecret', policySecret(authHandle, this.handle, input));
  }

  async policyDuplicationSelect(objectName: Uint8Array, newParentName: Uint8Array, includeObject: boolean): Promise<void> {
    await this.assert('PolicyDuplicationSelect', policyDuplicationSelect(this.handle, objectName, newParentName, includeObject));
  }

  async getDigest(): Promise<Uint8Array> {
    this.assertOpen();
    return this.client.run(policyGetDigest(this.handle));
  }

  async restart(): Promise<void> {
    this.assertOpen();
    await this.client.run(policyRestart(this.handle));
    this.reset();
  }

  /**
   * Run a command this session authorizes (its AuthHandle names this session), turning a policy
   * failure into an error that says which check failed.
   */
  async run<R>(command: Command<R>, options?: RunOptions): Promise<R> {
    const assertions = [...this.asserted];
    try {
      return await this.client.run(command, options);
    } catch (error) {
      throw explainPolicyFailure(error, assertions);
    }
  }
}

function pcrMismatch(error: SigilError, assertions: readonly string[]): SigilError {
  const changed = error.code === 'tpm.rc.pcr_changed';
  const message = changed
    ? 'PolicyPCR failed: PCR values changed after the policy session checked them'
    : 'PolicyPCR failed: PCR values differ from the ones the object was sealed to';
  return new SigilError('tpm.policy_pcr_mismatch', message, { ...error.details, tpmError: error.code, assertions: [...assertions] }, { cause: error });
}

/**
 * For the high-level API: a TPM_RC_POLICY_FAIL (or TPM_RC_PCR_CHANGED) on a command authorized by
 * a policy that included PolicyPCR becomes `tpm.policy_pcr_mismatch`. Other errors pass unchanged.
 * The TPM does not say which assertion differed; with PolicyPCR in the policy, the PCRs are the
 * part that changes between sealing and unsealing, so that is what the message names.
 */
export function explainPolicyFailure(error: unknown, assertions: readonly string[]): unknown {
  if (!(error instanceof SigilError) || !assertions.includes('PolicyPCR')) return error;
  if (error.code === 'tpm.rc.policy_fail' || error.code === 'tpm.rc.pcr_changed') return pcrMismatch(error, assertions);
  return error;
}
