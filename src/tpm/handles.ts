import { Writer } from '../core/bytes.ts';
import type { Session } from './session/session.ts';

/**
 * A handle as a command sees it. `name` is what cpHash binds (Part 1, 16): for PCRs, permanent
 * handles and sessions the handle itself; for objects nameAlg ‖ H(TPMT_PUBLIC); for NV indexes
 * nameAlg ‖ H(TPMS_NV_PUBLIC). When a session needs a name that was not given, the client looks
 * it up with ReadPublic / NV_ReadPublic.
 */
export interface HandleRef {
  handle: number;
  name?: Uint8Array;
}

/**
 * A handle that must be authorized: `auth` is the entity's authValue (a password, or the key an
 * HMAC session mixes in); `session` says how (password when absent).
 */
export interface AuthHandle extends HandleRef {
  auth?: Uint8Array;
  session?: Session;
}

export type HandleArg = number | HandleRef;

export function handleRef(arg: HandleArg): HandleRef {
  return typeof arg === 'number' ? { handle: arg } : arg;
}

export function handleType(handle: number): number {
  return handle >>> 24;
}

/** PCR, permanent and session handles are their own names; objects and NV indexes are not. */
export function handleIsOwnName(handle: number): boolean {
  const type = handleType(handle);
  return type !== 0x80 && type !== 0x81 && type !== 0x01;
}

export function handleName(handle: number): Uint8Array {
  return new Writer(4).u32(handle).finish();
}
