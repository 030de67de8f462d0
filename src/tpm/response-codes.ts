import { TPM_CC } from './constants.ts';

/**
 * Decoding TPM_RC (Part 2, 6.6): format-one codes carry a parameter, handle or session number;
 * format-zero codes are errors (0x100 range), warnings (0x900 range) or vendor codes.
 */
const FORMAT_ZERO: Record<number, string> = {
  0x000: 'SUCCESS',
  0x01e: 'BAD_TAG',
  0x100: 'INITIALIZE',
  0x101: 'FAILURE',
  0x103: 'SEQUENCE',
  0x10b: 'PRIVATE',
  0x119: 'HMAC',
  0x120: 'DISABLED',
  0x121: 'EXCLUSIVE',
  0x124: 'AUTH_TYPE',
  0x125: 'AUTH_MISSING',
  0x126: 'POLICY',
  0x127: 'PCR',
  0x128: 'PCR_CHANGED',
  0x12d: 'UPGRADE',
  0x12e: 'TOO_MANY_CONTEXTS',
  0x12f: 'AUTH_UNAVAILABLE',
  0x130: 'REBOOT',
  0x131: 'UNBALANCED',
  0x142: 'COMMAND_SIZE',
  0x143: 'COMMAND_CODE',
  0x144: 'AUTHSIZE',
  0x145: 'AUTH_CONTEXT',
  0x146: 'NV_RANGE',
  0x147: 'NV_SIZE',
  0x148: 'NV_LOCKED',
  0x149: 'NV_AUTHORIZATION',
  0x14a: 'NV_UNINITIALIZED',
  0x14b: 'NV_SPACE',
  0x14c: 'NV_DEFINED',
  0x150: 'BAD_CONTEXT',
  0x151: 'CPHASH',
  0x152: 'PARENT',
  0x153: 'NEEDS_TEST',
  0x154: 'NO_RESULT',
  0x155: 'SENSITIVE',
  0x901: 'CONTEXT_GAP',
  0x902: 'OBJECT_MEMORY',
  0x903: 'SESSION_MEMORY',
  0x904: 'MEMORY',
  0x905: 'SESSION_HANDLES',
  0x906: 'OBJECT_HANDLES',
  0x907: 'LOCALITY',
  0x908: 'YIELDED',
  0x909: 'CANCELED',
  0x90a: 'TESTING',
  0x920: 'NV_RATE',
  0x921: 'LOCKOUT',
  0x922: 'RETRY',
  0x923: 'NV_UNAVAILABLE',
};

const FORMAT_ONE: Record<number, string> = {
  0x01: 'ASYMMETRIC',
  0x02: 'ATTRIBUTES',
  0x03: 'HASH',
  0x04: 'VALUE',
  0x05: 'HIERARCHY',
  0x07: 'KEY_SIZE',
  0x08: 'MGF',
  0x09: 'MODE',
  0x0a: 'TYPE',
  0x0b: 'HANDLE',
  0x0c: 'KDF',
  0x0d: 'RANGE',
  0x0e: 'AUTH_FAIL',
  0x0f: 'NONCE',
  0x10: 'PP',
  0x12: 'SCHEME',
  0x15: 'SIZE',
  0x16: 'SYMMETRIC',
  0x17: 'TAG',
  0x18: 'SELECTOR',
  0x1a: 'INSUFFICIENT',
  0x1b: 'SIGNATURE',
  0x1c: 'KEY',
  0x1d: 'POLICY_FAIL',
  0x1f: 'INTEGRITY',
  0x20: 'TICKET',
  0x21: 'RESERVED_BITS',
  0x22: 'BAD_AUTH',
  0x23: 'EXPIRED',
  0x24: 'POLICY_CC',
  0x25: 'BINDING',
  0x26: 'CURVE',
  0x27: 'ECC_POINT',
};

export interface DecodedResponseCode {
  rc: number;
  /** The base code, e.g. 0x08e for AUTH_FAIL in any position, 0x128 for PCR_CHANGED. */
  base: number;
  name: string;
  /** "parameter 2", "handle 1", "session 1", or undefined. */
  position?: string;
  warning: boolean;
}

export function decodeResponseCode(rc: number): DecodedResponseCode {
  if (rc & 0x80) {
    const base = 0x80 | (rc & 0x3f);
    const n = (rc >> 8) & 0xf;
    let position: string | undefined;
    if (rc & 0x40) position = `parameter ${n}`;
    else if (n & 0x8) position = `session ${n & 0x7}`;
    else if (n) position = `handle ${n}`;
    return { rc, base, name: FORMAT_ONE[rc & 0x3f] ?? `FMT1_0x${(rc & 0x3f).toString(16)}`, position, warning: false };
  }
  const base = rc & 0xfff;
  const name = FORMAT_ZERO[base] ?? (rc & 0x400 ? `VENDOR_0x${rc.toString(16)}` : `0x${rc.toString(16)}`);
  return { rc, base, name, warning: (base & 0x900) === 0x900 };
}

const COMMAND_NAMES = new Map<number, string>(Object.entries(TPM_CC).map(([name, code]) => [code, name]));

export function commandName(code: number): string {
  return COMMAND_NAMES.get(code) ?? `0x${code.toString(16)}`;
}

/** Stable SigilError code for a TPM response code, e.g. `tpm.rc.policy_fail`. */
export function errorCodeFor(decoded: DecodedResponseCode): string {
  return `tpm.rc.${decoded.name.toLowerCase()}`;
}
