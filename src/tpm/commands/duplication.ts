import { defineCommand } from '../command.ts';
import { TPM_CC } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import { TPM2B_DATA, TPM2B_ENCRYPTED_SECRET, TPM2B_PRIVATE } from '../structures/basic.ts';
import { SYM_NULL, TPM2B_PUBLIC, TPMT_SYM_DEF, type SymmetricDefinition, type TpmPublic } from '../structures/public.ts';

/** Duplicate, Import (Part 3, sections 13.1 and 13.3; wrapping in Part 1, 23.3). */

export interface DuplicateResult {
  /** The inner-wrapper key the TPM chose when encryptionKeyIn was empty (else empty). */
  encryptionKeyOut: Uint8Array;
  /** TPM2B_PRIVATE contents: the (inner and/or outer) wrapped TPM2B_SENSITIVE. */
  duplicate: Uint8Array;
  /** The outer-wrapper seed encrypted to the new parent (empty when the new parent is TPM_RH_NULL). */
  outSymSeed: Uint8Array;
}

/**
 * TPM2_Duplicate: objectHandle @DUP, newParentHandle (no auth); encryptionKeyIn TPM2B_DATA,
 * symmetricAlg TPMT_SYM_DEF_OBJECT → encryptionKeyOut TPM2B_DATA, duplicate TPM2B_PRIVATE,
 * outSymSeed TPM2B_ENCRYPTED_SECRET.
 * The DUP role can only be given by a policy session (PolicyCommandCode(Duplicate) or
 * PolicyDuplicationSelect), and the object must have fixedParent clear.
 */
export function duplicate(objectHandle: AuthHandle, newParentHandle: HandleArg, symmetricAlg: SymmetricDefinition = SYM_NULL, encryptionKeyIn: Uint8Array = new Uint8Array(0)) {
  return defineCommand<DuplicateResult>({
    code: TPM_CC.Duplicate,
    authHandles: [objectHandle],
    handles: [newParentHandle],
    parameters: (w) => {
      TPM2B_DATA.write(w, encryptionKeyIn);
      TPMT_SYM_DEF.write(w, symmetricAlg);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => ({ encryptionKeyOut: TPM2B_DATA.read(r), duplicate: TPM2B_PRIVATE.read(r), outSymSeed: TPM2B_ENCRYPTED_SECRET.read(r) }),
  });
}

export interface ImportInput {
  /** The inner-wrapper key (empty when there is no inner wrapper). */
  encryptionKey?: Uint8Array;
  objectPublic: TpmPublic;
  duplicate: Uint8Array;
  /** The outer-wrapper seed (empty when there is no outer wrapper). */
  inSymSeed?: Uint8Array;
  /** The inner wrapper's algorithm (NULL for none). */
  symmetricAlg?: SymmetricDefinition;
}

/**
 * TPM2_Import: parentHandle @USER; encryptionKey TPM2B_DATA, objectPublic TPM2B_PUBLIC,
 * duplicate TPM2B_PRIVATE, inSymSeed TPM2B_ENCRYPTED_SECRET, symmetricAlg TPMT_SYM_DEF_OBJECT →
 * outPrivate TPM2B_PRIVATE, which Load takes with objectPublic under the same parent.
 * The imported object must have fixedTPM and fixedParent clear.
 */
export function importObject(parentHandle: AuthHandle, input: ImportInput) {
  return defineCommand<Uint8Array>({
    code: TPM_CC.Import,
    authHandles: [parentHandle],
    parameters: (w) => {
      TPM2B_DATA.write(w, input.encryptionKey ?? new Uint8Array(0));
      TPM2B_PUBLIC.write(w, input.objectPublic);
      TPM2B_PRIVATE.write(w, input.duplicate);
      TPM2B_ENCRYPTED_SECRET.write(w, input.inSymSeed ?? new Uint8Array(0));
      TPMT_SYM_DEF.write(w, input.symmetricAlg ?? SYM_NULL);
    },
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => TPM2B_PRIVATE.read(r),
  });
}
