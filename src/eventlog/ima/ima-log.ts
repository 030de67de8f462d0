import { concatBytes, Reader, utf8 } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromHex, toHex } from '../../core/hex.ts';
import { HASH_ALGS, TPM_ALG } from '../../tpm/constants.ts';
import { u32le } from '../le.ts';
import { decodeDigestField, encodeDigestField, interpretFields, TEMPLATES, u32, type ImaFields } from './templates.ts';

/**
 * The IMA measurement list (Linux security/integrity/ima/ima_fs.c), in both kernel formats:
 *
 * binary_runtime_measurements (little-endian, as with ima_canonical_fmt or on x86), per entry:
 *   pcr u32 | template digest [20 for the SHA-1 file, the bank size for ..._<alg> files]
 *   | template name length u32 | template name
 *   | "ima" template: digest[20], name length u32, name      (no total length, no NUL)
 *   | other templates: template data length u32, then fields, each u32 length + data
 *
 * ascii_runtime_measurements, one entry per line:
 *   "<pcr> <template-hash hex> <template-name> <field> <field> ..." (fields as the kernel shows
 *   them: "sha256:<hex>", the path, the signature in hex; an empty field leaves a trailing space)
 *
 * In the ASCII form a path containing spaces is ambiguous against a following hex field; the
 * parser takes the last token as that field, and the template-hash check in replay rejects a
 * wrong split instead of accepting it.
 */
export interface ImaEntry {
  index: number;
  pcr: number;
  /** The template hash as logged (all zeros for a violation). */
  templateHash: Uint8Array;
  templateName: string;
  /** Field data, each without its length prefix. */
  fields: Uint8Array[];
  /** A violation entry (open-writers/ToMToU): extended as all-ones, its hash logged as zeros. */
  violation: boolean;
  details: ImaFields;
}

export interface ImaLog {
  format: 'binary' | 'ascii';
  /** The algorithm of the logged template hashes (SHA-1 unless read from a ..._<alg> file). */
  templateHashAlg: number;
  entries: ImaEntry[];
}

export interface ImaParseOptions {
  format?: 'auto' | 'binary' | 'ascii';
  /** For binary lists: the template hash algorithm (default SHA-1, the classic file). */
  templateHashAlg?: number;
}

const MAX_TEMPLATE_NAME = 32;
const MAX_FIELDS = 16;

export function parseImaLog(bytes: Uint8Array, options: ImaParseOptions = {}): ImaLog {
  try {
    const format = options.format && options.format !== 'auto' ? options.format : looksAscii(bytes) ? 'ascii' : 'binary';
    return format === 'ascii' ? parseAscii(utf8.decode(bytes)) : parseBinary(bytes, options.templateHashAlg ?? TPM_ALG.SHA1);
  } catch (error) {
    throw asSigilError(error, 'ima.malformed', 'the IMA measurement list could not be parsed');
  }
}

function looksAscii(bytes: Uint8Array): boolean {
  // A binary list starts with a little-endian PCR index (a zero byte among the first four).
  const head = bytes.subarray(0, 4);
  return head.length > 0 && head.every((b) => b >= 0x20 && b < 0x7f);
}

function parseBinary(bytes: Uint8Array, templateHashAlg: number): ImaLog {
  const hash = HASH_ALGS[templateHashAlg];
  if (!hash) throw new SigilError('ima.hash_unsupported', `template hash algorithm 0x${templateHashAlg.toString(16)}`);
  const r = new Reader(bytes, { errorCode: 'ima.truncated', what: 'IMA binary measurement list' });
  const entries: ImaEntry[] = [];
  while (r.remaining > 0) {
    const pcr = u32le(r);
    if (pcr > 23) r.fail(`entry ${entries.length} is for PCR ${pcr}`, { pcr }, 'ima.pcr_out_of_range');
    const templateHash = r.take(hash.size);
    const nameLength = u32le(r);
    if (nameLength === 0 || nameLength > MAX_TEMPLATE_NAME) r.fail(`template name length ${nameLength}`, {}, 'ima.template_invalid');
    const templateName = utf8.decode(r.take(nameLength));
    let fields: Uint8Array[];
    if (templateName === 'ima') {
      const digest = r.take(20);
      const length = u32le(r);
      if (length > 255) r.fail(`an "ima" template name of ${length} bytes`, {}, 'ima.template_invalid');
      fields = [digest, r.take(length)];
    } else {
      const dataLength = u32le(r);
      if (dataLength > r.remaining) r.fail(`template data of ${dataLength} bytes, ${r.remaining} left`);
      fields = splitFields(new Reader(r.take(dataLength), { errorCode: 'ima.template_invalid', what: `IMA entry ${entries.length}` }));
    }
    entries.push(entry(entries.length, pcr, templateHash, templateName, fields));
  }
  return { format: 'binary', templateHashAlg, entries };
}

function splitFields(r: Reader): Uint8Array[] {
  const fields: Uint8Array[] = [];
  while (r.remaining > 0) {
    if (fields.length === MAX_FIELDS) r.fail(`more than ${MAX_FIELDS} template fields`);
    const length = u32le(r);
    if (length > r.remaining) r.fail(`field of ${length} bytes, ${r.remaining} left`);
    fields.push(r.take(length));
  }
  return fields;
}

function entry(index: number, pcr: number, templateHash: Uint8Array, templateName: string, fields: Uint8Array[]): ImaEntry {
  const violation = templateHash.every((b) => b === 0);
  return { index, pcr, templateHash, templateName, fields, violation, details: interpretFields(templateName, fields) };
}

const HASH_BY_HEX_LENGTH: Record<number, number> = { 40: TPM_ALG.SHA1, 64: TPM_ALG.SHA256, 96: TPM_ALG.SHA384, 128: TPM_ALG.SHA512 };

function parseAscii(text: string): ImaLog {
  const entries: ImaEntry[] = [];
  let templateHashAlg: number | undefined;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const [lineNumber, line] of lines.entries()) {
    const fail = (message: string): never => {
      throw new SigilError('ima.ascii_invalid', `line ${lineNumber + 1}: ${message}`, { line: lineNumber + 1 });
    };
    const m = /^(\d{1,2}) ([0-9a-f]+) (\S+) (.*)$/.exec(line);
    if (!m) fail('not "<pcr> <template-hash> <template> <fields>"');
    const [, pcrText, hashHex, templateName, rest] = m!;
    const alg = HASH_BY_HEX_LENGTH[hashHex.length] ?? fail(`a template hash of ${hashHex.length} hex digits`);
    if (templateHashAlg !== undefined && alg !== templateHashAlg) fail('template hashes of different lengths in one list');
    templateHashAlg = alg;
    const names = TEMPLATES[templateName] ?? fail(`template "${templateName}" is not one Sigil can read from the ASCII list`);
    const fields = asciiFields(templateName, names, rest, fail);
    entries.push(entry(entries.length, Number(pcrText), fromHex(hashHex), templateName, fields));
  }
  return { format: 'ascii', templateHashAlg: templateHashAlg ?? TPM_ALG.SHA1, entries };
}

function asciiFields(template: string, names: string[], rest: string, fail: (m: string) => never): Uint8Array[] {
  const space = rest.indexOf(' ');
  if (space < 0) fail('no file name');
  const digestText = rest.slice(0, space);
  let tail = rest.slice(space + 1);
  const digestField = (): Uint8Array => {
    if (template === 'ima') return /^[0-9a-f]{40}$/.test(digestText) ? fromHex(digestText) : fail(`digest "${digestText}"`);
    const parts = digestText.split(':');
    const v2 = names[0] === 'd-ngv2';
    if (parts.length !== (v2 ? 3 : 2) || !/^[0-9a-f]*$/.test(parts.at(-1)!) || parts.at(-1)!.length % 2) fail(`digest "${digestText}"`);
    return encodeDigestField({ type: v2 ? parts[0] : undefined, alg: parts.at(-2)!, digest: '' }, fromHex(parts.at(-1)!));
  };
  const fields = [digestField()];
  // Fields after the name (sig, buf...) are hex; the last extra fields are taken from the end.
  const extra: Uint8Array[] = [];
  for (let i = names.length - 1; i >= 2; i--) {
    const cut = tail.lastIndexOf(' ');
    if (cut < 0) fail(`missing field ${names[i]}`);
    const value = tail.slice(cut + 1);
    if (!/^([0-9a-f]{2})*$/.test(value)) fail(`field ${names[i]} is not hex`);
    extra.unshift(fromHex(value));
    tail = tail.slice(0, cut);
  }
  fields.push(template === 'ima' ? utf8.encode(tail) : concatBytes(utf8.encode(tail), new Uint8Array([0])));
  decodeDigestFieldIfNg(template, fields[0]);
  return [...fields, ...extra];
}

function decodeDigestFieldIfNg(template: string, field: Uint8Array): void {
  if (template !== 'ima') decodeDigestField(field, TEMPLATES[template][0] === 'd-ngv2');
}

/** Write entries in the binary list format (tests and tools; the kernel's layout above). */
export function encodeImaBinary(entries: Pick<ImaEntry, 'pcr' | 'templateHash' | 'templateName' | 'fields'>[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    const name = utf8.encode(e.templateName);
    parts.push(u32(e.pcr), e.templateHash, u32(name.length), name);
    if (e.templateName === 'ima') parts.push(e.fields[0], u32(e.fields[1].length), e.fields[1]);
    else {
      const data = concatBytes(...e.fields.flatMap((f) => [u32(f.length), f]));
      parts.push(u32(data.length), data);
    }
  }
  return concatBytes(...parts);
}

/** The same entries as the kernel prints them in ascii_runtime_measurements. */
export function encodeImaAscii(log: ImaLog): string {
  return log.entries
    .map((e) => {
      const names = TEMPLATES[e.templateName];
      const shown = e.fields.map((f, i) => {
        if (f.length === 0) return '';
        const name = names?.[i];
        if (name === 'd-ng' || name === 'd-ngv2') {
          const d = decodeDigestField(f, name === 'd-ngv2');
          return `${d.type ? `${d.type}:` : ''}${d.alg}:${d.digest}`;
        }
        if (name === 'n-ng') return utf8.decode(f.subarray(0, f.length - 1));
        if (name === 'n') return utf8.decode(f);
        return toHex(f);
      });
      return `${e.pcr} ${toHex(e.templateHash)} ${e.templateName} ${shown.join(' ')}`;
    })
    .map((l) => `${l}\n`)
    .join('');
}
