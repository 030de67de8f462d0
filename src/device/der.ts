import { concatBytes } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';

/**
 * The few DER encodings Sigil writes itself (X.690): the PBES2/scrypt parameters of an encrypted
 * PKCS#8 key and the subjectAltName directoryName of device and product certificates, where
 * @peculiar/x509 would pick PrintableString for values the TCG profile wants as UTF8String.
 * Only writing: every reader is OpenSSL (node:crypto) or @peculiar/x509.
 */

function length(n: number): Uint8Array {
  if (n < 0x80) return new Uint8Array([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return new Uint8Array([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = concatBytes(...content);
  return concatBytes(new Uint8Array([tag]), length(body.length), body);
}

export const sequence = (...items: Uint8Array[]): Uint8Array => tlv(0x30, ...items);
export const set = (...items: Uint8Array[]): Uint8Array => tlv(0x31, ...items);
export const octetString = (bytes: Uint8Array): Uint8Array => tlv(0x04, bytes);
export const utf8String = (text: string): Uint8Array => tlv(0x0c, new TextEncoder().encode(text));
/** [n] EXPLICIT (constructed, context-specific). */
export const explicit = (n: number, ...content: Uint8Array[]): Uint8Array => tlv(0xa0 | n, ...content);

/** A non-negative INTEGER below 2^53. */
export function integer(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new SigilError('device.der_invalid', `cannot encode ${value} as a DER INTEGER`);
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  if (bytes.length === 0 || bytes[0] & 0x80) bytes.unshift(0);
  return tlv(0x02, new Uint8Array(bytes));
}

export function objectIdentifier(oid: string): Uint8Array {
  const arcs = oid.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0) || arcs[0] > 2) {
    throw new SigilError('device.der_invalid', `"${oid}" is not an object identifier Sigil can encode`);
  }
  const out: number[] = [];
  const base128 = (value: number) => {
    const chunk: number[] = [value & 0x7f];
    for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  };
  base128(arcs[0] * 40 + arcs[1]);
  for (const arc of arcs.slice(2)) base128(arc);
  return tlv(0x06, new Uint8Array(out));
}

/** A Name (RDNSequence) with one UTF8String attribute per RDN, in the order given. */
export function utf8Name(attributes: [oid: string, value: string][]): Uint8Array {
  return sequence(...attributes.map(([oid, value]) => set(sequence(objectIdentifier(oid), utf8String(value)))));
}
