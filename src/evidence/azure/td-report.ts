import { Reader } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import type { TdReport as TdQuoteBody } from '../tdx/td-report.ts';

/**
 * TDREPORT_STRUCT (Intel TDX Module ABI spec, "TDREPORT_STRUCT"; az-cvm-vtpm tdx/mod.rs), 1024
 * bytes, the local (MACed, not signed) report an Azure TDX CVM's paravisor puts in the HCL report.
 * It is only checkable on the same platform; off the platform it is trusted through the TD quote
 * the quoting enclave made from it, so the verifier compares its fields with the verified quote.
 *
 *   0    REPORTMACSTRUCT (256)
 *        0 REPORTTYPE (type u8 = 0x81 TDX, subtype u8, version u8, reserved u8)
 *        4 reserved (12)   16 CPUSVN (16)   32 TEE_TCB_INFO_HASH (48)   80 TEE_INFO_HASH (48)
 *        128 REPORTDATA (64)   192 reserved (32)   224 MAC (32)
 *   256  TEE_TCB_INFO (239): 0 VALID (8)  8 TEE_TCB_SVN (16)  24 MRSEAM (48)  72 MRSIGNERSEAM (48)
 *        120 ATTRIBUTES (8)  128 TEE_TCB_SVN2 (16, TDX 1.5)  144 reserved (95)
 *   495  reserved (17)
 *   512  TDINFO (512): 0 ATTRIBUTES (8)  8 XFAM (8)  16 MRTD (48)  64 MRCONFIGID (48)
 *        112 MROWNER (48)  160 MROWNERCONFIG (48)  208 RTMR0..3 (4 x 48)
 *        400 SERVTD_HASH (48, TDX 1.5)  448 reserved (64)
 */
export const TDREPORT_SIZE = 1024;
export const TDREPORT_TYPE_TDX = 0x81;

export interface TdReportStruct {
  reportType: { type: number; subtype: number; version: number };
  cpuSvn: Uint8Array;
  teeTcbInfoHash: Uint8Array;
  teeInfoHash: Uint8Array;
  reportData: Uint8Array;
  mac: Uint8Array;
  teeTcbInfoValid: Uint8Array;
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
}

export function parseTdReportStruct(bytes: Uint8Array): TdReportStruct {
  try {
    const r = new Reader(bytes, { errorCode: 'azure.td_report_malformed', what: 'TDREPORT' });
    const type = r.u8();
    const subtype = r.u8();
    const version = r.u8();
    r.take(1 + 12);
    if (type !== TDREPORT_TYPE_TDX) throw new SigilError('azure.td_report_malformed', `TDREPORT type 0x${type.toString(16)} is not TDX (0x81)`, { type });
    const cpuSvn = r.take(16);
    const teeTcbInfoHash = r.take(48);
    const teeInfoHash = r.take(48);
    const reportData = r.take(64);
    r.take(32);
    const mac = r.take(32);
    const teeTcbInfoValid = r.take(8);
    const teeTcbSvn = r.take(16);
    const mrSeam = r.take(48);
    const mrSignerSeam = r.take(48);
    const seamAttributes = r.take(8);
    r.take(239 - 128 + 17);
    const tdAttributes = r.take(8);
    const xfam = r.take(8);
    const mrTd = r.take(48);
    const mrConfigId = r.take(48);
    const mrOwner = r.take(48);
    const mrOwnerConfig = r.take(48);
    const rtmrs: TdReportStruct['rtmrs'] = [r.take(48), r.take(48), r.take(48), r.take(48)];
    r.take(112);
    r.end();
    return {
      reportType: { type, subtype, version },
      cpuSvn,
      teeTcbInfoHash,
      teeInfoHash,
      reportData,
      mac,
      teeTcbInfoValid,
      teeTcbSvn,
      mrSeam,
      mrSignerSeam,
      seamAttributes,
      tdAttributes,
      xfam,
      mrTd,
      mrConfigId,
      mrOwner,
      mrOwnerConfig,
      rtmrs,
    };
  } catch (error) {
    throw asSigilError(error, 'azure.td_report_malformed', 'the TDREPORT could not be parsed');
  }
}

/** The quote-body fields a TD quote copies from the TDREPORT it was made from, by claim name. */
export function tdReportQuoteFields(report: TdReportStruct | TdQuoteBody): [string, Uint8Array][] {
  return [
    ['teeTcbSvn', report.teeTcbSvn],
    ['mrSeam', report.mrSeam],
    ['mrSignerSeam', report.mrSignerSeam],
    ['seamAttributes', report.seamAttributes],
    ['tdAttributes', report.tdAttributes],
    ['xfam', report.xfam],
    ['mrTd', report.mrTd],
    ['mrConfigId', report.mrConfigId],
    ['mrOwner', report.mrOwner],
    ['mrOwnerConfig', report.mrOwnerConfig],
    ['rtmr0', report.rtmrs[0]],
    ['rtmr1', report.rtmrs[1]],
    ['rtmr2', report.rtmrs[2]],
    ['rtmr3', report.rtmrs[3]],
    ['reportData', report.reportData],
  ];
}
