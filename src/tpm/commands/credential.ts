import { defineCommand } from '../command.ts';
import { TPM_CC } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import { TPM2B_DIGEST, TPM2B_ENCRYPTED_SECRET, TPM2B_ID_OBJECT, TPM2B_NAME } from '../structures/basic.ts';

/** ActivateCredential, MakeCredential (Part 3, sections 12.5 and 12.6; protocol in Part 1, 24). */

export interface Credential {
  /** TPM2B_ID_OBJECT contents: integrityHMAC ‖ encIdentity. */
  credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents: the seed, encrypted to the protecting key. */
  secret: Uint8Array;
}

/**
 * TPM2_ActivateCredential: activateHandle @ADMIN (the credentialed object, e.g. an AK),
 * keyHandle @USER (the key the credential was made for, e.g. an EK); credentialBlob
 * TPM2B_ID_OBJECT, secret TPM2B_ENCRYPTED_SECRET → certInfo TPM2B_DIGEST.
 * The TPM releases certInfo only if activateHandle's name is the one the credential was made for.
 * An EK (userWithAuth clear) needs a policy session with PolicySecret(TPM_RH_ENDORSEMENT) here.
 */
export function activateCredential(activateHandle: AuthHandle, keyHandle: AuthHandle, credential: Credential) {
  return defineCommand<Uint8Array>({
    code: TPM_CC.ActivateCredential,
    authHandles: [activateHandle, keyHandle],
    parameters: (w) => {
      TPM2B_ID_OBJECT.write(w, credential.credentialBlob);
      TPM2B_ENCRYPTED_SECRET.write(w, credential.secret);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => TPM2B_DIGEST.read(r),
  });
}

/**
 * TPM2_MakeCredential: handle (no auth; a loaded public key, e.g. an EK loaded with LoadExternal);
 * credential TPM2B_DIGEST, objectName TPM2B_NAME → credentialBlob TPM2B_ID_OBJECT,
 * secret TPM2B_ENCRYPTED_SECRET. What a CA does in software, done by a TPM.
 */
export function makeCredential(handle: HandleArg, credential: Uint8Array, objectName: Uint8Array) {
  return defineCommand<Credential>({
    code: TPM_CC.MakeCredential,
    handles: [handle],
    parameters: (w) => {
      TPM2B_DIGEST.write(w, credential);
      TPM2B_NAME.write(w, objectName);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => ({ credentialBlob: TPM2B_ID_OBJECT.read(r), secret: TPM2B_ENCRYPTED_SECRET.read(r) }),
  });
}
