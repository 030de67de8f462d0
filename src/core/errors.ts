/**
 * The one error type Sigil throws. `code` is stable and dotted (`tpm.policy_pcr_mismatch`), so
 * callers, the CLI and the broker can branch on it; `message` is for people; `details` carries the
 * values that explain the failure (never secrets).
 */
export class SigilError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SigilError';
    this.code = code;
    this.details = details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isSigilError(value: unknown, code?: string): value is SigilError {
  return value instanceof SigilError && (code === undefined || value.code === code);
}

/** Wrap anything that is not already a SigilError, so parsers only ever throw SigilError. */
export function asSigilError(error: unknown, code: string, message: string): SigilError {
  if (error instanceof SigilError) return error;
  return new SigilError(code, message, { cause: String(error) }, { cause: error });
}
