import { defineCommand } from '../command.ts';
import { TPM_CC, TPM_RH, TPM_ST } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import { TPM2B_DIGEST, TPM2B_NAME, TPM2B_NONCE, TPM2B_OPERAND, TPM2B_TIMEOUT, TPML_DIGEST, TPML_PCR_SELECTION, TPMT_TK, type PcrSelection, type Ticket } from '../structures/basic.ts';
import { TPMT_SIGNATURE, type TpmSignature } from '../structures/signature.ts';

/**
 * Enhanced authorization commands (Part 3, section 23). Each takes the policy (or trial) session's
 * handle as a plain handle: the session is the object being changed, not an authorization for the
 * command. PolicySecret and PolicyNV also authorize an entity, so they take an AuthHandle.
 */

/** A ticket that says "no ticket": PolicyAuthorize's checkTicket for a trial session (Part 2, 10.7.1). */
export function nullVerifiedTicket(): Ticket {
  return { tag: TPM_ST.VERIFIED, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) };
}

export interface PolicyAuthResult {
  /** Empty unless `expiration` was negative and the TPM issued a ticket. */
  timeout: Uint8Array;
  policyTicket: Ticket;
}

export interface PolicySignedInput {
  /** nonceTPM of the policy session when the signature is bound to it; empty otherwise. */
  nonceTpm?: Uint8Array;
  cpHashA?: Uint8Array;
  policyRef?: Uint8Array;
  /** Seconds; 0 means no expiry, negative asks for a ticket. */
  expiration?: number;
  auth: TpmSignature;
}

/** authObject is a loaded signing key (often a public key from LoadExternal). */
export function policySigned(authObject: HandleArg, policySession: number, input: PolicySignedInput) {
  return defineCommand<PolicyAuthResult>({
    code: TPM_CC.PolicySigned,
    handles: [authObject, policySession],
    parameters: (w) => {
      TPM2B_NONCE.write(w, input.nonceTpm ?? new Uint8Array(0));
      TPM2B_DIGEST.write(w, input.cpHashA ?? new Uint8Array(0));
      TPM2B_NONCE.write(w, input.policyRef ?? new Uint8Array(0));
      w.u32(input.expiration ?? 0);
      TPMT_SIGNATURE.write(w, input.auth);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => ({ timeout: TPM2B_TIMEOUT.read(r), policyTicket: TPMT_TK.read(r) }),
  });
}

export interface PolicySecretInput {
  nonceTpm?: Uint8Array;
  cpHashA?: Uint8Array;
  policyRef?: Uint8Array;
  expiration?: number;
}

/** Proves knowledge of authHandle's authValue (or satisfies its policy) inside this policy. */
export function policySecret(authHandle: AuthHandle, policySession: number, input: PolicySecretInput = {}) {
  return defineCommand<PolicyAuthResult>({
    code: TPM_CC.PolicySecret,
    authHandles: [authHandle],
    handles: [policySession],
    parameters: (w) => {
      TPM2B_NONCE.write(w, input.nonceTpm ?? new Uint8Array(0));
      TPM2B_DIGEST.write(w, input.cpHashA ?? new Uint8Array(0));
      TPM2B_NONCE.write(w, input.policyRef ?? new Uint8Array(0));
      w.u32(input.expiration ?? 0);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => ({ timeout: TPM2B_TIMEOUT.read(r), policyTicket: TPMT_TK.read(r) }),
  });
}

/** An empty pcrDigest asks the TPM to use the current PCR values. */
export function policyPcr(policySession: number, pcrs: PcrSelection[], pcrDigest: Uint8Array = new Uint8Array(0)) {
  return defineCommand({
    code: TPM_CC.PolicyPCR,
    handles: [policySession],
    parameters: (w) => {
      TPM2B_DIGEST.write(w, pcrDigest);
      TPML_PCR_SELECTION.write(w, pcrs);
    },
    encryptableCommand: true,
  });
}

export function policyAuthorize(policySession: number, approvedPolicy: Uint8Array, policyRef: Uint8Array, keySignName: Uint8Array, checkTicket: Ticket) {
  return defineCommand({
    code: TPM_CC.PolicyAuthorize,
    handles: [policySession],
    parameters: (w) => {
      TPM2B_DIGEST.write(w, approvedPolicy);
      TPM2B_NONCE.write(w, policyRef);
      TPM2B_NAME.write(w, keySignName);
      TPMT_TK.write(w, checkTicket);
    },
    encryptableCommand: true,
  });
}

/** Compares operandB with the NV index's contents at `offset` using a TPM_EO operation. */
export function policyNv(authHandle: AuthHandle, nvIndex: HandleArg, policySession: number, operandB: Uint8Array, offset: number, operation: number) {
  return defineCommand({
    code: TPM_CC.PolicyNV,
    authHandles: [authHandle],
    handles: [nvIndex, policySession],
    parameters: (w) => {
      TPM2B_OPERAND.write(w, operandB);
      w.u16(offset).u16(operation);
    },
    encryptableCommand: true,
  });
}

export function policyAuthValue(policySession: number) {
  return defineCommand({ code: TPM_CC.PolicyAuthValue, handles: [policySession] });
}

export function policyPassword(policySession: number) {
  return defineCommand({ code: TPM_CC.PolicyPassword, handles: [policySession] });
}

export function policyCommandCode(policySession: number, commandCode: number) {
  return defineCommand({ code: TPM_CC.PolicyCommandCode, handles: [policySession], parameters: (w) => w.u32(commandCode) });
}

/** 2 to 8 branch digests; the session's current digest must equal one of them (unless trial). */
export function policyOr(policySession: number, digests: Uint8Array[]) {
  return defineCommand({ code: TPM_CC.PolicyOR, handles: [policySession], parameters: (w) => TPML_DIGEST.write(w, digests) });
}

export function policyGetDigest(policySession: number) {
  return defineCommand<Uint8Array>({
    code: TPM_CC.PolicyGetDigest,
    handles: [policySession],
    encryptableResponse: true,
    parse: (r) => TPM2B_DIGEST.read(r),
  });
}

export function policyRestart(sessionHandle: number) {
  return defineCommand({ code: TPM_CC.PolicyRestart, handles: [sessionHandle] });
}

export function policyDuplicationSelect(policySession: number, objectName: Uint8Array, newParentName: Uint8Array, includeObject: boolean) {
  return defineCommand({
    code: TPM_CC.PolicyDuplicationSelect,
    handles: [policySession],
    parameters: (w) => {
      TPM2B_NAME.write(w, objectName);
      TPM2B_NAME.write(w, newParentName);
      w.u8(includeObject ? 1 : 0);
    },
    encryptableCommand: true,
  });
}
