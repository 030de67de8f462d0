import { bytesEqual, Reader, utf8 } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { parseEnclaveReport, ENCLAVE_REPORT_SIZE, type EnclaveReport } from './enclave-report.ts';
import { u16le, u32le } from './le.ts';
import { ATTESTATION_KEY_ECDSA_P256, QUOTE_HEADER_SIZE, readQuoteHeader, TEE_TYPE_TDX, type QuoteHeader } from './quote-header.ts';
import { readTdReport, TD_REPORT_10_SIZE, TD_REPORT_15_SIZE, type TdReport } from './td-report.ts';

/**
 * A TDX DCAP quote, v4 or v5 (Intel "TDX DCAP Quote Generation Library and Quote Verification
 * Library", Appendix A.3 / A.4). Little-endian throughout.
 *
 *   v4:  header (48) | TD 1.0 body (584)                             | u32 sigDataLen | sigData
 *   v5:  header (48) | u16 body type | u32 body size | body (584/648) | u32 sigDataLen | sigData
 *        body type 1 = SGX enclave report, 2 = TD report 1.0, 3 = TD report 1.5
 *
 * The attestation key signs everything before sigDataLen (for v5 including the type and size).
 *
 * sigData, "ECDSA 256-bit Quote Signature Data Structure" (A.3.8):
 *   0    64  quote signature, r || s big-endian
 *   64   64  ECDSA attestation public key, x || y
 *   128   2  certification data type (6 = QE report certification data)
 *   130   4  certification data size
 *   134   …  certification data
 *
 * Certification data type 6, "QE Report Certification Data" (A.3.11):
 *   0   384  QE report (SGX report body)
 *   384  64  QE report signature by the PCK key, r || s
 *   448   2  QE authentication data size, then the data
 *   …     2  certification data type (5 = PCK certificate chain, PEM) | u32 size | data
 *
 * Bytes after sigData are ignored: real quote buffers carry zero padding (and one upstream sample
 * deliberately carries ASCII garbage), and nothing after sigData is signed or used.
 */
export interface TdxQuote {
  header: QuoteHeader;
  /** 2 = TD report 1.0, 3 = TD report 1.5 (v4 quotes are always 2). */
  bodyType: 2 | 3;
  body: TdReport;
  /** Exactly the bytes the attestation key signed. */
  signedBytes: Uint8Array;
  quoteSignature: Uint8Array;
  attestationKey: Uint8Array;
  qeReportBytes: Uint8Array;
  qeReport: EnclaveReport;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  /** PEM text (certification data type 5): PCK leaf, PCK CA, root. */
  pckCertChainPem: string;
  /** Bytes after the signature data (padding; not signed, not used). */
  trailingBytes: number;
}

export const BODY_TYPE_SGX = 1;
export const BODY_TYPE_TD10 = 2;
export const BODY_TYPE_TD15 = 3;
export const CERT_DATA_PCK_CHAIN = 5;
export const CERT_DATA_QE_REPORT = 6;

/** Quotes are a few KiB; a certification-data size beyond this is hostile. */
const MAX_CERT_DATA = 1 << 20;

function fail(code: string, message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(code, message, details);
}

export function parseTdxQuote(bytes: Uint8Array): TdxQuote {
  try {
    return parse(bytes);
  } catch (error) {
    throw asSigilError(error, 'tdx.quote_malformed', 'the TDX quote could not be parsed');
  }
}

function parse(input: Uint8Array): TdxQuote {
  // One private copy of the quote; every field is a view of it (owned), not a copy of its own.
  const bytes = input.slice();
  const reader = new Reader(bytes, { errorCode: 'tdx.quote_truncated', what: 'TDX quote', owned: true });
  const header = readQuoteHeader(reader);
  if (header.version !== 4 && header.version !== 5) {
    fail('tdx.quote_version_unsupported', `quote version ${header.version} is not supported (4 and 5 are)`, { version: header.version });
  }
  if (header.teeType !== TEE_TYPE_TDX) fail('tdx.quote_not_tdx', `the quote's TEE type is 0x${header.teeType.toString(16)}, not TDX (0x81)`, { teeType: header.teeType });
  if (header.attestationKeyType !== ATTESTATION_KEY_ECDSA_P256) {
    fail('tdx.attestation_key_type_unsupported', `attestation key type ${header.attestationKeyType} is not ECDSA P-256 (2)`, { type: header.attestationKeyType });
  }
  let bodyType: 2 | 3 = BODY_TYPE_TD10;
  if (header.version === 5) {
    const type = u16le(reader);
    const size = u32le(reader);
    if (type === BODY_TYPE_SGX) fail('tdx.quote_not_tdx', 'the v5 quote carries an SGX enclave report, not a TD report');
    if (type !== BODY_TYPE_TD10 && type !== BODY_TYPE_TD15) fail('tdx.quote_body_type_unsupported', `quote body type ${type} is not supported`, { type });
    const expected = type === BODY_TYPE_TD10 ? TD_REPORT_10_SIZE : TD_REPORT_15_SIZE;
    if (size !== expected) fail('tdx.quote_malformed', `body type ${type} must be ${expected} bytes, the quote says ${size}`, { type, size });
    bodyType = type;
  }
  const body = readTdReport(reader, bodyType === BODY_TYPE_TD15);
  const signedEnd = reader.offset;
  const signedBytes = bytes.subarray(0, signedEnd);

  const sigDataLength = u32le(reader);
  if (sigDataLength > reader.remaining) fail('tdx.quote_truncated', `signature data of ${sigDataLength} bytes exceeds the ${reader.remaining} remaining`, { sigDataLength });
  const sig = new Reader(reader.take(sigDataLength), { errorCode: 'tdx.quote_malformed', what: 'quote signature data', owned: true });
  const trailingBytes = reader.remaining;

  const quoteSignature = sig.take(64);
  const attestationKey = sig.take(64);
  const outer = readCertificationData(sig);
  sig.end();
  if (outer.type !== CERT_DATA_QE_REPORT) {
    fail('tdx.certification_data_unsupported', `certification data type ${outer.type} is not supported (6, QE report certification data, is)`, { type: outer.type });
  }
  const qe = new Reader(outer.data, { errorCode: 'tdx.quote_malformed', what: 'QE report certification data', owned: true });
  const qeReportBytes = qe.take(ENCLAVE_REPORT_SIZE);
  const qeReportSignature = qe.take(64);
  const qeAuthData = qe.take(u16le(qe));
  const inner = readCertificationData(qe);
  qe.end();
  if (inner.type !== CERT_DATA_PCK_CHAIN) {
    fail('tdx.certification_data_unsupported', `nested certification data type ${inner.type} is not supported (5, PCK certificate chain, is)`, { type: inner.type });
  }
  return {
    header,
    bodyType,
    body,
    signedBytes,
    quoteSignature,
    attestationKey,
    qeReportBytes,
    qeReport: parseEnclaveReport(qeReportBytes),
    qeReportSignature,
    qeAuthData,
    pckCertChainPem: decodePem(inner.data),
    trailingBytes,
  };
}

function readCertificationData(reader: Reader): { type: number; data: Uint8Array } {
  const type = u16le(reader);
  const size = u32le(reader);
  if (size > MAX_CERT_DATA) reader.fail(`certification data of ${size} bytes is implausibly large`, { size });
  return { type, data: reader.take(size) };
}

/** Printable ASCII plus tab, LF and CR: what PEM text may hold. */
const PEM_CHAR = new Uint8Array(256);
for (let c = 0x20; c <= 0x7e; c++) PEM_CHAR[c] = 1;
PEM_CHAR[0x09] = PEM_CHAR[0x0a] = PEM_CHAR[0x0d] = 1;

/**
 * The PCK chain text of recent quotes, by the bytes it came from: a platform sends the same chain
 * with every quote, and an identical byte run (compared in full) needs neither the scan nor the
 * decoding again. Handing out the same string also makes the chain lookup in chain.ts immediate.
 */
const recentPems = new Map<number, { bytes: Uint8Array; text: string }>();
const RECENT_PEMS = 64;

function pemSample(data: Uint8Array): number {
  let h = data.length;
  for (let i = 28; i < 28 + 48 * 3 && i < data.length; i += 3) h = (Math.imul(h, 31) + data[i]) | 0;
  return h;
}

function decodePem(data: Uint8Array): string {
  const sample = pemSample(data);
  const known = recentPems.get(sample);
  if (known && bytesEqual(known.bytes, data)) return known.text;
  const text = decodeNewPem(data);
  if (recentPems.size >= RECENT_PEMS) recentPems.delete(recentPems.keys().next().value!);
  recentPems.set(sample, { bytes: data.slice(), text });
  return text;
}

/** PEM is ASCII; anything else (or a stray NUL terminator, which some QEs append) is cut or refused. */
function decodeNewPem(data: Uint8Array): string {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  let bad = 0;
  for (let i = 0; i < end; i++) bad |= PEM_CHAR[data[i]] ^ 1; // branch-free scan; the offset only on failure
  if (bad) {
    const offset = data.subarray(0, end).findIndex((b) => PEM_CHAR[b] === 0);
    fail('tdx.pck_chain_malformed', 'the PCK certificate chain is not PEM text', { offset });
  }
  return utf8.decode(data.subarray(0, end));
}
