import type { Reader } from '../core/bytes.ts';
import { Writer } from '../core/bytes.ts';
import { handleRef, type AuthHandle, type HandleArg, type HandleRef } from './handles.ts';

/**
 * One typed description per TPM command (go-tpm's `tpm2` direct API shape): the handles, which of
 * them need authorization (always the first `authHandles`), the marshaled parameters, whether the
 * first parameter on each side is a TPM2B that a session may encrypt, and how to parse the response.
 * The client turns a Command into bytes; nothing here knows about transports or sessions' crypto.
 */
export interface Command<R> {
  readonly code: number;
  readonly handles: readonly (HandleRef | AuthHandle)[];
  readonly authHandles: number;
  readonly parameters: Uint8Array;
  /** The first command parameter is a TPM2B (Part 1, 21.1: only those can be encrypted). */
  readonly encryptableCommand: boolean;
  /** The first response parameter is a TPM2B. */
  readonly encryptableResponse: boolean;
  readonly responseHandles: number;
  parse(parameters: Reader, handles: number[]): R;
}

export interface CommandSpec<R> {
  code: number;
  authHandles?: AuthHandle[];
  handles?: HandleArg[];
  /** Writes the parameter area. */
  parameters?: (w: Writer) => void;
  encryptableCommand?: boolean;
  encryptableResponse?: boolean;
  responseHandles?: number;
  parse?: (parameters: Reader, handles: number[]) => R;
}

export function defineCommand<R = void>(spec: CommandSpec<R>): Command<R> {
  const writer = new Writer(64);
  spec.parameters?.(writer);
  const authHandles = spec.authHandles ?? [];
  return {
    code: spec.code,
    handles: [...authHandles, ...(spec.handles ?? []).map(handleRef)],
    authHandles: authHandles.length,
    parameters: writer.finish(),
    encryptableCommand: spec.encryptableCommand ?? false,
    encryptableResponse: spec.encryptableResponse ?? false,
    responseHandles: spec.responseHandles ?? 0,
    parse: spec.parse ?? ((() => undefined) as unknown as (r: Reader, h: number[]) => R),
  };
}

/** An AuthHandle from a bare handle number or handle ref (password session, empty auth). */
export function auth(arg: HandleArg | AuthHandle, authValue?: Uint8Array): AuthHandle {
  const ref = handleRef(arg) as AuthHandle;
  return authValue === undefined ? ref : { ...ref, auth: authValue };
}
