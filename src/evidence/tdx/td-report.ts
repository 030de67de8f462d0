import type { Reader } from '../../core/bytes.ts';
import { u64leAt } from './le.ts';

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

const KNOWN_TD_ATTRIBUTE_BITS = (1n << 0n) | (1n << 28n) | (1n << 30n) | (1n << 31n) | (1n << 63n);

export function decodeTdAttributes(bytes: Uint8Array): TdAttributes {
  const value = u64leAt(bytes, 0);
  const bit = (n: bigint) => ((value >> n) & 1n) === 1n;
  return {
    debug: bit(0n),
    septVeDisable: bit(28n),
    protectionKeys: bit(30n),
    keyLocker: bit(31n),
    perfmon: bit(63n),
    reservedBitsSet: (value & ~KNOWN_TD_ATTRIBUTE_BITS) !== 0n,
  };
}
