import { Reader } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import type { HashName } from '../../core/hash.ts';

/**
 * The Azure CVM "HCL report": what the paravisor (HCL, running at VMPL0 / as the L1 TD) writes to
 * vTPM NV index 0x01400001. It follows the IGVM attestation request layout of Microsoft's
 * OpenHCL / az-cvm-vtpm (`AttestationReport` = header + hardware report + IGVM request data).
 * Little-endian throughout.
 *
 *   0x000  ATTESTATION_HEADER (32)
 *          0x00 signature u32 = "HCLA"   0x04 version u32        0x08 report_size u32
 *          0x0C request_type u32         0x10 status u32         0x14 reserved u32[3]
 *   0x020  hardware report, a 1184-byte slot (the larger of the two reports):
 *          SNP: ATTESTATION_REPORT (1184 bytes, AMD 56860 table 23)
 *          TDX: TDREPORT_STRUCT (1024 bytes, then zero padding)
 *   0x4C0  IGVM_REQUEST_DATA (the "runtime data")
 *          0x4C0 data_size u32 (= 20 + variable_data_size)   0x4C4 version u32
 *          0x4C8 report_type u32 (2 = SNP, 4 = TDX)          0x4CC report_data_hash_type u32
 *          0x4D0 variable_data_size u32                        0x4D4 variable_data[...]
 *
 * The variable data is JSON (keys incl. the vTPM AK "HCLAkPub", vm-configuration, user-data);
 * its hash (report_data_hash_type: 1 SHA-256, 2 SHA-384, 3 SHA-512) is what the HCL put into the
 * hardware report's REPORT_DATA. Nothing here is signed: the header and the runtime-data header
 * are framing, checked for consistency only; the variable data becomes trustworthy only once its
 * hash matches the verified hardware report (verify step). The JSON is therefore NOT parsed here.
 */
export const HCL_HEADER_SIZE = 0x20;
export const HCL_HARDWARE_REPORT_OFFSET = 0x20;
export const HCL_HARDWARE_REPORT_SLOT = 0x4a0;
export const HCL_RUNTIME_DATA_OFFSET = HCL_HARDWARE_REPORT_OFFSET + HCL_HARDWARE_REPORT_SLOT;
export const HCL_RUNTIME_HEADER_SIZE = 20;
export const HCL_VARIABLE_DATA_OFFSET = HCL_RUNTIME_DATA_OFFSET + HCL_RUNTIME_HEADER_SIZE;
/** "HCLA" read as a little-endian u32. */
export const HCL_SIGNATURE = 0x414c4348;
export const SNP_HARDWARE_REPORT_SIZE = 1184;
export const TD_REPORT_SIZE = 1024;
/** Real variable data is ~1-2 KiB; the NV index holding the report is a few KiB. */
const MAX_VARIABLE_DATA = 1 << 16;

export const IGVM_REPORT_TYPE = { snp: 2, tdx: 4 } as const;
const HASH_TYPES: Record<number, HashName> = { 1: 'SHA-256', 2: 'SHA-384', 3: 'SHA-512' };

export interface HclReport {
  header: { version: number; reportSize: number; requestType: number; status: number };
  reportType: 'snp' | 'tdx';
  /** The SNP report (1184 bytes) or the TDREPORT (1024 bytes), copied out of its slot. */
  hardwareReport: Uint8Array;
  runtimeData: {
    dataSize: number;
    version: number;
    reportTypeValue: number;
    hashTypeValue: number;
    hashType: HashName;
  };
  /** The raw variable data (JSON) exactly as hashed into the hardware report. */
  variableData: Uint8Array;
  /** Offset of the variable data in the HCL report (for diagnostics and tamper tests). */
  variableDataOffset: number;
}

function u32le(reader: Reader): number {
  const b = reader.take(4);
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
}

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('azure.hcl_malformed', `HCL report: ${message}`, details);
}

export function parseHclReport(bytes: Uint8Array): HclReport {
  try {
    return parse(bytes);
  } catch (error) {
    throw asSigilError(error, 'azure.hcl_malformed', 'the HCL report could not be parsed');
  }
}

function parse(bytes: Uint8Array): HclReport {
  if (!(bytes instanceof Uint8Array)) fail('expected bytes');
  const r = new Reader(bytes, { errorCode: 'azure.hcl_truncated', what: 'HCL report' });
  const signature = u32le(r);
  if (signature !== HCL_SIGNATURE) fail(`signature 0x${signature.toString(16)} is not "HCLA"`, { signature });
  const version = u32le(r);
  const reportSize = u32le(r);
  const requestType = u32le(r);
  const status = u32le(r);
  r.take(12); // reserved
  if (status !== 0) fail(`the HCL reports status ${status}: the report request failed`, { status });
  const slot = r.take(HCL_HARDWARE_REPORT_SLOT);
  const dataSize = u32le(r);
  const runtimeVersion = u32le(r);
  const reportTypeValue = u32le(r);
  const hashTypeValue = u32le(r);
  const variableDataSize = u32le(r);
  const reportType = reportTypeValue === IGVM_REPORT_TYPE.snp ? 'snp' : reportTypeValue === IGVM_REPORT_TYPE.tdx ? 'tdx' : undefined;
  if (!reportType) fail(`report type ${reportTypeValue} is neither SNP (2) nor TDX (4)`, { reportType: reportTypeValue });
  const hashType = HASH_TYPES[hashTypeValue];
  if (!hashType) fail(`report-data hash type ${hashTypeValue} is not SHA-256 (1), SHA-384 (2) or SHA-512 (3)`, { hashType: hashTypeValue });
  if (variableDataSize > MAX_VARIABLE_DATA) fail(`variable data of ${variableDataSize} bytes is implausibly large`, { variableDataSize });
  if (dataSize !== HCL_RUNTIME_HEADER_SIZE + variableDataSize) {
    fail(`runtime data size ${dataSize} is not the header (20) plus the variable data (${variableDataSize})`, { dataSize, variableDataSize });
  }
  const variableData = r.take(variableDataSize);
  // report_size covers header, hardware-report slot and runtime data; the rest of the NV index is padding.
  if (reportSize !== HCL_VARIABLE_DATA_OFFSET + variableDataSize) {
    fail(`report size ${reportSize} does not match its parts (${HCL_VARIABLE_DATA_OFFSET + variableDataSize})`, { reportSize });
  }
  const hardwareReport = reportType === 'snp' ? slot : slot.slice(0, TD_REPORT_SIZE);
  return {
    header: { version, reportSize, requestType, status },
    reportType,
    hardwareReport,
    runtimeData: { dataSize, version: runtimeVersion, reportTypeValue, hashTypeValue, hashType },
    variableData,
    variableDataOffset: HCL_VARIABLE_DATA_OFFSET,
  };
}
