import { SigilError } from '../core/errors.ts';
import { auth } from './command.ts';
import { evictControl } from './commands/context.ts';
import { create, createPrimary, load } from './commands/object.ts';
import { nvRead, nvReadPublic } from './commands/nv.ts';
import { TPM_RH } from './constants.ts';
import type { TpmPublic } from './structures/public.ts';
import { akEccP256Template, akRsa2048Template, ekEccP256Template, ekRsa2048Template, srkEccP256Template } from './templates.ts';
import type { Tpm } from './tpm.ts';

/**
 * The keys every TPM flow starts from: the storage root key (SRK), the endorsement key (EK) and
 * its certificate, and attestation keys (AK). Handles follow the TCG Provisioning Guidance and the
 * EK Credential Profile.
 */
export const SRK_PERSISTENT_HANDLE = 0x81000001;
export const EK_PERSISTENT_HANDLES = { rsa: 0x81010001, ecc: 0x81010002 } as const;
/** EK certificate NV indexes (EK Credential Profile 2.2, table 2: RSA-2048 and ECC NIST P-256). */
export const EK_CERT_NV_INDEX = { rsa: 0x01c00002, ecc: 0x01c0000a } as const;

export type KeyType = 'rsa' | 'ecc';

export interface LoadedKey {
  handle: number;
  name: Uint8Array;
  publicArea: TpmPublic;
  /** Transient keys must be flushed (tpm.flush / tpm.using); persistent ones must not. */
  transient: boolean;
}

/**
 * The SRK: the persistent key at 0x81000001 when the machine was provisioned, else the ECC P-256
 * SRK created from the owner seed. A primary key is derived from the seed and template, so the
 * transient one is the same key every time (until the owner hierarchy is cleared).
 */
export async function storageKey(tpm: Tpm): Promise<LoadedKey> {
  if (await tpm.persistentExists(SRK_PERSISTENT_HANDLE)) {
    const { publicArea, name } = await tpm.readPublic(SRK_PERSISTENT_HANDLE);
    return { handle: SRK_PERSISTENT_HANDLE, name, publicArea, transient: false };
  }
  const primary = await tpm.client.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() }));
  return { handle: primary.handle, name: primary.name, publicArea: primary.outPublic, transient: true };
}

/**
 * Provisioning step: create the SRK and make it persistent at 0x81000001 (owner authorization),
 * so every later boot and tool (tpm2-tools too) shares one storage parent. Idempotent.
 */
export async function provisionStorageKey(tpm: Tpm, ownerAuth?: Uint8Array): Promise<LoadedKey> {
  const existing = await storageKey(tpm);
  if (!existing.transient) return existing;
  try {
    await tpm.client.run(evictControl(auth(TPM_RH.OWNER, ownerAuth), existing.handle, SRK_PERSISTENT_HANDLE));
  } finally {
    await tpm.flush(existing.handle);
  }
  return { ...existing, handle: SRK_PERSISTENT_HANDLE, transient: false };
}

/** The EK, recreated from the endorsement seed with the EK Credential Profile's default template. */
export async function endorsementKey(tpm: Tpm, type: KeyType = 'rsa'): Promise<LoadedKey> {
  const template = type === 'rsa' ? ekRsa2048Template() : ekEccP256Template();
  const primary = await tpm.client.run(createPrimary(auth(TPM_RH.ENDORSEMENT), { inPublic: template }));
  return { handle: primary.handle, name: primary.name, publicArea: primary.outPublic, transient: true };
}

/** The EK certificate (DER) the manufacturer stored in NV, or undefined when there is none. */
export async function readEkCertificate(tpm: Tpm, type: KeyType = 'rsa'): Promise<Uint8Array | undefined> {
  const index = EK_CERT_NV_INDEX[type];
  let size: number;
  try {
    size = (await tpm.client.run(nvReadPublic(index))).nvPublic.dataSize;
  } catch (error) {
    if (error instanceof SigilError && error.code === 'tpm.rc.handle') return undefined;
    throw error;
  }
  return readNv(tpm, index, size, TPM_RH.OWNER);
}

/** Read a whole NV index in chunks small enough for any TPM's NV buffer (1 KiB). */
export async function readNv(tpm: Tpm, index: number, size: number, authHandle: number = index, authValue?: Uint8Array): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 1024) {
    const chunk = await tpm.client.run(nvRead(auth(authHandle, authValue), index, Math.min(1024, size - offset), offset));
    out.set(chunk, offset);
  }
  return out;
}

export interface AttestationKey extends LoadedKey {
  /** TPM2B_PRIVATE and the public area, to reload the AK under the same parent later. */
  privateBlob: Uint8Array;
}

/** A restricted signing key (the AK) under `parent`, loaded. The caller flushes it. */
export async function createAttestationKey(tpm: Tpm, parent: LoadedKey, type: KeyType = 'ecc'): Promise<AttestationKey> {
  const template = type === 'rsa' ? akRsa2048Template() : akEccP256Template();
  const created = await tpm.client.run(create(auth(parent.handle), { inPublic: template }));
  const loaded = await tpm.client.run(load(auth(parent.handle), created.outPrivate, created.outPublic));
  return { handle: loaded.handle, name: loaded.name, publicArea: created.outPublic, transient: true, privateBlob: created.outPrivate };
}
