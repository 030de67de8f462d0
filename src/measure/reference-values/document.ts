/**
 * The reference-value document: what Sigil predicted for an image (SNP/SEV launch digests, TDX
 * MRTD and RTMRs, TPM PCRs), with the digests of the artefacts each value came from. Its shape
 * follows CoRIM (draft-ietf-rats-corim): an identified, profiled manifest with a validity window
 * and a creator, carrying reference values for an environment; in JSON rather than CBOR, and with
 * the environment/measurement pairs flattened into one `values` list. See README.md beside this
 * file for the format and its JWS signature.
 */
import { SigilError } from '../../core/errors.ts';

export const RV_PROFILE = 'sigil-reference-values/1';

export type ReferenceValueKind = 'snp-measurement' | 'sev-measurement' | 'tdx-mrtd' | 'tdx-rtmr' | 'tpm-pcr';
export type PcrBank = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface SourceArtefact {
  /** What the artefact is or was called (file name, "ovmf", "kernel", "cmdline"). */
  name: string;
  sha256: string;
}

export interface ReferenceValue {
  kind: ReferenceValueKind;
  /** RTMR 0-3 or PCR 0-23; only for tdx-rtmr and tpm-pcr. */
  index?: number;
  /** Only for tpm-pcr. */
  bank?: PcrBank;
  /** Lowercase hex. */
  value: string;
  label?: string;
  sources?: SourceArtefact[];
  /** The inputs that shaped the value besides artefacts (vCPUs, vCPU type, mode, stub version). */
  parameters?: Record<string, string | number | boolean>;
}

export interface ReferenceValueDocument {
  profile: typeof RV_PROFILE;
  id: string;
  issuedAt: string;
  issuer?: string;
  validity?: { notBefore?: string; notAfter?: string };
  values: ReferenceValue[];
}

const KINDS: Record<ReferenceValueKind, { bytes?: number; index?: [number, number] }> = {
  'snp-measurement': { bytes: 48 },
  'sev-measurement': { bytes: 32 },
  'tdx-mrtd': { bytes: 48 },
  'tdx-rtmr': { bytes: 48, index: [0, 3] },
  'tpm-pcr': { index: [0, 23] },
};
const BANK_BYTES: Record<PcrBank, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };
const MAX_VALUES = 10_000;

function malformed(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('rv.malformed', `reference values: ${message}`, details);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function onlyKeys(value: Record<string, unknown>, allowed: string[], where: string): void {
  const extra = Object.keys(value).filter((k) => !allowed.includes(k));
  if (extra.length) malformed(`${where} has unknown fields ${extra.join(', ')}`, { fields: extra });
}

function hexOf(value: unknown, bytes: number, where: string): string {
  if (typeof value !== 'string' || !/^[0-9a-f]*$/.test(value) || value.length !== bytes * 2) malformed(`${where} must be ${bytes} bytes of lowercase hex`);
  return value;
}

function timeOf(value: unknown, where: string): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value)) || !/^\d{4}-\d\d-\d\dT/.test(value)) malformed(`${where} must be an ISO 8601 date-time`);
  return value;
}

function checkValue(raw: unknown, i: number): ReferenceValue {
  const where = `values[${i}]`;
  if (!isObject(raw)) malformed(`${where} is not an object`);
  onlyKeys(raw, ['kind', 'index', 'bank', 'value', 'label', 'sources', 'parameters'], where);
  const kind = raw.kind as ReferenceValueKind;
  const rule = KINDS[kind];
  if (typeof kind !== 'string' || !rule) malformed(`${where}.kind ${JSON.stringify(raw.kind)} is not one of ${Object.keys(KINDS).join(', ')}`);
  const out: ReferenceValue = { kind, value: '' };
  if (rule.index) {
    const index = raw.index;
    if (typeof index !== 'number' || !Number.isInteger(index) || index < rule.index[0] || index > rule.index[1]) malformed(`${where}.index must be ${rule.index[0]}..${rule.index[1]} for ${kind}`);
    out.index = index;
  } else if (raw.index !== undefined) malformed(`${where}.index is not used by ${kind}`);
  let bytes = rule.bytes;
  if (kind === 'tpm-pcr') {
    const bank = raw.bank as PcrBank;
    if (typeof bank !== 'string' || !BANK_BYTES[bank]) malformed(`${where}.bank must be one of ${Object.keys(BANK_BYTES).join(', ')}`);
    out.bank = bank;
    bytes = BANK_BYTES[bank];
  } else if (raw.bank !== undefined) malformed(`${where}.bank is only used by tpm-pcr`);
  out.value = hexOf(raw.value, bytes!, `${where}.value`);
  if (raw.label !== undefined) {
    if (typeof raw.label !== 'string') malformed(`${where}.label must be a string`);
    out.label = raw.label;
  }
  if (raw.sources !== undefined) {
    if (!Array.isArray(raw.sources) || raw.sources.length > 64) malformed(`${where}.sources must be a list of up to 64 artefacts`);
    out.sources = raw.sources.map((s: unknown, j: number) => {
      const at = `${where}.sources[${j}]`;
      if (!isObject(s)) malformed(`${at} is not an object`);
      onlyKeys(s, ['name', 'sha256'], at);
      if (typeof s.name !== 'string' || s.name.length === 0) malformed(`${at}.name must be a non-empty string`);
      return { name: s.name, sha256: hexOf(s.sha256, 32, `${at}.sha256`) };
    });
  }
  if (raw.parameters !== undefined) {
    if (!isObject(raw.parameters)) malformed(`${where}.parameters must be an object`);
    for (const [k, v] of Object.entries(raw.parameters)) {
      if (!['string', 'number', 'boolean'].includes(typeof v)) malformed(`${where}.parameters.${k} must be a string, number or boolean`);
    }
    out.parameters = raw.parameters as Record<string, string | number | boolean>;
  }
  return out;
}

/** Check an untrusted value is a well-formed document; returns a clean copy (no stray fields). */
export function checkReferenceValueDocument(raw: unknown): ReferenceValueDocument {
  if (!isObject(raw)) malformed('the document is not a JSON object');
  onlyKeys(raw, ['profile', 'id', 'issuedAt', 'issuer', 'validity', 'values'], 'the document');
  if (raw.profile !== RV_PROFILE) malformed(`profile is ${JSON.stringify(raw.profile)}, not ${RV_PROFILE}`);
  if (typeof raw.id !== 'string' || raw.id.length === 0 || raw.id.length > 256) malformed('id must be a non-empty string');
  const doc: ReferenceValueDocument = { profile: RV_PROFILE, id: raw.id, issuedAt: timeOf(raw.issuedAt, 'issuedAt'), values: [] };
  if (raw.issuer !== undefined) {
    if (typeof raw.issuer !== 'string') malformed('issuer must be a string');
    doc.issuer = raw.issuer;
  }
  if (raw.validity !== undefined) {
    if (!isObject(raw.validity)) malformed('validity must be an object');
    onlyKeys(raw.validity, ['notBefore', 'notAfter'], 'validity');
    doc.validity = {};
    if (raw.validity.notBefore !== undefined) doc.validity.notBefore = timeOf(raw.validity.notBefore, 'validity.notBefore');
    if (raw.validity.notAfter !== undefined) doc.validity.notAfter = timeOf(raw.validity.notAfter, 'validity.notAfter');
  }
  if (!Array.isArray(raw.values) || raw.values.length === 0 || raw.values.length > MAX_VALUES) malformed(`values must be a list of 1 to ${MAX_VALUES} reference values`);
  doc.values = raw.values.map(checkValue);
  return doc;
}

/** A new document around `values` (id and issue time filled in, everything checked). */
export function referenceValueDocument(values: ReferenceValue[], options: { issuer?: string; notAfter?: Date; notBefore?: Date; id?: string; now?: Date } = {}): ReferenceValueDocument {
  const doc: Record<string, unknown> = {
    profile: RV_PROFILE,
    id: options.id ?? `urn:uuid:${crypto.randomUUID()}`,
    issuedAt: (options.now ?? new Date()).toISOString(),
    values,
  };
  if (options.issuer) doc.issuer = options.issuer;
  if (options.notAfter || options.notBefore) {
    doc.validity = {
      ...(options.notBefore ? { notBefore: options.notBefore.toISOString() } : {}),
      ...(options.notAfter ? { notAfter: options.notAfter.toISOString() } : {}),
    };
  }
  return checkReferenceValueDocument(doc);
}

/** The values a verifier compares a claim against (e.g. every tpm-pcr 4 in sha256). */
export function findReferenceValues(doc: ReferenceValueDocument, kind: ReferenceValueKind, select: { index?: number; bank?: PcrBank } = {}): ReferenceValue[] {
  return doc.values.filter((v) => v.kind === kind && (select.index === undefined || v.index === select.index) && (select.bank === undefined || v.bank === select.bank));
}
