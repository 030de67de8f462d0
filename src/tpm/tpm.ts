import { SigilError } from '../core/errors.ts';
import { TpmClient } from './client.ts';
import { auth } from './command.ts';
import { contextSave, flushContext } from './commands/context.ts';
import { readPublic } from './commands/object.ts';
import { pcrEvent, pcrExtend, pcrRead } from './commands/pcr.ts';
import { getCapability, getRandom } from './commands/startup.ts';
import { TPM_ALG, TPM_CAP, TPM_RH } from './constants.ts';
import { handleType } from './handles.ts';
import type { PcrSelection, TaggedHash } from './structures/basic.ts';
import type { TpmPublic } from './structures/public.ts';
import { openTransport } from './transport/uri.ts';
import type { TpmTransport } from './transport/transport.ts';

/**
 * The high-level TPM API the rest of Sigil uses (device provisioning, boot unseal, attestation).
 * Every transient object and session it creates is flushed before the call returns, because
 * swtpm (and /dev/tpm0) have no resource manager. Keys, sealing, quotes, credentials and NV live in
 * sibling files (tpm-keys.ts, tpm-seal.ts, ...) that take a `Tpm`.
 */
export class Tpm {
  readonly client: TpmClient;

  constructor(transport: TpmTransport) {
    this.client = new TpmClient(transport);
  }

  /** Open a TPM by URI (swtpm://, mssim://, device://); the default comes from SIGIL_TPM. */
  static open(uri?: string): Tpm {
    return new Tpm(openTransport(uri));
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  async random(size: number): Promise<Uint8Array> {
    const out: Uint8Array[] = [];
    let total = 0;
    while (total < size) {
      const chunk = await this.client.run(getRandom(Math.min(32, size - total)));
      if (chunk.length === 0) throw new SigilError('tpm.random_empty', 'the TPM returned no random bytes');
      out.push(chunk);
      total += chunk.length;
    }
    const result = new Uint8Array(size);
    let o = 0;
    for (const c of out) {
      result.set(c.subarray(0, size - o), o);
      o += c.length;
    }
    return result;
  }

  /** The PCR banks that have at least one PCR allocated. */
  async pcrBanks(): Promise<number[]> {
    const { data } = await this.client.run(getCapability(TPM_CAP.PCRS, 0, 1));
    if (data.capability !== TPM_CAP.PCRS) throw new SigilError('tpm.response_malformed', 'GetCapability(PCRS) answered another capability');
    return data.pcrs.filter((s) => s.pcrs.length > 0).map((s) => s.hash);
  }

  /**
   * PCR values of one bank. PCR_Read returns at most 8 digests per call and silently drops what
   * it cannot return, so this asks again for whatever is missing.
   */
  async readPcrs(bank: number, indexes: number[] = Array.from({ length: 24 }, (_, i) => i)): Promise<Map<number, Uint8Array>> {
    const values = new Map<number, Uint8Array>();
    let pending = [...new Set(indexes)].sort((a, b) => a - b);
    while (pending.length > 0) {
      const result = await this.client.run(pcrRead([{ hash: bank, pcrs: pending }]));
      const returned = result.selection.find((s) => s.hash === bank)?.pcrs ?? [];
      if (returned.length === 0 || returned.length !== result.digests.length) {
        throw new SigilError('tpm.pcr_unavailable', `the TPM returned no values for ${bank === TPM_ALG.SHA1 ? 'sha1' : `bank 0x${bank.toString(16)}`} PCRs ${pending.join(',')}`, { bank, pending });
      }
      returned.forEach((index, i) => values.set(index, result.digests[i]));
      pending = pending.filter((p) => !values.has(p));
    }
    return values;
  }

  /** Values for a whole selection, keyed by bank then index (what quote verification takes). */
  async readSelection(selection: PcrSelection[]): Promise<Map<number, Map<number, Uint8Array>>> {
    const out = new Map<number, Map<number, Uint8Array>>();
    for (const bank of selection) out.set(bank.hash, await this.readPcrs(bank.hash, bank.pcrs));
    return out;
  }

  /** PCR_Extend with caller-computed digests (one per bank). */
  async extend(pcr: number, digests: TaggedHash[]): Promise<void> {
    await this.client.run(pcrExtend(auth(pcr), digests));
  }

  /** PCR_Event: the TPM hashes `data` and extends every active bank; it reports the digest of every hash it implements. */
  async extendEvent(pcr: number, data: Uint8Array): Promise<TaggedHash[]> {
    return this.client.run(pcrEvent(auth(pcr), data));
  }

  async readPublic(handle: number): Promise<{ publicArea: TpmPublic; name: Uint8Array }> {
    const result = await this.client.run(readPublic(handle));
    return { publicArea: result.outPublic, name: result.name };
  }

  /** Whether a persistent handle (0x81......) holds an object. */
  async persistentExists(handle: number): Promise<boolean> {
    const { data } = await this.client.run(getCapability(TPM_CAP.HANDLES, handle, 1));
    return data.capability === TPM_CAP.HANDLES && data.handles[0] === handle;
  }

  /** Flush a transient object or session; persistent handles are left alone. */
  async flush(handle: number): Promise<void> {
    const type = handleType(handle);
    if (type === 0x80 || type === 0x02 || type === 0x03) await this.client.run(flushContext(handle));
  }

  /** Run `use` with a handle and flush it afterwards, whatever happens. */
  async using<T>(handle: number, use: (handle: number) => Promise<T>): Promise<T> {
    try {
      return await use(handle);
    } finally {
      await this.flush(handle).catch(() => undefined);
    }
  }

  /** Save a transient object's context so it can be reloaded after a flush (not across reboots). */
  async saveContext(handle: number) {
    return this.client.run(contextSave(handle));
  }
}

export const OWNER = TPM_RH.OWNER;
export const ENDORSEMENT = TPM_RH.ENDORSEMENT;
