import type { BootState } from '../../eventlog/boot-state.ts';
import type { ImaVerification } from '../../eventlog/ima/ima-replay.ts';
import type { AppliedQuirk } from '../../eventlog/quirks.ts';
import type { PcrComparison } from '../../eventlog/replay.ts';
import type { AkIdentity } from './ak-trust.ts';

/**
 * What a verified TPM evidence bundle tells (JSON-safe: hex strings, ISO dates, no bigint).
 * Everything here passed verify(): the AK is trusted, every quote's signature, nonce and PCR
 * digest check out, the event log replays to the quoted PCRs (boot state only from PCRs that
 * matched), and the IMA entries listed are those the quoted PCR 10 covers.
 */
export interface QuoteClaims {
  nonce: string;
  signatureScheme: string;
  signatureHash: string;
  clock: string;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: string;
  qualifiedSigner: string;
}

export interface EventLogClaims {
  format: 'crypto-agile' | 'sha1-legacy';
  algorithms: string[];
  startupLocality?: number;
  /** Every quoted PCR of every replayed bank: match / mismatch / not-in-log. */
  comparisons: PcrComparison[];
  /** PCRs whose replay matched in every quoted bank; only their events feed the boot state. */
  verifiedPcrs: number[];
  /** Runtime PCRs (trust.runtimePcrs) that differ from the log: extended after boot, not used. */
  extendedAfterBoot: number[];
  bootState: BootState;
}

export interface TpmBundleClaims {
  ak: AkIdentity;
  quotes: QuoteClaims[];
  /** Quoted PCR values, bank label → index → hex. */
  pcrs: Record<string, Record<number, string>>;
  eventLog?: EventLogClaims;
  ima?: ImaVerification;
  /** Every quirk applied anywhere (parse, replay, boot state, IMA); appraisal may refuse them. */
  quirks: AppliedQuirk[];
}
