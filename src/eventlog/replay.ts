import { bytesEqual, utf8 } from '../core/bytes.ts';
import { digest, digestSync, hasDigestSync } from '../core/hash.ts';
import { toHex } from '../core/hex.ts';
import { HASH_ALGS } from '../tpm/constants.ts';
import { EV } from './event-types.ts';
import { applyQuirk, type AppliedQuirk, type QuirkOptions } from './quirks.ts';
import { startupLocality } from './spec-id.ts';
import type { TcgEvent, TcgEventLog } from './tcg-log.ts';

/**
 * Replay of a TCG event log into PCR values, bank by bank: PCR_new = H(PCR_old || digest) for
 * every event except EV_NO_ACTION (PFP 10.4.5: never extended). PCRs 0-16 and 23 start at zero,
 * 17-22 at all-ones (PFP 3.3.4, the DRTM PCRs before a dynamic launch). A StartupLocality event
 * (PFP 10.4.5.3) sets PCR 0's initial value to 00..0<locality> in every bank.
 */
export type PcrValues = Map<number, Uint8Array>;
export type PcrBanks = Map<number, PcrValues>;

export interface TcgReplay {
  /** bank algorithm → PCR index → replayed value, for every PCR the log extends. */
  banks: PcrBanks;
  /** PCRs with at least one extended event. */
  extendedPcrs: number[];
  startupLocality?: number;
  /** Banks in the log that Sigil cannot hash (e.g. SM3_256); they are not replayed. */
  unsupportedAlgorithms: number[];
}

export function initialPcrValue(pcr: number, size: number, locality = 0): Uint8Array {
  const value = new Uint8Array(size);
  if (pcr >= 17 && pcr <= 22) value.fill(0xff);
  if (pcr === 0) value[size - 1] = locality;
  return value;
}

export async function extend(alg: number, current: Uint8Array, measurement: Uint8Array): Promise<Uint8Array> {
  return digest(HASH_ALGS[alg].name, current, measurement);
}

export function isExtended(event: TcgEvent): boolean {
  return event.type !== EV.NO_ACTION;
}

export async function replayTcgLog(log: TcgEventLog): Promise<TcgReplay> {
  let locality: number | undefined;
  for (const event of log.events) {
    if (event.type !== EV.NO_ACTION || event.pcr !== 0) continue;
    const found = startupLocality(event.data);
    if (found !== undefined) locality = found;
  }
  const banks: PcrBanks = new Map();
  const unsupportedAlgorithms: number[] = [];
  for (const { alg, size } of log.algorithms) {
    if (!HASH_ALGS[alg]) {
      unsupportedAlgorithms.push(alg);
      continue;
    }
    const values: PcrValues = new Map();
    if (locality !== undefined) values.set(0, initialPcrValue(0, size, locality));
    const hash = HASH_ALGS[alg].name;
    for (const event of log.events) {
      if (!isExtended(event)) continue;
      const measurement = event.digests.find((d) => d.alg === alg)!.digest;
      const current = values.get(event.pcr) ?? initialPcrValue(event.pcr, size, locality);
      // Synchronous on Node: an await per extend would cost as much as the hash itself.
      values.set(event.pcr, hasDigestSync ? digestSync(hash, current, measurement) : await digest(hash, current, measurement));
    }
    banks.set(alg, values);
  }
  const extendedPcrs = [...new Set(log.events.filter(isExtended).map((e) => e.pcr))].sort((a, b) => a - b);
  return { banks, extendedPcrs, startupLocality: locality, unsupportedAlgorithms };
}

export type PcrMatch = 'match' | 'mismatch' | 'not-in-log';

export interface PcrComparison {
  alg: number;
  bank: string;
  pcr: number;
  status: PcrMatch;
  replayed?: string;
  quoted: string;
}

export interface ReplayComparison {
  comparisons: PcrComparison[];
  mismatches: PcrComparison[];
  quirks: AppliedQuirk[];
}

/** The EV_EFI_ACTION strings a Linux kernel before 5.3 may have missed (see quirks.ts). */
const EBS_VARIANTS = [
  ['Exit Boot Services Invocation', 'Exit Boot Services Returned with Success'],
  ['Exit Boot Services Invocation', 'Exit Boot Services Returned with Failure'],
  ['Exit Boot Services Invocation', 'Exit Boot Services Returned with Failure', 'Exit Boot Services Returned with Success'],
];

/**
 * Compare a replay with PCR values a verified quote covers: for each quoted PCR of a replayed
 * bank, 'match', 'mismatch', or 'not-in-log' (the log never extends it).
 */
export async function compareWithQuoted(replay: TcgReplay, quoted: PcrBanks, options: QuirkOptions = {}): Promise<ReplayComparison> {
  const comparisons: PcrComparison[] = [];
  const mismatches: PcrComparison[] = [];
  const quirks: AppliedQuirk[] = [];
  for (const [alg, values] of replay.banks) {
    const quotedBank = quoted.get(alg);
    if (!quotedBank) continue;
    const bank = HASH_ALGS[alg].label;
    const pcrs = [...quotedBank.keys()].sort((a, b) => a - b);
    for (const pcr of pcrs) {
      const quotedValue = quotedBank.get(pcr)!;
      const replayed = values.get(pcr);
      if (!replayed) {
        comparisons.push({ alg, bank, pcr, quoted: toHex(quotedValue), status: 'not-in-log' });
        continue;
      }
      let status: PcrMatch = bytesEqual(replayed, quotedValue) ? 'match' : 'mismatch';
      if (status === 'mismatch' && pcr === 5 && options.quirks?.includes('exit-boot-services-unlogged')) {
        const variant = await matchingEbsVariant(alg, replayed, quotedValue);
        if (variant) {
          applyQuirk(options, quirks, 'exit-boot-services-unlogged', `${bank} PCR 5 matches after appending "${variant.join('", "')}"`);
          status = 'match';
        }
      }
      const comparison: PcrComparison = { alg, bank, pcr, quoted: toHex(quotedValue), status, replayed: toHex(replayed) };
      comparisons.push(comparison);
      if (status === 'mismatch') mismatches.push(comparison);
    }
  }
  return { comparisons, mismatches, quirks };
}

async function matchingEbsVariant(alg: number, replayed: Uint8Array, quoted: Uint8Array): Promise<string[] | undefined> {
  for (const variant of EBS_VARIANTS) {
    let value = replayed;
    for (const text of variant) value = await extend(alg, value, await digest(HASH_ALGS[alg].name, utf8.encode(text)));
    if (bytesEqual(value, quoted)) return variant;
  }
  return undefined;
}

/** Replayed banks as { sha256: { 0: hex, ... } } (what `sigil eventlog replay --json` prints). */
export function banksToJson(banks: PcrBanks): Record<string, Record<number, string>> {
  const out: Record<string, Record<number, string>> = {};
  for (const [alg, values] of banks) {
    const label = HASH_ALGS[alg].label;
    out[label] = {};
    for (const [pcr, value] of [...values].sort((a, b) => a[0] - b[0])) out[label][pcr] = toHex(value);
  }
  return out;
}
