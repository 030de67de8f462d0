import { Reader, utf8 } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64, fromHex } from '../../core/hex.ts';
import { parseImaLog, type ImaLog } from '../../eventlog/ima/ima-log.ts';
import type { QuirkOptions } from '../../eventlog/quirks.ts';
import { parseTcgEventLog, type TcgEventLog } from '../../eventlog/tcg-log.ts';
import { hashAlgFromLabel } from '../../tpm/algorithms.ts';
import { HASH_ALGS, TPM_ALG } from '../../tpm/constants.ts';
import { marshal } from '../../tpm/marshal/codec.ts';
import { TPMT_PUBLIC, type TpmPublic } from '../../tpm/structures/public.ts';
import { parseActivationRecord, type ActivationRecord } from './activation-record.ts';
import { parseQuote, type ParsedQuote } from './quote.ts';

/**
 * The TPM evidence bundle: one JSON document with everything a verifier needs.
 *
 *   {
 *     "kind": "tpm",                                   optional; "tpm" when present
 *     "quote": "<hex TPMS_ATTEST>", "signature": "<hex TPMT_SIGNATURE>",
 *     "quotes": [{ "quote": "<hex>", "signature": "<hex>" }],  instead of, or besides, the single pair
 *                                                      (e.g. one quote per PCR bank, as GCE returns)
 *     "pcrs": { "sha256": { "0": "<hex>", ... }, ... }  values of every quoted PCR
 *     "akPublic": "<hex TPM2B_PUBLIC or TPMT_PUBLIC>",
 *     "akCertificate": "<PEM, or base64 DER>",         optional: AK trust by certificate chain
 *     "akCertificateChain": ["<PEM or base64 DER>"],   optional intermediates
 *     "ekCertificate": "<PEM, or base64 DER>",         optional: AK trust by EK + activation
 *     "activation": { activation record, see activation-record.ts },
 *     "eventLog": "<base64 TCG event log>",            optional (binary_bios_measurements)
 *     "imaLog": "<base64 IMA list, binary or ASCII>",  optional
 *     "imaTemplateHash": "sha1"                        optional; "sha256" for a ..._sha256 list
 *   }
 *
 * `sigil tpm quote --json` prints a bundle of this shape (quote, signature, akPublic, pcrs). The
 * nonce is not part of the evidence: the verifier supplies the one it issued.
 */
export interface TpmBundle {
  quotes: ParsedQuote[];
  pcrs: Map<number, Map<number, Uint8Array>>;
  akPublic: TpmPublic;
  akCertificate?: Uint8Array;
  akCertificateChain: Uint8Array[];
  ekCertificate?: Uint8Array;
  activation?: ActivationRecord;
  eventLog?: TcgEventLog;
  imaLog?: ImaLog;
}

const CODE = 'tpm.evidence_malformed';
/** A bundle larger than this is not evidence (an event log is tens of KiB, IMA a few MiB). */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(CODE, `TPM evidence: ${message}`, details);
}

function hexField(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string') fail(`${what} is not a hex string`);
  try {
    return fromHex(value as string);
  } catch {
    return fail(`${what} is not valid hex`);
  }
}

function base64Field(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string') fail(`${what} is not a base64 string`);
  // fromBase64 refuses every character outside base64/base64url, '=' and whitespace itself.
  try {
    return fromBase64(value as string);
  } catch {
    return fail(`${what} is not valid base64`);
  }
}

/** A certificate as PEM text (the first CERTIFICATE block) or base64 DER. */
function certificateField(value: unknown, what: string): Uint8Array {
  if (typeof value !== 'string') fail(`${what} is not a string`);
  const pem = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(value as string);
  return base64Field(pem ? pem[1] : value, what);
}

/** TPM2B_PUBLIC (size-prefixed) or a bare TPMT_PUBLIC. */
export function parseAkPublic(bytes: Uint8Array): TpmPublic {
  const sized = bytes.length >= 2 && ((bytes[0] << 8) | bytes[1]) === bytes.length - 2;
  const r = new Reader(sized ? bytes.subarray(2) : bytes, { errorCode: 'tpm.ak_public_malformed', what: 'AK public area' });
  const publicArea = TPMT_PUBLIC.read(r);
  r.end();
  return publicArea;
}

function pcrMap(value: unknown): Map<number, Map<number, Uint8Array>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('"pcrs" is not an object of banks');
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [label, bank] of Object.entries(value as Record<string, unknown>)) {
    let alg: number;
    try {
      alg = hashAlgFromLabel(label);
    } catch {
      return fail(`unknown PCR bank "${label}"`);
    }
    if (typeof bank !== 'object' || bank === null || Array.isArray(bank)) fail(`PCR bank "${label}" is not an object`);
    const values = new Map<number, Uint8Array>();
    for (const [index, hex] of Object.entries(bank as Record<string, unknown>)) {
      if (!/^(\d|1\d|2[0-3])$/.test(index)) fail(`PCR index "${index}" in bank ${label}`);
      const digest = hexField(hex, `PCR ${label}:${index}`);
      if (digest.length !== HASH_ALGS[alg].size) fail(`PCR ${label}:${index} is ${digest.length} bytes, not ${HASH_ALGS[alg].size}`);
      values.set(Number(index), digest);
    }
    out.set(alg, values);
  }
  return out;
}

/** Parse a bundle (JSON bytes, text, or an already-parsed object); nothing in it is trusted yet. */
export function parseTpmBundle(input: Uint8Array | string | object, options: QuirkOptions = {}): TpmBundle {
  try {
    return parseBundle(toObject(input), options);
  } catch (error) {
    throw asSigilError(error, CODE, 'the TPM evidence bundle could not be parsed');
  }
}

function toObject(input: Uint8Array | string | object): Record<string, unknown> {
  let value: unknown = input;
  if (input instanceof Uint8Array || typeof input === 'string') {
    const text = typeof input === 'string' ? input : utf8.decode(input);
    if (text.length > MAX_BUNDLE_BYTES) fail(`the bundle is larger than ${MAX_BUNDLE_BYTES} bytes`);
    try {
      value = JSON.parse(text);
    } catch {
      fail('the bundle is not JSON');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('the bundle is not a JSON object');
  return value as Record<string, unknown>;
}

function parseBundle(b: Record<string, unknown>, options: QuirkOptions): TpmBundle {
  if (b.kind !== undefined && b.kind !== 'tpm') fail(`kind is "${String(b.kind)}", not "tpm"`);
  const pairs: { quote: unknown; signature: unknown }[] = [];
  if (b.quote !== undefined || b.signature !== undefined) pairs.push({ quote: b.quote, signature: b.signature });
  if (b.quotes !== undefined) {
    if (!Array.isArray(b.quotes) || b.quotes.length > 16) fail('"quotes" is not an array of at most 16 quotes');
    for (const q of b.quotes as unknown[]) {
      if (typeof q !== 'object' || q === null) fail('a quote entry is not an object');
      pairs.push(q as { quote: unknown; signature: unknown });
    }
  }
  if (pairs.length === 0) fail('no quote');
  const quotes = pairs.map((p, i) => parseQuote(hexField(p.quote, `quote ${i}`), hexField(p.signature, `signature ${i}`)));
  if (b.akPublic === undefined) fail('no "akPublic"');
  const evidence: TpmBundle = {
    quotes,
    pcrs: pcrMap(b.pcrs),
    akPublic: parseAkPublic(hexField(b.akPublic, 'akPublic')),
    akCertificateChain: [],
  };
  if (b.akCertificate !== undefined) evidence.akCertificate = certificateField(b.akCertificate, 'akCertificate');
  if (b.akCertificateChain !== undefined) {
    if (!Array.isArray(b.akCertificateChain) || b.akCertificateChain.length > 8) fail('"akCertificateChain" is not an array of at most 8 certificates');
    evidence.akCertificateChain = (b.akCertificateChain as unknown[]).map((c, i) => certificateField(c, `akCertificateChain[${i}]`));
  }
  if (b.ekCertificate !== undefined) evidence.ekCertificate = certificateField(b.ekCertificate, 'ekCertificate');
  if (b.activation !== undefined) evidence.activation = parseActivationRecord(b.activation);
  if (b.eventLog !== undefined) evidence.eventLog = parseTcgEventLog(base64Field(b.eventLog, 'eventLog'), options);
  if (b.imaLog !== undefined) {
    const templateHashAlg = b.imaTemplateHash === undefined ? TPM_ALG.SHA1 : hashAlgFromLabel(String(b.imaTemplateHash));
    evidence.imaLog = parseImaLog(base64Field(b.imaLog, 'imaLog'), { templateHashAlg });
  }
  return evidence;
}

/** TPMT_PUBLIC bytes of the AK (for names and bundles). */
export function akPublicBytes(evidence: TpmBundle): Uint8Array {
  return marshal(TPMT_PUBLIC, evidence.akPublic);
}
