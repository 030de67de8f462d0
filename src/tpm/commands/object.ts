import type { Reader, Writer } from '../../core/bytes.ts';
import { defineCommand } from '../command.ts';
import { TPM_CC } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import { TPM2B_DATA, TPM2B_DIGEST, TPM2B_NAME, TPM2B_PRIVATE, TPM2B_SENSITIVE_DATA, TPML_PCR_SELECTION, TPMT_TK, type PcrSelection, type Ticket } from '../structures/basic.ts';
import { TPM2B_CREATION_DATA, type CreationData } from '../structures/creation.ts';
import { TPM2B_PUBLIC, type TpmPublic } from '../structures/public.ts';
import { TPM2B_SENSITIVE_CREATE, TPMT_SENSITIVE, type Sensitive, type SensitiveCreate } from '../structures/sensitive.ts';
import { optionalSized } from '../marshal/codec.ts';

/** CreatePrimary, Create, Load, LoadExternal, ReadPublic, Unseal (Part 3, sections 12, 24). */

export interface CreateInput {
  inSensitive?: Partial<SensitiveCreate>;
  inPublic: TpmPublic;
  outsideInfo?: Uint8Array;
  creationPcr?: PcrSelection[];
}

export interface CreationResult {
  outPublic: TpmPublic;
  creationData: CreationData;
  creationHash: Uint8Array;
  creationTicket: Ticket;
}

export interface CreatePrimaryResult extends CreationResult {
  handle: number;
  name: Uint8Array;
}

export interface CreateResult extends CreationResult {
  outPrivate: Uint8Array;
}

function writeCreateInput(input: CreateInput) {
  return (w: Writer) => {
    TPM2B_SENSITIVE_CREATE.write(w, { userAuth: input.inSensitive?.userAuth ?? new Uint8Array(0), data: input.inSensitive?.data ?? new Uint8Array(0) });
    TPM2B_PUBLIC.write(w, input.inPublic);
    TPM2B_DATA.write(w, input.outsideInfo ?? new Uint8Array(0));
    TPML_PCR_SELECTION.write(w, input.creationPcr ?? []);
  };
}

function readCreation(r: Reader): CreationResult {
  return {
    outPublic: TPM2B_PUBLIC.read(r),
    creationData: TPM2B_CREATION_DATA.read(r),
    creationHash: TPM2B_DIGEST.read(r),
    creationTicket: TPMT_TK.read(r),
  };
}

export function createPrimary(primaryHandle: AuthHandle, input: CreateInput) {
  return defineCommand<CreatePrimaryResult>({
    code: TPM_CC.CreatePrimary,
    authHandles: [primaryHandle],
    parameters: writeCreateInput(input),
    encryptableCommand: true,
    encryptableResponse: false,
    responseHandles: 1,
    parse: (r, handles) => {
      const creation = readCreation(r);
      return { handle: handles[0], ...creation, name: TPM2B_NAME.read(r) };
    },
  });
}

export function create(parentHandle: AuthHandle, input: CreateInput) {
  return defineCommand<CreateResult>({
    code: TPM_CC.Create,
    authHandles: [parentHandle],
    parameters: writeCreateInput(input),
    encryptableCommand: true,
    encryptableResponse: true,
    parse: (r) => {
      const outPrivate = TPM2B_PRIVATE.read(r);
      return { outPrivate, ...readCreation(r) };
    },
  });
}

export interface LoadResult {
  handle: number;
  name: Uint8Array;
}

export function load(parentHandle: AuthHandle, inPrivate: Uint8Array, inPublic: TpmPublic) {
  return defineCommand<LoadResult>({
    code: TPM_CC.Load,
    authHandles: [parentHandle],
    parameters: (w) => {
      TPM2B_PRIVATE.write(w, inPrivate);
      TPM2B_PUBLIC.write(w, inPublic);
    },
    encryptableCommand: true,
    responseHandles: 1,
    parse: (r, handles) => ({ handle: handles[0], name: TPM2B_NAME.read(r) }),
  });
}

// LoadExternal allows an empty TPM2B_SENSITIVE: a public key only.
const OPTIONAL_SENSITIVE = optionalSized('TPM2B_SENSITIVE', TPMT_SENSITIVE);

/** Load a public key (and optionally its private part) not protected by a TPM parent. */
export function loadExternal(inPublic: TpmPublic, hierarchy: number, inPrivate?: Sensitive) {
  return defineCommand<LoadResult>({
    code: TPM_CC.LoadExternal,
    parameters: (w) => {
      OPTIONAL_SENSITIVE.write(w, inPrivate);
      TPM2B_PUBLIC.write(w, inPublic);
      w.u32(hierarchy);
    },
    encryptableCommand: true,
    responseHandles: 1,
    parse: (r, handles) => ({ handle: handles[0], name: TPM2B_NAME.read(r) }),
  });
}

export interface ReadPublicResult {
  outPublic: TpmPublic;
  name: Uint8Array;
  qualifiedName: Uint8Array;
}

export function readPublic(objectHandle: HandleArg) {
  return defineCommand<ReadPublicResult>({
    code: TPM_CC.ReadPublic,
    handles: [objectHandle],
    encryptableResponse: true,
    parse: (r) => ({ outPublic: TPM2B_PUBLIC.read(r), name: TPM2B_NAME.read(r), qualifiedName: TPM2B_NAME.read(r) }),
  });
}

export function unseal(itemHandle: AuthHandle) {
  return defineCommand<Uint8Array>({
    code: TPM_CC.Unseal,
    authHandles: [itemHandle],
    encryptableResponse: true,
    parse: (r) => TPM2B_SENSITIVE_DATA.read(r),
  });
}
