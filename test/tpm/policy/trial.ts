/**
 * Test helpers for comparing the offline policy calculator with a TPM: run Policy* commands in a
 * trial session and read PolicyGetDigest, or run tpm2-tools' tpm2_policy* in their own trial
 * session. Also the raw definitions of the Policy* commands that src/tpm/commands/policy.ts does
 * not define (yet), kept here, private to the tests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TpmClient } from '../../../src/tpm/client.ts';
import { defineCommand } from '../../../src/tpm/command.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { policyGetDigest } from '../../../src/tpm/commands/policy.ts';
import { startAuthSession } from '../../../src/tpm/commands/session.ts';
import { TPM_CC, TPM_SE } from '../../../src/tpm/constants.ts';
import { hashAlg } from '../../../src/tpm/algorithms.ts';
import type { AuthHandle, HandleArg } from '../../../src/tpm/handles.ts';
import { TPM2B_DIGEST, TPM2B_OPERAND } from '../../../src/tpm/structures/basic.ts';
import { SYM_NULL } from '../../../src/tpm/structures/public.ts';
import type { TpmFixture } from '../commands/tpm-fixture.ts';

/** Start a session of `sessionType` (trial by default), run `steps`, return PolicyGetDigest; always flushed. */
export async function tpmPolicyDigest(tpm: TpmClient, hash: number, steps: (session: number) => Promise<void>, sessionType: number = TPM_SE.TRIAL): Promise<Uint8Array> {
  const { handle } = await tpm.run(
    startAuthSession({ nonceCaller: new Uint8Array(randomBytes(hashAlg(hash).size)), sessionType, symmetric: SYM_NULL, authHash: hash }),
  );
  try {
    await steps(handle);
    return await tpm.run(policyGetDigest(handle));
  } finally {
    await tpm.run(flushContext(handle));
  }
}

export const OUTPUT = '<policy-output>';

/**
 * Run tpm2-tools policy commands in a fresh trial session (tpm2_startauthsession's default) and
 * return the digest the last one wrote with -L. `steps` get the session file and a scratch folder;
 * each step's argument list must already name `-S <session>`.
 */
export async function toolsPolicyDigest(fixture: TpmFixture, steps: (session: string, dir: string) => string[][] | Promise<string[][]>, hash = 'sha256'): Promise<Uint8Array> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-policy-'));
  try {
    const session = path.join(dir, 'session.ctx');
    const commands = await steps(session, dir);
    const out = path.join(dir, 'policy.out');
    // The last command gets `-L <out>` appended, or written where it says OUTPUT (for tools that
    // care about option order).
    const withOutput = commands.map((args, i) =>
      i !== commands.length - 1 ? args : args.includes(OUTPUT) ? args.map((a) => (a === OUTPUT ? out : a)) : [...args, '-L', out],
    );
    await fixture.tools(['tpm2_startauthsession', '-S', session, '-g', hash], ...withOutput, ['tpm2_flushcontext', session]);
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** tpm2_createpolicy and other tools that need no session: run them and read the file they wrote. */
export async function toolsOutput(fixture: TpmFixture, make: (dir: string) => { commands: string[][]; output: string }): Promise<Uint8Array> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-policy-'));
  try {
    const { commands, output } = make(dir);
    await fixture.tools(...commands);
    return new Uint8Array(await readFile(output));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

// --- Policy commands not in src/tpm/commands/policy.ts (Part 3, section 23) ---

export function policyLocality(policySession: number, locality: number) {
  return defineCommand({ code: TPM_CC.PolicyLocality, handles: [policySession], parameters: (w) => w.u8(locality) });
}

export function policyCpHash(policySession: number, cpHashA: Uint8Array) {
  return defineCommand({ code: TPM_CC.PolicyCpHash, handles: [policySession], parameters: (w) => TPM2B_DIGEST.write(w, cpHashA) });
}

export function policyNameHash(policySession: number, nameHash: Uint8Array) {
  return defineCommand({ code: TPM_CC.PolicyNameHash, handles: [policySession], parameters: (w) => TPM2B_DIGEST.write(w, nameHash) });
}

export function policyNvWritten(policySession: number, writtenSet: boolean) {
  return defineCommand({ code: TPM_CC.PolicyNvWritten, handles: [policySession], parameters: (w) => w.u8(writtenSet ? 1 : 0) });
}

export function policyCounterTimer(policySession: number, operandB: Uint8Array, offset: number, operation: number) {
  return defineCommand({
    code: TPM_CC.PolicyCounterTimer,
    handles: [policySession],
    parameters: (w) => {
      TPM2B_OPERAND.write(w, operandB);
      w.u16(offset).u16(operation);
    },
  });
}

export function policyPhysicalPresence(policySession: number) {
  return defineCommand({ code: TPM_CC.PolicyPhysicalPresence, handles: [policySession] });
}

export function policyTemplate(policySession: number, templateHash: Uint8Array) {
  return defineCommand({ code: TPM_CC.PolicyTemplate, handles: [policySession], parameters: (w) => TPM2B_DIGEST.write(w, templateHash) });
}

export function policyAuthorizeNv(authHandle: AuthHandle, nvIndex: HandleArg, policySession: number) {
  return defineCommand({ code: TPM_CC.PolicyAuthorizeNV, authHandles: [authHandle], handles: [nvIndex, policySession] });
}
