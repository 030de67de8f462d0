import { Reader } from '../core/bytes.ts';
import { auth } from './command.ts';
import { nvDefineSpace, nvIncrement, nvReadPublic, nvUndefineSpace, nvWrite } from './commands/nv.ts';
import { TPM_ALG, TPM_NT, TPM_RH, TPMA_NV, nvTypeBits } from './constants.ts';
import type { NvPublic } from './structures/nv.ts';
import { readNv } from './tpm-keys.ts';
import type { Tpm } from './tpm.ts';

/**
 * NV indexes: ordinary data and monotonic counters (anti-rollback floors). An index is defined by
 * the owner; reads and writes authorize with the index's own authValue (AUTHREAD/AUTHWRITE), so a
 * later policy (PolicyNV) can name the index.
 */
export interface NvDefineOptions {
  index: number;
  size?: number;
  counter?: boolean;
  authValue?: Uint8Array;
  /** Extra TPMA_NV bits (e.g. TPMA_NV.NO_DA). */
  attributes?: number;
  ownerAuth?: Uint8Array;
}

export async function nvDefine(tpm: Tpm, options: NvDefineOptions): Promise<NvPublic> {
  const type = options.counter ? TPM_NT.COUNTER : TPM_NT.ORDINARY;
  const publicInfo: NvPublic = {
    nvIndex: options.index,
    nameAlg: TPM_ALG.SHA256,
    attributes: nvTypeBits(type) | TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE | TPMA_NV.OWNERREAD | (options.attributes ?? 0),
    authPolicy: new Uint8Array(0),
    dataSize: options.counter ? 8 : (options.size ?? 32),
  };
  await tpm.client.run(nvDefineSpace(auth(TPM_RH.OWNER, options.ownerAuth), options.authValue ?? new Uint8Array(0), publicInfo));
  return publicInfo;
}

export async function nvUndefine(tpm: Tpm, index: number, ownerAuth?: Uint8Array): Promise<void> {
  await tpm.client.run(nvUndefineSpace(auth(TPM_RH.OWNER, ownerAuth), index));
}

export async function nvPublic(tpm: Tpm, index: number): Promise<{ nvPublic: NvPublic; nvName: Uint8Array }> {
  return tpm.client.run(nvReadPublic(index));
}

export async function nvReadAll(tpm: Tpm, index: number, authValue?: Uint8Array): Promise<Uint8Array> {
  const { nvPublic: info } = await nvPublic(tpm, index);
  return readNv(tpm, index, info.dataSize, index, authValue);
}

export async function nvWriteAll(tpm: Tpm, index: number, data: Uint8Array, authValue?: Uint8Array): Promise<void> {
  for (let offset = 0; offset < data.length; offset += 1024) {
    await tpm.client.run(nvWrite(auth(index, authValue), index, data.subarray(offset, offset + 1024), offset));
  }
}

/** Increment a counter index and return its new value. */
export async function nvCounterIncrement(tpm: Tpm, index: number, authValue?: Uint8Array): Promise<bigint> {
  await tpm.client.run(nvIncrement(auth(index, authValue), index));
  return nvCounterRead(tpm, index, authValue);
}

export async function nvCounterRead(tpm: Tpm, index: number, authValue?: Uint8Array): Promise<bigint> {
  return new Reader(await readNv(tpm, index, 8, index, authValue), { errorCode: 'tpm.nv_counter_malformed' }).u64();
}
