import { SigilError } from '../core/errors.ts';

/** Exit codes (DESIGN.md section 5): 0 ok, 1 refused or invalid, 2 usage, 3 environment. */
export const EXIT = { ok: 0, refused: 1, usage: 2, environment: 3 } as const;

/** Error codes that mean "this machine cannot do it", not "the input was refused". */
const ENVIRONMENT_CODES = [/^tpm\.transport/, /^tpm\.swtpm_missing/, /^tpm\.device_unavailable/, /^env\./];
const USAGE_CODES = [/^tpm\.uri_invalid/, /^cli\.usage/, /^core\.hex_invalid/, /^tpm\.hash_unsupported/];

export function exitCodeFor(error: unknown): number {
  if (!(error instanceof SigilError)) return EXIT.refused;
  if (ENVIRONMENT_CODES.some((re) => re.test(error.code))) return EXIT.environment;
  if (USAGE_CODES.some((re) => re.test(error.code))) return EXIT.usage;
  return EXIT.refused;
}

/** Print a failure: message and code for people, or one JSON object with --json. */
export function reportError(error: unknown, json: boolean): number {
  const code = exitCodeFor(error);
  if (json) {
    const body = error instanceof SigilError ? error.toJSON() : { code: 'internal', message: String(error) };
    process.stdout.write(`${JSON.stringify({ error: body }, jsonReplacer)}\n`);
  } else if (error instanceof SigilError) {
    process.stderr.write(`sigil: ${error.message} [${error.code}]\n`);
  } else {
    process.stderr.write(`sigil: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  return code;
}

/** bigint and bytes in JSON output: decimal strings and hex. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
}
