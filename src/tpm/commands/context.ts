import { defineCommand } from '../command.ts';
import { TPM_CC } from '../constants.ts';
import type { AuthHandle, HandleArg } from '../handles.ts';
import { TPMS_CONTEXT, type SavedContext } from '../structures/creation.ts';

/** FlushContext, EvictControl, ContextSave, ContextLoad (Part 3, section 28). */

export function flushContext(flushHandle: number) {
  return defineCommand({ code: TPM_CC.FlushContext, parameters: (w) => w.u32(flushHandle) });
}

/** Make a transient object persistent at `persistentHandle`, or evict a persistent one. */
export function evictControl(authHandle: AuthHandle, objectHandle: HandleArg, persistentHandle: number) {
  return defineCommand({ code: TPM_CC.EvictControl, authHandles: [authHandle], handles: [objectHandle], parameters: (w) => w.u32(persistentHandle) });
}

export function contextSave(saveHandle: HandleArg) {
  return defineCommand<SavedContext>({ code: TPM_CC.ContextSave, handles: [saveHandle], parse: (r) => TPMS_CONTEXT.read(r) });
}

export function contextLoad(context: SavedContext) {
  return defineCommand<number>({
    code: TPM_CC.ContextLoad,
    parameters: (w) => TPMS_CONTEXT.write(w, context),
    responseHandles: 1,
    parse: (_r, handles) => handles[0],
  });
}
