import { defineCommand } from '../command.ts';
import { TPM_CC } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import { TPM2B_AUTH, TPM2B_MAX_NV_BUFFER, TPM2B_NAME } from '../structures/basic.ts';
import { TPM2B_NV_PUBLIC, type NvPublic } from '../structures/nv.ts';

/** NV_DefineSpace, NV_UndefineSpace, NV_Write, NV_Read, NV_Increment, NV_Extend, NV_ReadPublic (Part 3, section 31). */

export function nvDefineSpace(authHandle: AuthHandle, authValue: Uint8Array, publicInfo: NvPublic) {
  return defineCommand({
    code: TPM_CC.NV_DefineSpace,
    authHandles: [authHandle],
    parameters: (w) => {
      TPM2B_AUTH.write(w, authValue);
      TPM2B_NV_PUBLIC.write(w, publicInfo);
    },
    encryptableCommand: true,
  });
}

export function nvUndefineSpace(authHandle: AuthHandle, nvIndex: HandleArg) {
  return defineCommand({ code: TPM_CC.NV_UndefineSpace, authHandles: [authHandle], handles: [nvIndex] });
}

/** authHandle is the index itself (AUTHWRITE/POLICYWRITE) or the owner/platform hierarchy. */
export function nvWrite(authHandle: AuthHandle, nvIndex: HandleArg, data: Uint8Array, offset = 0) {
  return defineCommand({
    code: TPM_CC.NV_Write,
    authHandles: [authHandle],
    handles: [nvIndex],
    parameters: (w) => {
      TPM2B_MAX_NV_BUFFER.write(w, data);
      w.u16(offset);
    },
    encryptableCommand: true,
  });
}

export function nvRead(authHandle: AuthHandle, nvIndex: HandleArg, size: number, offset = 0) {
  return defineCommand<Uint8Array>({
    code: TPM_CC.NV_Read,
    authHandles: [authHandle],
    handles: [nvIndex],
    parameters: (w) => w.u16(size).u16(offset),
    encryptableResponse: true,
    parse: (r) => TPM2B_MAX_NV_BUFFER.read(r),
  });
}

export function nvIncrement(authHandle: AuthHandle, nvIndex: HandleArg) {
  return defineCommand({ code: TPM_CC.NV_Increment, authHandles: [authHandle], handles: [nvIndex] });
}

export function nvExtend(authHandle: AuthHandle, nvIndex: HandleArg, data: Uint8Array) {
  return defineCommand({
    code: TPM_CC.NV_Extend,
    authHandles: [authHandle],
    handles: [nvIndex],
    parameters: (w) => TPM2B_MAX_NV_BUFFER.write(w, data),
    encryptableCommand: true,
  });
}

export interface NvReadPublicResult {
  nvPublic: NvPublic;
  nvName: Uint8Array;
}

export function nvReadPublic(nvIndex: HandleArg) {
  return defineCommand<NvReadPublicResult>({
    code: TPM_CC.NV_ReadPublic,
    handles: [nvIndex],
    parse: (r) => ({ nvPublic: TPM2B_NV_PUBLIC.read(r), nvName: TPM2B_NAME.read(r) }),
  });
}
