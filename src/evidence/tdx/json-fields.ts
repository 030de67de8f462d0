import { SigilError } from '../../core/errors.ts';
import { fromHex } from '../../core/hex.ts';

/**
 * Typed reads out of untrusted collateral JSON: every missing or mistyped field becomes one
 * SigilError with the given code and the field's path, never a TypeError.
 */
export type JsonObject = Record<string, unknown>;

export class JsonFields {
  readonly code: string;
  readonly path: string;
  readonly object: JsonObject;

  constructor(value: unknown, code: string, path: string) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SigilError(code, `${path} is not a JSON object`, { path });
    this.object = value as JsonObject;
    this.code = code;
    this.path = path;
  }

  fail(name: string, message: string): never {
    throw new SigilError(this.code, `${this.path}.${name} ${message}`, { path: `${this.path}.${name}` });
  }

  has(name: string): boolean {
    return this.object[name] !== undefined;
  }

  string(name: string): string {
    const value = this.object[name];
    if (typeof value !== 'string') this.fail(name, 'is missing or not a string');
    return value;
  }

  integer(name: string, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.object[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) this.fail(name, 'is missing or not an integer in range');
    return value;
  }

  hex(name: string, size?: number): Uint8Array {
    const text = this.string(name);
    let bytes: Uint8Array;
    try {
      bytes = fromHex(text);
    } catch {
      this.fail(name, 'is not hex');
    }
    if (size !== undefined && bytes.length !== size) this.fail(name, `is ${bytes.length} bytes, expected ${size}`);
    return bytes;
  }

  date(name: string): Date {
    const text = this.string(name);
    const date = new Date(text);
    if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(date.getTime())) this.fail(name, 'is not an ISO 8601 date');
    return date;
  }

  child(name: string): JsonFields {
    return new JsonFields(this.object[name], this.code, `${this.path}.${name}`);
  }

  objects(name: string, max = 1024): JsonFields[] {
    const value = this.object[name];
    if (!Array.isArray(value)) this.fail(name, 'is missing or not an array');
    if (value.length > max) this.fail(name, `has ${value.length} entries, more than ${max}`);
    return value.map((item, i) => new JsonFields(item, this.code, `${this.path}.${name}[${i}]`));
  }

  strings(name: string): string[] {
    const value = this.object[name];
    if (value === undefined) return [];
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) this.fail(name, 'is not an array of strings');
    return value as string[];
  }
}

export function parseJson(text: string, code: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SigilError(code, `the ${what} is not valid JSON`, {}, { cause: error });
  }
}
