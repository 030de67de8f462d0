import { SigilError } from '../core/errors.ts';
import { fromHex } from '../core/hex.ts';
import { hashAlg, hashAlgFromLabel } from '../tpm/algorithms.ts';

/**
 * Reading Sigil's JSON files (policies, sealed secrets, provisioning records, trust bundles):
 * untrusted input that must fail with one SigilError code per file kind, never a TypeError.
 * Each check names the field so the message says what is wrong.
 */

/** Larger than any legitimate device file; refuse before JSON.parse spends time on it. */
const MAX_FILE = 4 * 1024 * 1024;

export type Json = Record<string, unknown>;

export function parseJsonObject(input: unknown, code: string, what: string): Json {
  let value = input;
  if (input instanceof Uint8Array) {
    if (input.length > MAX_FILE) throw new SigilError(code, `the ${what} is larger than ${MAX_FILE} bytes`);
    value = new TextDecoder('utf-8', { fatal: false }).decode(input);
  }
  if (typeof value === 'string') {
    if (value.length > MAX_FILE) throw new SigilError(code, `the ${what} is larger than ${MAX_FILE} bytes`);
    try {
      value = JSON.parse(value);
    } catch (error) {
      throw new SigilError(code, `the ${what} is not valid JSON`, {}, { cause: error });
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SigilError(code, `the ${what} is not a JSON object`);
  return value as Json;
}

interface FieldTypes {
  string: string;
  number: number;
  boolean: boolean;
  object: Json;
  array: unknown[];
}

function typeOf(value: unknown): keyof FieldTypes | 'null' | 'other' {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  const t = typeof value;
  return t === 'string' || t === 'number' || t === 'boolean' || t === 'object' ? t : 'other';
}

export function field<K extends keyof FieldTypes>(obj: Json, name: string, type: K, code: string): FieldTypes[K] {
  const value = Object.hasOwn(obj, name) ? obj[name] : undefined;
  if (value === undefined) throw new SigilError(code, `field "${name}" is missing`, { field: name });
  if (typeOf(value) !== type) throw new SigilError(code, `field "${name}" must be ${type === 'array' ? 'an array' : `a ${type}`}`, { field: name });
  return value as FieldTypes[K];
}

export function optionalField<K extends keyof FieldTypes>(obj: Json, name: string, type: K, code: string): FieldTypes[K] | undefined {
  if (!Object.hasOwn(obj, name) || obj[name] === undefined || obj[name] === null) return undefined;
  return field(obj, name, type, code);
}

/** A hex string field; `size` pins the byte length, `max` bounds it. */
export function hexField(obj: Json, name: string, code: string, limits: { size?: number; max?: number } = {}): Uint8Array {
  const text = field(obj, name, 'string', code);
  if (!/^[0-9a-f]*$/i.test(text) || text.length % 2 !== 0) throw new SigilError(code, `field "${name}" is not hex`, { field: name });
  const bytes = fromHex(text);
  if (limits.size !== undefined && bytes.length !== limits.size) {
    throw new SigilError(code, `field "${name}" must be ${limits.size} bytes, not ${bytes.length}`, { field: name });
  }
  if (limits.max !== undefined && bytes.length > limits.max) throw new SigilError(code, `field "${name}" is longer than ${limits.max} bytes`, { field: name });
  return bytes;
}

export function integerField(obj: Json, name: string, code: string, min = 0, max = 0xffffffff): number {
  const value = field(obj, name, 'number', code);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new SigilError(code, `field "${name}" must be a whole number from ${min} to ${max}`, { field: name });
  }
  return value;
}

/** "0x81000003" → number, within [min, max]. */
export function handleField(obj: Json, name: string, code: string, min: number, max: number): number {
  const text = field(obj, name, 'string', code);
  if (!/^0x[0-9a-f]{8}$/i.test(text)) throw new SigilError(code, `field "${name}" must be a handle like 0x81000003`, { field: name });
  const value = Number.parseInt(text.slice(2), 16);
  if (value < min || value > max) throw new SigilError(code, `field "${name}" is outside 0x${min.toString(16)}-0x${max.toString(16)}`, { field: name });
  return value;
}

/**
 * PCR values as signed policies and bundles carry them: 1-4 entries
 * `{"bank": "sha256", "values": {"7": "<hex>", …}}` → bank → index → value (sizes checked).
 */
export function parsePcrBanksJson(banks: unknown, code: string): Map<number, Map<number, Uint8Array>> {
  if (!Array.isArray(banks) || banks.length === 0 || banks.length > 4) throw new SigilError(code, 'PCR values list 1-4 banks');
  const values = new Map<number, Map<number, Uint8Array>>();
  for (const entry of banks) {
    const bankDoc = parseJsonObject(entry, code, 'PCR bank entry');
    let bank: number;
    try {
      bank = hashAlgFromLabel(field(bankDoc, 'bank', 'string', code));
    } catch (error) {
      throw new SigilError(code, 'a PCR bank is not a known hash algorithm', {}, { cause: error });
    }
    if (values.has(bank)) throw new SigilError(code, `bank ${hashAlg(bank).label} is listed twice`);
    const pcrDoc = field(bankDoc, 'values', 'object', code);
    const pcrs = new Map<number, Uint8Array>();
    for (const key of Object.keys(pcrDoc)) {
      if (!/^(0|[1-9][0-9]?)$/.test(key)) throw new SigilError(code, `"${key.slice(0, 8)}" is not a PCR index`);
      pcrs.set(Number(key), hexField(pcrDoc, key, code, { size: hashAlg(bank).size }));
    }
    values.set(bank, pcrs);
  }
  return values;
}
