import { Reader } from '../../core/bytes.ts';
import { u16le, u32le } from './le.ts';

/**
 * SGX enclave report body (sgx_report_body_t, 384 bytes), the QE report inside certification data
 * type 6. Intel SGX ECDSA quote library spec, "Enclave Report Body"; little-endian:
 *
 *   0    16  CPUSVN
 *   16    4  MISCSELECT
 *   20   28  reserved
 *   48   16  ATTRIBUTES
 *   64   32  MRENCLAVE
 *   96   32  reserved
 *   128  32  MRSIGNER
 *   160  96  reserved
 *   256   2  ISVPRODID
 *   258   2  ISVSVN
 *   260  60  reserved
 *   320  64  REPORTDATA            SHA-256(attestation key || QE auth data) || 32 zero bytes
 */
export interface EnclaveReport {
  cpuSvn: Uint8Array;
  miscSelect: number;
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  reportData: Uint8Array;
}

export const ENCLAVE_REPORT_SIZE = 384;

export function parseEnclaveReport(bytes: Uint8Array): EnclaveReport {
  const reader = new Reader(bytes, { errorCode: 'tdx.quote_truncated', what: 'QE report' });
  const cpuSvn = reader.take(16);
  const miscSelect = u32le(reader);
  reader.skip(28);
  const attributes = reader.take(16);
  const mrEnclave = reader.take(32);
  reader.skip(32);
  const mrSigner = reader.take(32);
  reader.skip(96);
  const isvProdId = u16le(reader);
  const isvSvn = u16le(reader);
  reader.skip(60);
  const reportData = reader.take(64);
  reader.end();
  return { cpuSvn, miscSelect, attributes, mrEnclave, mrSigner, isvProdId, isvSvn, reportData };
}
