/**
 * Shared set-up for the session tests: one swtpm per test file, a client (optionally through a
 * RecordingTransport), primaries as salt keys and parents, and sealing helpers that flush what
 * they load. swtpm has ~3 transient slots, so every helper cleans up after itself.
 */
import { TpmClient } from '../../../src/tpm/client.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { dictionaryAttackParameters } from '../../../src/tpm/commands/hierarchy.ts';
import { create, createPrimary, load, type CreatePrimaryResult } from '../../../src/tpm/commands/object.ts';
import { TPM_RH } from '../../../src/tpm/constants.ts';
import type { AuthHandle } from '../../../src/tpm/handles.ts';
import type { Session } from '../../../src/tpm/session/session.ts';
import { startSwtpm, type SwtpmInstance } from '../../../src/tpm/swtpm-process.ts';
import { sealedDataTemplate, srkEccP256Template, srkRsa2048Template } from '../../../src/tpm/templates.ts';
import { RecordingTransport } from '../../../src/tpm/transport/recording.ts';
import type { RunOptions } from '../../../src/tpm/client.ts';

export interface Fixture {
  swtpm: SwtpmInstance;
  recorder: RecordingTransport;
  client: TpmClient;
  close(): Promise<void>;
}

export async function startFixture(): Promise<Fixture> {
  const swtpm = await startSwtpm();
  const recorder = new RecordingTransport(swtpm.transport());
  const client = new TpmClient(recorder);
  // Wrong-auth tests fail on purpose: keep DA active (AUTH_FAIL) but far from lockout.
  await client.run(dictionaryAttackParameters({ handle: TPM_RH.LOCKOUT }, { maxTries: 1000, recoveryTime: 1, lockoutRecovery: 1 }));
  return {
    swtpm,
    recorder,
    client,
    async close() {
      try {
        await client.close();
      } finally {
        await swtpm.stop();
      }
    },
  };
}

export async function createRsaPrimary(client: TpmClient): Promise<CreatePrimaryResult> {
  return client.run(createPrimary({ handle: TPM_RH.OWNER }, { inPublic: srkRsa2048Template() }));
}

export async function createEccPrimary(client: TpmClient): Promise<CreatePrimaryResult> {
  return client.run(createPrimary({ handle: TPM_RH.OWNER }, { inPublic: srkEccP256Template() }));
}

export interface SealOptions {
  authValue?: Uint8Array;
  authPolicy?: Uint8Array;
  userWithAuth?: boolean;
  /** A session for the parent's authorization (e.g. one that encrypts inSensitive). */
  parentSession?: Session;
  runOptions?: RunOptions;
}

/** Create a sealed data object under `parent`; returns its private and public blobs. */
export async function seal(client: TpmClient, parent: number, secret: Uint8Array, options: SealOptions = {}) {
  const parentHandle: AuthHandle = { handle: parent, session: options.parentSession };
  const inPublic = sealedDataTemplate({ authPolicy: options.authPolicy, userWithAuth: options.userWithAuth });
  return client.run(create(parentHandle, { inSensitive: { userAuth: options.authValue ?? new Uint8Array(0), data: secret }, inPublic }), options.runOptions);
}

/** Load a sealed object, run `use` with its handle and name, and flush it whatever happens. */
export async function withLoaded<T>(client: TpmClient, parent: number, sealed: Awaited<ReturnType<typeof seal>>, use: (handle: number, name: Uint8Array) => Promise<T>): Promise<T> {
  const loaded = await client.run(load({ handle: parent }, sealed.outPrivate, sealed.outPublic));
  try {
    return await use(loaded.handle, loaded.name);
  } finally {
    await client.run(flushContext(loaded.handle));
  }
}

export async function flush(client: TpmClient, handle: number): Promise<void> {
  await client.run(flushContext(handle));
}

export function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

/** Whether `needle` occurs anywhere in `haystack`. */
export function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack).indexOf(Buffer.from(needle)) !== -1;
}
