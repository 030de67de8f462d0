import { bytesEqual, concatBytes } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { toHex } from '../../core/hex.ts';
import { HASH_ALGS, TPM_ALG } from '../../tpm/constants.ts';
import { applyQuirk, quirkRequired, type AppliedQuirk, type QuirkOptions } from '../quirks.ts';
import type { PcrBanks, PcrValues } from '../replay.ts';
import type { ImaEntry, ImaLog } from './ima-log.ts';
import { templateHashInput, type FileDigest } from './templates.ts';

/**
 * IMA replay (Linux security/integrity/ima): every entry extends its PCR (10 by default) in every
 * bank with the template hash computed with that bank's algorithm (kernels since 5.8), or - before
 * 5.8 - with the SHA-1 template hash zero-padded to the bank size (quirk
 * "ima-sha1-padded-template-hash"). A violation entry is logged with a zero hash and extends
 * all-ones. The boot_aggregate entry is H(PCR0..7) for SHA-1 and H(PCR0..9) for other algorithms
 * (commit 20c59ce010f8, Linux 5.8); before 5.8 only PCRs 0-7.
 */
export async function verifyTemplateHashes(log: ImaLog): Promise<void> {
  const name = HASH_ALGS[log.templateHashAlg].name;
  for (const entry of log.entries) {
    if (entry.violation) continue;
    const computed = await digest(name, templateHashInput(entry.templateName, entry.fields));
    if (!bytesEqual(computed, entry.templateHash)) {
      throw new SigilError('ima.template_hash_mismatch', `IMA entry ${entry.index} (${entry.details.path ?? entry.templateName}): the template hash does not match its fields`, {
        index: entry.index,
        logged: toHex(entry.templateHash),
        computed: toHex(computed),
      });
    }
  }
}

type Mode = 'bank-hash' | 'sha1-padded';

async function entryMeasurement(log: ImaLog, entry: ImaEntry, alg: number, mode: Mode): Promise<Uint8Array> {
  const { size, name } = HASH_ALGS[alg];
  if (entry.violation) return new Uint8Array(size).fill(0xff);
  if (alg === log.templateHashAlg) return entry.templateHash;
  if (mode === 'sha1-padded') {
    const padded = new Uint8Array(size);
    padded.set(entry.templateHash.subarray(0, size));
    return padded;
  }
  return digest(name, templateHashInput(entry.templateName, entry.fields));
}

/** PCR values after the first `count` entries, for one bank (PCRs start at zero). */
async function* replayBank(log: ImaLog, alg: number, mode: Mode): AsyncGenerator<PcrValues> {
  const values: PcrValues = new Map();
  yield new Map(values);
  for (const entry of log.entries) {
    const current = values.get(entry.pcr) ?? new Uint8Array(HASH_ALGS[alg].size);
    values.set(entry.pcr, await digest(HASH_ALGS[alg].name, current, await entryMeasurement(log, entry, alg, mode)));
    yield new Map(values);
  }
}

export async function replayIma(log: ImaLog, banks: number[], options: { mode?: Mode } = {}): Promise<PcrBanks> {
  const out: PcrBanks = new Map();
  for (const alg of banks) {
    let last: PcrValues = new Map();
    for await (const values of replayBank(log, alg, options.mode ?? 'bank-hash')) last = values;
    out.set(alg, last);
  }
  return out;
}

export interface ImaFile {
  index: number;
  pcr: number;
  template: string;
  path?: string;
  fileDigest?: FileDigest;
  signature?: string;
  violation: boolean;
}

export interface ImaVerification {
  /** Entries covered by the quoted PCR values (the log may have grown after the quote). */
  verifiedEntries: number;
  totalEntries: number;
  files: ImaFile[];
  bootAggregate?: { digest: string; alg: string; matches: 'pcrs-0-9' | 'pcrs-0-7' | 'mismatch' | 'not-quoted' };
  quirks: AppliedQuirk[];
}

/**
 * Replay the list against quoted PCR values. The log is read after the quote, so it may hold
 * entries the quote does not cover: the longest prefix whose replay equals the quoted value of
 * every IMA PCR in every quoted bank is verified, the rest is reported as unverified.
 */
export async function verifyImaAgainstQuote(log: ImaLog, quoted: PcrBanks, options: QuirkOptions = {}): Promise<ImaVerification> {
  await verifyTemplateHashes(log);
  const imaPcrs = [...new Set(log.entries.map((e) => e.pcr))];
  const banks = [...quoted.keys()].filter((alg) => HASH_ALGS[alg] && imaPcrs.every((pcr) => quoted.get(alg)!.has(pcr)));
  if (log.entries.length > 0 && banks.length === 0) {
    throw new SigilError('ima.pcr_not_quoted', `the quote does not cover IMA PCR ${imaPcrs.join(', ')} in any bank`, { pcrs: imaPcrs });
  }
  const quirks: AppliedQuirk[] = [];
  let common: Set<number> | undefined;
  for (const alg of banks) {
    let prefixes = await matchingPrefixes(log, alg, quoted.get(alg)!, imaPcrs, 'bank-hash');
    if (prefixes.size === 0 && alg !== TPM_ALG.SHA1 && log.templateHashAlg === TPM_ALG.SHA1) {
      const padded = await matchingPrefixes(log, alg, quoted.get(alg)!, imaPcrs, 'sha1-padded');
      if (padded.size > 0) {
        const detail = `the ${HASH_ALGS[alg].label} bank holds zero-padded SHA-1 template hashes`;
        if (!applyQuirk(options, quirks, 'ima-sha1-padded-template-hash', detail)) throw quirkRequired('ima-sha1-padded-template-hash', detail);
        prefixes = padded;
      }
    }
    common = common ? new Set([...common].filter((n) => prefixes.has(n))) : prefixes;
  }
  const verifiedEntries = common && common.size ? Math.max(...common) : 0;
  if (log.entries.length > 0 && verifiedEntries === 0) {
    throw new SigilError('ima.replay_mismatch', 'no prefix of the IMA log replays to the quoted PCR values', {
      pcrs: imaPcrs,
      banks: banks.map((b) => HASH_ALGS[b].label),
    });
  }
  const files = log.entries.slice(0, verifiedEntries).map(imaFile);
  return { verifiedEntries, totalEntries: log.entries.length, files, bootAggregate: await checkBootAggregate(log, quoted), quirks };
}

async function matchingPrefixes(log: ImaLog, alg: number, quoted: PcrValues, pcrs: number[], mode: Mode): Promise<Set<number>> {
  const out = new Set<number>();
  let count = 0;
  for await (const values of replayBank(log, alg, mode)) {
    const zero = new Uint8Array(HASH_ALGS[alg].size);
    if (pcrs.every((pcr) => bytesEqual(values.get(pcr) ?? zero, quoted.get(pcr)!))) out.add(count);
    count++;
  }
  return out;
}

function imaFile(entry: ImaEntry): ImaFile {
  const { path, fileDigest, signature } = entry.details;
  return { index: entry.index, pcr: entry.pcr, template: entry.templateName, path, fileDigest, signature, violation: entry.violation };
}

/** The boot aggregate over quoted PCRs: H(PCR0..7) for SHA-1; H(PCR0..9) (or 0..7 before Linux 5.8) otherwise. */
export async function bootAggregate(alg: number, pcrs: PcrValues, count: 8 | 10): Promise<Uint8Array | undefined> {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const value = pcrs.get(i);
    if (!value) return undefined;
    parts.push(value);
  }
  return digest(HASH_ALGS[alg].name, concatBytes(...parts));
}

async function checkBootAggregate(log: ImaLog, quoted: PcrBanks): Promise<ImaVerification['bootAggregate']> {
  const first = log.entries[0];
  if (!first || first.details.path !== 'boot_aggregate' || !first.details.fileDigest) return undefined;
  const { alg: label, digest: value } = first.details.fileDigest;
  const result = { digest: value, alg: label };
  // A boot aggregate in an algorithm no TPM bank has (md5, sm3...) cannot be checked.
  const alg = Object.entries(HASH_ALGS).find(([, info]) => info.label === label)?.[0];
  const pcrs = alg === undefined ? undefined : quoted.get(Number(alg));
  if (alg === undefined || !pcrs) return { ...result, matches: 'not-quoted' };
  const counts: (8 | 10)[] = Number(alg) === TPM_ALG.SHA1 ? [8] : [10, 8];
  let anyComputed = false;
  for (const count of counts) {
    const computed = await bootAggregate(Number(alg), pcrs, count);
    if (!computed) continue;
    anyComputed = true;
    if (toHex(computed) === value) return { ...result, matches: count === 10 ? 'pcrs-0-9' : 'pcrs-0-7' };
  }
  return { ...result, matches: anyComputed ? 'mismatch' : 'not-quoted' };
}
