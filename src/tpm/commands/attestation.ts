import type { Reader } from '../../core/bytes.ts';
import { defineCommand } from '../command.ts';
import { TPM_CC, TPM_RH, TPM_ST } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import { unmarshal } from '../marshal/codec.ts';
import { TPMS_ATTEST, type Attest } from '../structures/attest.ts';
import { TPM2B_ATTEST, TPM2B_DATA, TPM2B_DIGEST, TPML_PCR_SELECTION, TPMT_TK, type PcrSelection, type Ticket } from '../structures/basic.ts';
import { SCHEME_NULL, TPMT_SCHEME, type Scheme } from '../structures/public.ts';
import { TPMT_SIGNATURE, type TpmSignature } from '../structures/signature.ts';

/**
 * Quote, Certify, CertifyCreation (Part 3, section 18) and Sign, VerifySignature (section 20).
 * Every attestation returns the signed bytes as the TPM produced them (`attestBytes`, the contents
 * of TPM2B_ATTEST, which is what the signature covers) and the parsed TPMS_ATTEST.
 */

export interface AttestResult {
  /** The TPMS_ATTEST bytes the signature covers. */
  attestBytes: Uint8Array;
  attest: Attest;
  signature: TpmSignature;
}

function readAttestResult(r: Reader): AttestResult {
  const attestBytes = TPM2B_ATTEST.read(r);
  const signature = TPMT_SIGNATURE.read(r);
  return { attestBytes, attest: unmarshal(TPMS_ATTEST, attestBytes, 'tpm.attest_malformed'), signature };
}

/**
 * TPM2_Quote: signHandle @USER; qualifyingData TPM2B_DATA, inScheme TPMT_SIG_SCHEME,
 * PCRselect TPML_PCR_SELECTION → quoted TPM2B_ATTEST, signature TPMT_SIGNATURE.
 * inScheme NULL uses the key's own scheme (an AK always has one).
 */
export function quote(signHandle: AuthHandle, qualifyingData: Uint8Array, pcrSelect: PcrSelection[], inScheme: Scheme = SCHEME_NULL) {
  return defineCommand<AttestResult>({
    code: TPM_CC.Quote,
    authHandles: [signHandle],
    parameters: (w) => {
      TPM2B_DATA.write(w, qualifyingData);
      TPMT_SCHEME.write(w, inScheme);
      TPML_PCR_SELECTION.write(w, pcrSelect);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: readAttestResult,
  });
}

/**
 * TPM2_Certify: objectHandle @ADMIN, signHandle @USER; qualifyingData TPM2B_DATA,
 * inScheme TPMT_SIG_SCHEME → certifyInfo TPM2B_ATTEST, signature TPMT_SIGNATURE.
 * The ADMIN role of an object with adminWithPolicy (an EK) needs a policy session.
 */
export function certify(objectHandle: AuthHandle, signHandle: AuthHandle, qualifyingData: Uint8Array, inScheme: Scheme = SCHEME_NULL) {
  return defineCommand<AttestResult>({
    code: TPM_CC.Certify,
    authHandles: [objectHandle, signHandle],
    parameters: (w) => {
      TPM2B_DATA.write(w, qualifyingData);
      TPMT_SCHEME.write(w, inScheme);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: readAttestResult,
  });
}

/**
 * TPM2_CertifyCreation: signHandle @USER, objectHandle (no auth); qualifyingData TPM2B_DATA,
 * creationHash TPM2B_DIGEST, inScheme TPMT_SIG_SCHEME, creationTicket TPMT_TK_CREATION →
 * certifyInfo TPM2B_ATTEST, signature TPMT_SIGNATURE. The hash and ticket come from Create/CreatePrimary.
 */
export function certifyCreation(
  signHandle: AuthHandle,
  objectHandle: HandleArg,
  qualifyingData: Uint8Array,
  creationHash: Uint8Array,
  creationTicket: Ticket,
  inScheme: Scheme = SCHEME_NULL,
) {
  return defineCommand<AttestResult>({
    code: TPM_CC.CertifyCreation,
    authHandles: [signHandle],
    handles: [objectHandle],
    parameters: (w) => {
      TPM2B_DATA.write(w, qualifyingData);
      TPM2B_DIGEST.write(w, creationHash);
      TPMT_SCHEME.write(w, inScheme);
      TPMT_TK.write(w, creationTicket);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: readAttestResult,
  });
}

/**
 * The NULL TPMT_TK_HASHCHECK: "this digest was not made by the TPM". Enough for unrestricted keys;
 * a restricted key refuses it (it must only sign digests the TPM itself computed and checked).
 */
export function nullHashcheckTicket(): Ticket {
  return { tag: TPM_ST.HASHCHECK, hierarchy: TPM_RH.NULL, digest: new Uint8Array(0) };
}

/**
 * TPM2_Sign: keyHandle @USER; digest TPM2B_DIGEST, inScheme TPMT_SIG_SCHEME,
 * validation TPMT_TK_HASHCHECK → signature TPMT_SIGNATURE.
 */
export function sign(keyHandle: AuthHandle, digest: Uint8Array, inScheme: Scheme = SCHEME_NULL, validation: Ticket = nullHashcheckTicket()) {
  return defineCommand<TpmSignature>({
    code: TPM_CC.Sign,
    authHandles: [keyHandle],
    parameters: (w) => {
      TPM2B_DIGEST.write(w, digest);
      TPMT_SCHEME.write(w, inScheme);
      TPMT_TK.write(w, validation);
    },
    encryptableCommand: true,
    encryptableResponse: false,
    parse: (r) => TPMT_SIGNATURE.read(r),
  });
}

/**
 * TPM2_VerifySignature: keyHandle (no auth); digest TPM2B_DIGEST, signature TPMT_SIGNATURE →
 * validation TPMT_TK_VERIFIED. A bad signature is TPM_RC_SIGNATURE (SigilError `tpm.rc.signature`).
 */
export function verifySignature(keyHandle: HandleArg, digest: Uint8Array, signature: TpmSignature) {
  return defineCommand<Ticket>({
    code: TPM_CC.VerifySignature,
    handles: [keyHandle],
    parameters: (w) => {
      TPM2B_DIGEST.write(w, digest);
      TPMT_SIGNATURE.write(w, signature);
    },
    encryptableCommand: true,
    encryptableResponse: false,
    parse: (r) => TPMT_TK.read(r),
  });
}
