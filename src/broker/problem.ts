import { SigilError } from '../core/errors.ts';
import type { TraceEntry } from '../evidence/verifier.ts';

/**
 * RFC 7807 problem details. Every refusal is a SigilError whose details carry the HTTP status and
 * the decision trace; the body names the stable code so clients branch on it, not on prose.
 *
 *   { type: "urn:sigil:problem:<code>", title, status, detail, code, instance, trace?, errors? }
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  trace?: TraceEntry[];
  errors?: unknown[];
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** A refusal with the trace that explains it; `failed` names the rule for the message. */
export function refusal(status: number, code: string, message: string, trace: TraceEntry[] = [], details: Record<string, unknown> = {}): SigilError {
  return new SigilError(code, message, { ...details, status, trace });
}

/** One trace entry for a check that failed outside a policy (nonce, token, revocation...). */
export function failedRule(rule: string, claim: string, expected: unknown, actual: unknown, message?: string): TraceEntry {
  return { rule, claim, expected, actual, result: 'fail', ...(message ? { message } : {}) };
}

export function statusForCode(code: string): number {
  if (code === 'broker.unauthorized' || code === 'broker.token_missing' || code === 'broker.token_invalid') return 401;
  if (code === 'broker.forbidden') return 403;
  if (/not_found$/.test(code) || code === 'evidence.kind_unknown') return 404;
  if (/conflict$|_exists$/.test(code)) return 409;
  if (code.startsWith('env.')) return 503;
  return 400;
}

export function toProblem(error: unknown, instance: string): Problem {
  if (error instanceof SigilError) {
    const status = typeof error.details.status === 'number' ? error.details.status : statusForCode(error.code);
    const { status: _status, trace, errors, ...rest } = error.details;
    const problem: Problem = {
      type: `urn:sigil:problem:${error.code}`,
      title: TITLES[status] ?? 'Error',
      status,
      detail: error.message,
      code: error.code,
      instance,
    };
    if (Array.isArray(trace) && trace.length > 0) problem.trace = trace as TraceEntry[];
    if (Array.isArray(errors)) problem.errors = errors;
    // Other details are safe by construction (SigilError details never carry secrets).
    for (const [key, value] of Object.entries(rest)) if (!(key in problem) && key !== 'cause') problem[key] = value;
    return problem;
  }
  return { type: 'urn:sigil:problem:internal', title: TITLES[500], status: 500, detail: 'internal error', code: 'internal', instance };
}
