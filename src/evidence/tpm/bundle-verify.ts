import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import { extractBootState } from '../../eventlog/boot-state.ts';
import { verifyImaAgainstQuote } from '../../eventlog/ima/ima-replay.ts';
import type { AppliedQuirk, QuirkOptions } from '../../eventlog/quirks.ts';
import { compareWithQuoted, replayTcgLog, type PcrBanks } from '../../eventlog/replay.ts';
import type { TcgEventLog } from '../../eventlog/tcg-log.ts';
import { algName, hashAlg } from '../../tpm/algorithms.ts';
import { HASH_ALGS, TPM_ALG } from '../../tpm/constants.ts';
import { verified, type Verified } from '../verifier.ts';
import { establishAkTrust, type AkTrust } from './ak-trust.ts';
import type { TpmBundle } from './bundle.ts';
import type { EventLogClaims, QuoteClaims, TpmBundleClaims } from './bundle-claims.ts';
import { verifyQuote } from './quote.ts';

export interface TpmBundleTrust extends AkTrust, QuirkOptions {
  /**
   * The nonce the verifier issued; every quote's extraData must equal it. Leave it out only when
   * the caller compares the claims' quote nonces itself (the broker's binding check).
   */
  nonce?: Uint8Array;
  /**
   * PCRs that userspace extends after boot (IMA's 10, systemd-pcrphase's 11, systemd-pcrfs's 15,
   * debug 16, application 23): a quoted value that differs from the firmware log there is not an
   * error, but the log's events for them are not used. Default [10, 11, 15, 16, 23].
   */
  runtimePcrs?: number[];
}

export const DEFAULT_RUNTIME_PCRS = [10, 11, 15, 16, 23];

/**
 * verify(): AK trust, then every quote (signature with the AK, nonce, PCR digest over the given
 * values with the signing scheme's hash), then the event log against the quoted PCRs, then IMA.
 * Throws a SigilError naming the failed check; returns claims only when everything held.
 */
export async function verifyTpmBundle(evidence: TpmBundle, trust: TpmBundleTrust, at: Date): Promise<Verified<TpmBundleClaims>> {
  const ak = await establishAkTrust(evidence, trust, at);
  const quotes: QuoteClaims[] = [];
  const quoted: PcrBanks = new Map();
  const quotedHex: Record<string, Record<number, string>> = {};
  for (const quote of evidence.quotes) {
    const result = await verifyQuote(quote, { akPublic: evidence.akPublic, nonce: trust.nonce, pcrValues: evidence.pcrs });
    // The quote already rendered its PCR values as hex; integer keys keep ascending order.
    for (const [label, values] of Object.entries(result.pcrs)) Object.assign((quotedHex[label] ??= {}), values);
    for (const bank of result.selection) {
      const values = quoted.get(bank.hash) ?? new Map<number, Uint8Array>();
      for (const index of bank.pcrs) values.set(index, evidence.pcrs.get(bank.hash)!.get(index)!);
      quoted.set(bank.hash, values);
    }
    quotes.push({
      nonce: toHex(quote.attest.extraData),
      signatureScheme: algName(quote.signature.sigAlg),
      signatureHash: 'hashAlg' in quote.signature ? hashAlg(quote.signature.hashAlg).label : 'none',
      clock: result.clock.toString(),
      resetCount: result.resetCount,
      restartCount: result.restartCount,
      safe: result.safe,
      firmwareVersion: result.firmwareVersion.toString(16).padStart(16, '0'),
      qualifiedSigner: toHex(result.qualifiedSigner),
    });
  }
  if (quotes.some((q) => q.resetCount !== quotes[0].resetCount || q.restartCount !== quotes[0].restartCount)) {
    throw new SigilError('tpm.quotes_inconsistent', 'the quotes come from different boots (reset or restart counts differ)');
  }
  const quirks: AppliedQuirk[] = [...(evidence.eventLog?.quirks ?? [])];
  const claims: TpmBundleClaims = { ak, quotes, pcrs: quotedHex, quirks };
  if (evidence.eventLog) claims.eventLog = await verifyEventLog(evidence.eventLog, quoted, trust, quirks);
  if (evidence.imaLog) {
    claims.ima = await verifyImaAgainstQuote(evidence.imaLog, quoted, trust);
    quirks.push(...claims.ima.quirks);
  }
  return verified('tpm', claims, at);
}

const BANK_PREFERENCE = [TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512, TPM_ALG.SHA1];

async function verifyEventLog(log: TcgEventLog, quoted: PcrBanks, trust: TpmBundleTrust, quirks: AppliedQuirk[]): Promise<EventLogClaims> {
  const replay = await replayTcgLog(log);
  const comparison = await compareWithQuoted(replay, quoted, trust);
  quirks.push(...comparison.quirks);
  const runtime = new Set(trust.runtimePcrs ?? DEFAULT_RUNTIME_PCRS);
  const fatal = comparison.mismatches.filter((m) => !runtime.has(m.pcr));
  if (comparison.comparisons.length === 0) {
    throw new SigilError('tpm.eventlog_not_quoted', 'no quoted PCR bank is a bank of the event log, so the log cannot be checked');
  }
  if (fatal.length > 0) {
    throw new SigilError('tpm.eventlog_replay_mismatch', `the event log does not replay to the quoted ${fatal.map((m) => `${m.bank}:${m.pcr}`).join(', ')}`, {
      mismatches: fatal,
    });
  }
  const bank = BANK_PREFERENCE.find((alg) => replay.banks.has(alg) && quoted.has(alg))!;
  const checked = comparison.comparisons;
  const verifiedPcrs = [...new Set(checked.filter((c) => c.status === 'match').map((c) => c.pcr))].filter(
    (pcr) => !checked.some((c) => c.pcr === pcr && c.status === 'mismatch') && checked.some((c) => c.pcr === pcr && c.alg === bank && c.status === 'match'),
  );
  const extendedAfterBoot = [...new Set(comparison.mismatches.map((m) => m.pcr))];
  const { state, quirks: stateQuirks } = await extractBootState(log, { bank, pcrs: verifiedPcrs, quirks: trust.quirks });
  quirks.push(...stateQuirks);
  return {
    format: log.format,
    algorithms: log.algorithms.map((a) => HASH_ALGS[a.alg]?.label ?? algName(a.alg)),
    startupLocality: replay.startupLocality,
    comparisons: checked,
    verifiedPcrs: verifiedPcrs.sort((a, b) => a - b),
    extendedAfterBoot: extendedAfterBoot.sort((a, b) => a - b),
    bootState: state,
  };
}
