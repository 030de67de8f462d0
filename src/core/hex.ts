import { SigilError } from './errors.ts';
import { nodeBuffer } from './node-builtins.ts';

/**
 * Hex and base64 by table lookup. Evidence carries tens of KiB of base64 (event logs) and hex
 * (quotes, PCRs) per verification, and the obvious versions (atob plus a per-character callback,
 * parseInt per byte) cost more than the signature checks they feed.
 */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Character code → nibble value, -1 for anything else. */
const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[0x41 + i] = 10 + i;
  NIBBLE[0x61 + i] = 10 + i;
}

/** ASCII codes of each byte's two hex digits. */
const HEX_HIGH = Uint8Array.from(HEX, (h) => h.charCodeAt(0));
const HEX_LOW = Uint8Array.from(HEX, (h) => h.charCodeAt(1));
const hexScratch = new Uint8Array(8192);
const asciiDecoder = new TextDecoder();

export function toHex(bytes: Uint8Array): string {
  // Node's native hex for longer inputs and for views into a larger buffer. A small standalone
  // typed array keeps its bytes on V8's heap, and reading its .buffer would first move them out
  // (an allocation and a copy); a view with an offset already has its buffer off the heap.
  if (nodeBuffer && (bytes.length > 128 || bytes.byteOffset > 0)) return nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  // Otherwise the digits' ASCII codes go into a scratch array that one native decode turns into
  // a string: about twice as fast as concatenating two-character strings.
  let out = '';
  for (let offset = 0; offset < bytes.length; offset += hexScratch.length / 2) {
    const end = Math.min(bytes.length, offset + hexScratch.length / 2);
    let o = 0;
    for (let i = offset; i < end; i++) {
      hexScratch[o++] = HEX_HIGH[bytes[i]];
      hexScratch[o++] = HEX_LOW[bytes[i]];
    }
    out += asciiDecoder.decode(hexScratch.subarray(0, o));
  }
  return out;
}

export function fromHex(text: string): Uint8Array {
  const start = text.startsWith('0x') || text.startsWith('0X') ? 2 : 0;
  const length = text.length - start;
  const invalid = () => new SigilError('core.hex_invalid', 'not a hex string of whole bytes', { length });
  if (length % 2 !== 0) throw invalid();
  const out = new Uint8Array(length / 2);
  for (let i = 0, j = start; i < out.length; i++, j += 2) {
    const hi = text.charCodeAt(j);
    const lo = text.charCodeAt(j + 1);
    const h = hi < 128 ? NIBBLE[hi] : -1;
    const l = lo < 128 ? NIBBLE[lo] : -1;
    if ((h | l) < 0) throw invalid();
    out[i] = (h << 4) | l;
  }
  return out;
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_CODES = Uint8Array.from(BASE64_ALPHABET, (c) => c.charCodeAt(0));
const ascii = new TextDecoder();
const encoder = new TextEncoder();

/** Standard base64 with padding (RFC 4648, section 4). */
export function toBase64(bytes: Uint8Array): string {
  if (nodeBuffer) return nodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  return toBase64Portable(bytes);
}

/** toBase64 without node:buffer (what browsers run); exported for tests. */
export function toBase64Portable(bytes: Uint8Array): string {
  // ASCII codes into a byte array, turned into a string by one native decode.
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  const whole = bytes.length - (bytes.length % 3);
  let o = 0;
  for (let i = 0; i < whole; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out[o] = BASE64_CODES[v >> 18];
    out[o + 1] = BASE64_CODES[(v >> 12) & 63];
    out[o + 2] = BASE64_CODES[(v >> 6) & 63];
    out[o + 3] = BASE64_CODES[v & 63];
    o += 4;
  }
  const rest = bytes.length - whole;
  if (rest > 0) {
    const v = (bytes[whole] << 16) | (rest === 2 ? bytes[whole + 1] << 8 : 0);
    out[o] = BASE64_CODES[v >> 18];
    out[o + 1] = BASE64_CODES[(v >> 12) & 63];
    out[o + 2] = rest === 2 ? BASE64_CODES[(v >> 6) & 63] : 0x3d;
    out[o + 3] = 0x3d;
  }
  return ascii.decode(out);
}

const SKIP = -2;
const PAD = -3;
/** Character code (ASCII) → sextet; base64url's - and _ decode like + and /; SKIP for whitespace; -1 invalid. */
const SEXTET = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) SEXTET[BASE64_CODES[i]] = i;
SEXTET[0x2d] = 62; // '-'
SEXTET[0x5f] = 63; // '_'
for (const c of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]) SEXTET[c] = SKIP;
SEXTET[0x3d] = PAD; // '='

/** The non-ASCII characters JavaScript's \s matches: skipped like ASCII whitespace. */
function isUnicodeSpace(c: number): boolean {
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * Base64 or base64url, whitespace anywhere ignored, padding optional; trailing bits that do not
 * make a byte are dropped. This is what atob accepts after the url alphabet is mapped and
 * whitespace removed (WHATWG forgiving-base64): '=' only as the last one or two characters of a
 * whole number of quads, and never a single character left over.
 */
export function fromBase64(text: string): Uint8Array {
  if (nodeBuffer) {
    // Node: atob (native) decides validity, then node's native decoder makes the bytes; it reads
    // the url alphabet and skips whitespace the same way, but would not refuse bad input itself.
    // Anything atob refuses (Unicode whitespace, the url alphabet) takes the table path below.
    let valid = false;
    try {
      valid = text.includes('-') || text.includes('_') ? false : (atob(text), true);
    } catch {
      valid = false;
    }
    if (valid) {
      const decoded = nodeBuffer.from(text, 'base64');
      // A small result may be a slice of node's shared pool: copy it into a buffer of its own.
      return decoded.byteLength === decoded.buffer.byteLength ? new Uint8Array(decoded.buffer) : new Uint8Array(decoded);
    }
  }
  return fromBase64Portable(text);
}

/** fromBase64 without node:buffer (what browsers run); exported for tests. */
export function fromBase64Portable(text: string): Uint8Array {
  // The characters as bytes by one native encode. Text with non-ASCII characters (valid only
  // when they are Unicode whitespace) is mapped character by character: spaces to ' ', anything
  // else to DEL, which the table refuses.
  let codes = encoder.encode(text);
  if (codes.length !== text.length) codes = Uint8Array.from(text, (c) => (c.charCodeAt(0) < 0x80 ? c.charCodeAt(0) : isUnicodeSpace(c.charCodeAt(0)) ? 0x20 : 0x7f));
  const out = new Uint8Array(Math.floor((codes.length * 3) / 4) + 3);
  let bits = 0;
  let held = 0; // sextets since the last full quad
  let count = 0; // sextets
  let pads = 0;
  let o = 0;
  for (let i = 0; i < codes.length; i++) {
    const v = SEXTET[codes[i]];
    if (v >= 0) {
      if (pads > 0) throw base64Invalid();
      bits = (bits << 6) | v;
      count++;
      if (++held === 4) {
        out[o] = bits >> 16;
        out[o + 1] = (bits >> 8) & 0xff;
        out[o + 2] = bits & 0xff;
        o += 3;
        bits = 0;
        held = 0;
      }
    } else if (v === PAD) pads++;
    else if (v !== SKIP) throw base64Invalid();
  }
  if (pads > 0 ? pads > 2 || (count + pads) % 4 !== 0 : count % 4 === 1) throw base64Invalid();
  if (held === 2) out[o++] = bits >> 4;
  else if (held === 3) {
    out[o++] = bits >> 10;
    out[o++] = (bits >> 2) & 0xff;
  }
  return o === out.length ? out : out.slice(0, o);
}

function base64Invalid(): SigilError {
  return new SigilError('core.base64_invalid', 'not a base64 string');
}
