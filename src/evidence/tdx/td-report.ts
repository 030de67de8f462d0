import type { Reader } from '../../core/bytes.ts';
import { u32leAt } from './le.ts';

/**
 * TD quote body (the TD report's measurements), Intel TDX DCAP quote library spec Appendix A.3.2
 * "TD Quote Body" (TDX 1.0, 584 bytes) and A.4.3 "TD Quote Body Descriptor"/TD 1.5 body (648 bytes).
 * Offsets inside the body:
 *
 *   0    16  TEE_TCB_SVN          [0] TDX module ISV SVN, [1] TDX module major version, [2..] SEAM/µcode SVNs
 *   16   48  MRSEAM               measurement of the TDX module
 *   64   48  MRSIGNERSEAM         signer of the TDX module (zero for Intel's)
 *   112   8  SEAMATTRIBUTES
 *   120   8  TDATTRIBUTES         u64 LE: bit 0 DEBUG, 28 SEPT_VE_DISABLE, 30 PKS, 31 KL, 63 PERFMON
 *   128   8  XFAM
 *   136  48  MRTD                 initial TD contents
 *   184  48  MRCONFIGID
 *   232  48  MROWNER
 *   280  48  MROWNERCONFIG
 *   328 4x48 RTMR0..RTMR3
 *   520  64  REPORTDATA
 *   --- TDX 1.5 only ---
 *   584  16  TEE_TCB_SVN2         SVNs of the module the TD runs on after a TD-preserving update
 *   600  48  MRSERVICETD          hash of the service TDs' TDINFO (zero when none is bound)
 */
export interface TdReport {
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmrs: [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  reportData: Uint8Array;
  /** TDX 1.5 bodies only. */
  teeTcbSvn2?: Uint8Array;
  mrServiceTd?: Uint8Array;
}

export const TD_REPORT_10_SIZE = 584;
export const TD_REPORT_15_SIZE = 648;

export function readTdReport(reader: Reader, tdx15: boolean): TdReport {
  const report: TdReport = {
    teeTcbSvn: reader.take(16),
    mrSeam: reader.take(48),
    mrSignerSeam: reader.take(48),
    seamAttributes: reader.take(8),
    tdAttributes: reader.take(8),
    xfam: reader.take(8),
    mrTd: reader.take(48),
    mrConfigId: reader.take(48),
    mrOwner: reader.take(48),
    mrOwnerConfig: reader.take(48),
    rtmrs: [reader.take(48), reader.take(48), reader.take(48), reader.take(48)],
    reportData: reader.take(64),
  };
  if (tdx15) {
    report.teeTcbSvn2 = reader.take(16);
    report.mrServiceTd = reader.take(48);
  }
  return report;
}

/** TDATTRIBUTES bits (Intel TDX module ABI spec, "TDATTRIBUTES"). */
export interface TdAttributes {
  debug: boolean;
  septVeDisable: boolean;
  protectionKeys: boolean;
  keyLocker: boolean;
  perfmon: boolean;
  /** Any bit set outside the known ones (TUD bits 1-7, reserved SEC/OTHER bits). */
  reservedBitsSet: boolean;
}

/** Known bits 0, 28, 30, 31 (low word) and 63 (bit 31 of the high word). */
const KNOWN_LOW = ((1 << 0) | (1 << 28) | (1 << 30) | (1 << 31)) >>> 0;
const KNOWN_HIGH = (1 << 31) >>> 0;

export function decodeTdAttributes(bytes: Uint8Array): TdAttributes {
  // Two 32-bit halves instead of a BigInt: this runs for every quote.
  const low = u32leAt(bytes, 0);
  const high = u32leAt(bytes, 4);
  const bit = (word: number, n: number) => ((word >>> n) & 1) === 1;
  return {
    debug: bit(low, 0),
    septVeDisable: bit(low, 28),
    protectionKeys: bit(low, 30),
    keyLocker: bit(low, 31),
    perfmon: bit(high, 31),
    reservedBitsSet: (low & ~KNOWN_LOW) !== 0 || (high & ~KNOWN_HIGH) !== 0,
  };
}
