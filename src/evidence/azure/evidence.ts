import { SigilError, isSigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { parseSnpReport, type SnpReport } from '../snp/report.ts';
import { parseTdxQuote, type TdxQuote } from '../tdx/quote.ts';
import { parseHclReport, type HclReport } from './hcl-report.ts';
import { parseTdReportStruct, type TdReportStruct } from './td-report.ts';
import { jsonBytes, parseAzureTpmQuote, type AzureTpmQuote } from './tpm-quote.ts';

/**
 * Azure CVM evidence as Trustee's attesters send it (trustee deps/verifier az_snp_vtpm/compat.rs,
 * az_tdx_vtpm/compat.rs), or assembled from its parts:
 *
 *   azure-snp v1/v2  { "version": 1|2, "tpm_quote": {signature, message, pcrs} (hex),
 *                      "hcl_report": base64url, "vcek": base64 DER }
 *                    v2 also puts the caller's report_data into the HCL "user-data".
 *   azure-snp v0     { "quote": {signature, message, pcrs} (byte arrays), "report": [bytes], "vcek": PEM }
 *   azure-tdx v1     { "version": 1, "tpm_quote": {...} (hex), "hcl_report": base64url, "td_quote": base64url }
 *   azure-tdx v0     { "tpm_quote": {...}, "hcl_report": [bytes], "td_quote": [bytes] }
 *
 * Parsing checks structure only; every error is `azure.*`.
 */
export interface AzureSnpEvidence {
  /** Trustee evidence version (0 legacy, 1, 2); undefined when assembled from parts. */
  version?: number;
  hcl: HclReport;
  snpReport: SnpReport;
  tpmQuote: AzureTpmQuote;
  /** The VCEK the attester sent (DER, or PEM text), if any. */
  vcek?: Uint8Array | string;
}

export interface AzureTdxEvidence {
  version?: number;
  hcl: HclReport;
  tdReport: TdReportStruct;
  tdQuote: TdxQuote;
  tpmQuote: AzureTpmQuote;
}

const CODE = 'azure.evidence_malformed';
/** A few KiB each in practice; anything far larger is hostile. */
const MAX_FIELD = 1 << 20;

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(CODE, `Azure evidence: ${message}`, details);
}

/** Re-code errors from the shared parsers so everything parse throws is `azure.*`. */
function within<T>(code: string, what: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (isSigilError(error) && error.code.startsWith('azure.')) throw error;
    const inner = isSigilError(error) ? error.code : undefined;
    throw new SigilError(code, `${what}: ${error instanceof Error ? error.message : String(error)}`, { cause: inner }, { cause: error });
  }
}

function toObject(input: unknown): Record<string, unknown> {
  let value = input;
  if (input instanceof Uint8Array) {
    if (input.length > 4 * MAX_FIELD) fail('evidence too large');
    value = within(CODE, 'evidence is not UTF-8', () => new TextDecoder('utf-8', { fatal: true }).decode(input));
  }
  if (typeof value === 'string') {
    if (value.length > 4 * MAX_FIELD) fail('evidence too large');
    const text = value;
    value = within(CODE, 'evidence is not JSON', () => JSON.parse(text) as unknown);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('expected a JSON object');
  return value as Record<string, unknown>;
}

function base64Field(value: unknown, what: string): Uint8Array {
  if (Array.isArray(value)) return within(CODE, what, () => jsonBytes(value, what));
  if (typeof value !== 'string' || value.length > MAX_FIELD || !/^[A-Za-z0-9+/_=-]*$/.test(value)) fail(`"${what}" is not base64`);
  return within(CODE, what, () => fromBase64(value));
}

function versionOf(body: Record<string, unknown>, allowed: number[]): number | undefined {
  if (body.version === undefined) return undefined;
  if (typeof body.version !== 'number' || !allowed.includes(body.version)) fail(`evidence version ${JSON.stringify(body.version)} is not supported (${allowed.join(', ')})`);
  return body.version;
}

function hclOf(bytes: Uint8Array, type: 'snp' | 'tdx'): HclReport {
  const hcl = parseHclReport(bytes);
  if (hcl.reportType !== type) {
    throw new SigilError('azure.report_type_mismatch', `the HCL report holds a ${hcl.reportType.toUpperCase()} report, not ${type.toUpperCase()}`, { reportType: hcl.reportType });
  }
  return hcl;
}

export interface AzureSnpParts {
  hclReport: Uint8Array;
  /** The vTPM quote object ({signature, message, pcrs}) or its JSON text. */
  tpmQuote: unknown;
  vcek?: Uint8Array | string;
  version?: number;
}

export function azureSnpEvidenceFromParts(parts: AzureSnpParts): AzureSnpEvidence {
  const hcl = hclOf(parts.hclReport, 'snp');
  const snpReport = within('azure.hardware_report_malformed', 'SNP report in the HCL report', () => parseSnpReport(hcl.hardwareReport));
  const tpmQuote = parseAzureTpmQuote(typeof parts.tpmQuote === 'string' || parts.tpmQuote instanceof Uint8Array ? toObject(parts.tpmQuote) : parts.tpmQuote);
  const evidence: AzureSnpEvidence = { hcl, snpReport, tpmQuote };
  if (parts.vcek !== undefined) evidence.vcek = parts.vcek;
  if (parts.version !== undefined) evidence.version = parts.version;
  return evidence;
}

export function parseAzureSnpEvidence(input: unknown): AzureSnpEvidence {
  const body = toObject(input);
  const version = versionOf(body, [1, 2]);
  if (version === undefined) {
    // Legacy v0: byte arrays and a PEM VCEK.
    if (typeof body.vcek !== 'string' || body.vcek.length > MAX_FIELD) fail('"vcek" (PEM) is missing');
    return azureSnpEvidenceFromParts({ hclReport: base64Field(body.report, 'report'), tpmQuote: body.quote, vcek: body.vcek, version: 0 });
  }
  // Sigil also accepts v1/v2 without "vcek": the verifier then gets it from collateral.
  return azureSnpEvidenceFromParts({
    hclReport: base64Field(body.hcl_report, 'hcl_report'),
    tpmQuote: body.tpm_quote,
    ...(body.vcek !== undefined ? { vcek: base64Field(body.vcek, 'vcek') } : {}),
    version,
  });
}

export interface AzureTdxParts {
  hclReport: Uint8Array;
  tdQuote: Uint8Array;
  tpmQuote: unknown;
  version?: number;
}

export function azureTdxEvidenceFromParts(parts: AzureTdxParts): AzureTdxEvidence {
  const hcl = hclOf(parts.hclReport, 'tdx');
  const tdReport = parseTdReportStruct(hcl.hardwareReport);
  const tdQuote = within('azure.td_quote_malformed', 'TD quote', () => parseTdxQuote(parts.tdQuote));
  const tpmQuote = parseAzureTpmQuote(typeof parts.tpmQuote === 'string' || parts.tpmQuote instanceof Uint8Array ? toObject(parts.tpmQuote) : parts.tpmQuote);
  const evidence: AzureTdxEvidence = { hcl, tdReport, tdQuote, tpmQuote };
  if (parts.version !== undefined) evidence.version = parts.version;
  return evidence;
}

export function parseAzureTdxEvidence(input: unknown): AzureTdxEvidence {
  const body = toObject(input);
  const version = versionOf(body, [1]) ?? 0;
  return azureTdxEvidenceFromParts({
    hclReport: base64Field(body.hcl_report, 'hcl_report'),
    tdQuote: base64Field(body.td_quote, 'td_quote'),
    tpmQuote: body.tpm_quote,
    version,
  });
}
