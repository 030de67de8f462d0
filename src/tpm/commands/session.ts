import { defineCommand } from '../command.ts';
import { TPM_CC, TPM_RH } from '../constants.ts';
import type { HandleArg } from '../handles.ts';
import { TPM2B_ENCRYPTED_SECRET, TPM2B_NONCE } from '../structures/basic.ts';
import { TPMT_SYM_DEF, type SymmetricDefinition } from '../structures/public.ts';

/** TPM2_StartAuthSession (Part 3, 11.1). */

export interface StartAuthSessionInput {
  /** The key that decrypts `encryptedSalt`; TPM_RH_NULL for an unsalted session. */
  tpmKey?: HandleArg;
  /** The entity whose authValue goes into the session key; TPM_RH_NULL for an unbound session. */
  bind?: HandleArg;
  nonceCaller: Uint8Array;
  /** The salt encrypted to `tpmKey` (OAEP ciphertext or a marshaled TPMS_ECC_POINT); empty when unsalted. */
  encryptedSalt?: Uint8Array;
  /** TPM_SE.HMAC, POLICY or TRIAL. */
  sessionType: number;
  symmetric: SymmetricDefinition;
  authHash: number;
}

export interface StartAuthSessionResult {
  handle: number;
  nonceTpm: Uint8Array;
}

export function startAuthSession(input: StartAuthSessionInput) {
  return defineCommand<StartAuthSessionResult>({
    code: TPM_CC.StartAuthSession,
    handles: [input.tpmKey ?? TPM_RH.NULL, input.bind ?? TPM_RH.NULL],
    parameters: (w) => {
      TPM2B_NONCE.write(w, input.nonceCaller);
      TPM2B_ENCRYPTED_SECRET.write(w, input.encryptedSalt ?? new Uint8Array(0));
      w.u8(input.sessionType);
      TPMT_SYM_DEF.write(w, input.symmetric);
      w.u16(input.authHash);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    responseHandles: 1,
    parse: (r, handles) => ({ handle: handles[0], nonceTpm: TPM2B_NONCE.read(r) }),
  });
}
