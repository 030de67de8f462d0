import { defineCommand } from '../command.ts';
import { TPM_CC } from '../constants.ts';
import type { AuthHandle } from '../handles.ts';
import { TPM2B_EVENT, TPML_DIGEST, TPML_DIGEST_VALUES, TPML_PCR_SELECTION, type PcrSelection, type TaggedHash } from '../structures/basic.ts';

/** PCR_Read, PCR_Extend, PCR_Event, PCR_Reset (Part 3, section 22). */

export interface PcrReadResult {
  updateCounter: number;
  selection: PcrSelection[];
  digests: Uint8Array[];
}

export function pcrRead(selection: PcrSelection[]) {
  return defineCommand<PcrReadResult>({
    code: TPM_CC.PCR_Read,
    parameters: (w) => TPML_PCR_SELECTION.write(w, selection),
    parse: (r) => ({ updateCounter: r.u32(), selection: TPML_PCR_SELECTION.read(r), digests: TPML_DIGEST.read(r) }),
  });
}

/** pcrHandle is the PCR index (0..23); its auth is empty on PC Client TPMs. */
export function pcrExtend(pcrHandle: AuthHandle, digests: TaggedHash[]) {
  return defineCommand({ code: TPM_CC.PCR_Extend, authHandles: [pcrHandle], parameters: (w) => TPML_DIGEST_VALUES.write(w, digests) });
}

/** The TPM hashes `eventData` with every bank's algorithm and extends each. */
export function pcrEvent(pcrHandle: AuthHandle, eventData: Uint8Array) {
  return defineCommand<TaggedHash[]>({
    code: TPM_CC.PCR_Event,
    authHandles: [pcrHandle],
    parameters: (w) => TPM2B_EVENT.write(w, eventData),
    encryptableCommand: true,
    parse: (r) => TPML_DIGEST_VALUES.read(r),
  });
}

export function pcrReset(pcrHandle: AuthHandle) {
  return defineCommand({ code: TPM_CC.PCR_Reset, authHandles: [pcrHandle] });
}
