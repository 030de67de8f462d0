import { bytesEqual, Reader } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';

/**
 * The little DER this verifier reads itself: AMD's extension values (INTEGER, IA5String) and a
 * strictness check @peculiar/x509 does not make. Bounded by Reader; errors are
 * snp.certificate_malformed.
 */
interface Tlv {
  tag: number;
  /** The whole element, header included. */
  raw: Uint8Array;
  content: Uint8Array;
}

function readTlv(r: Reader): Tlv {
  const start = r.offset;
  const tag = r.u8();
  if ((tag & 0x1f) === 0x1f) r.fail('multi-byte DER tags are not expected here');
  let length = r.u8();
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 3) r.fail('unsupported DER length form');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + r.u8();
  }
  const content = r.borrow(length); // views: only compared and decoded at once, never kept
  return { tag, raw: r.bytes.subarray(start, r.offset), content };
}

const reader = (bytes: Uint8Array, what: string) => new Reader(bytes, { errorCode: 'snp.certificate_malformed', what });

/** The content of a single DER element of `tag` that fills `bytes` exactly. */
export function derContent(bytes: Uint8Array, tag: number, what: string): Uint8Array {
  const r = reader(bytes, what);
  const tlv = readTlv(r);
  if (tlv.tag !== tag) r.fail(`expected DER tag 0x${tag.toString(16)}, got 0x${tlv.tag.toString(16)}`);
  r.end();
  return tlv.content;
}

/** A small non-negative DER INTEGER (AMD SPL values are one byte; five bytes is the ceiling). */
export function derSmallInteger(bytes: Uint8Array, what: string): number {
  const content = derContent(bytes, 0x02, what);
  if (content.length === 0 || content.length > 5 || (content[0] & 0x80) !== 0) {
    throw new SigilError('snp.certificate_malformed', `${what} is not a small non-negative INTEGER`);
  }
  let n = 0;
  for (const b of content) n = n * 256 + b;
  return n;
}

export function derIa5String(bytes: Uint8Array, what: string): string {
  return String.fromCharCode(...derContent(bytes, 0x16, what));
}

/**
 * RFC 5280 4.1.1.2 and 5.1.1.2: the outer signatureAlgorithm must equal the signed one inside the
 * TBS, and a certificate or CRL is exactly one DER element. @peculiar/x509 tolerates trailing
 * bytes and verifies with the outer algorithm's hash and salt only, so unsigned bytes could
 * otherwise change without notice.
 */
export function assertStrictSignedDer(der: Uint8Array, kind: 'certificate' | 'crl'): void {
  const code = kind === 'certificate' ? 'snp.certificate_malformed' : 'snp.crl_malformed';
  const what = kind === 'certificate' ? 'certificate' : 'CRL';
  const make = (bytes: Uint8Array) => new Reader(bytes, { errorCode: code, what });
  const outer = make(der);
  const signed = readTlv(outer);
  outer.end();
  if (signed.tag !== 0x30) outer.fail(`a ${what} is not a SEQUENCE`);
  const fields = make(signed.content);
  const tbs = readTlv(fields);
  const signatureAlgorithm = readTlv(fields);
  readTlv(fields); // signatureValue
  fields.end();
  const t = make(tbs.content);
  let innerAlgorithm = readTlv(t);
  if (kind === 'certificate') {
    if (innerAlgorithm.tag === 0xa0) innerAlgorithm = readTlv(t); // [0] version
    innerAlgorithm = readTlv(t); // after serialNumber
  } else if (innerAlgorithm.tag === 0x02) innerAlgorithm = readTlv(t); // optional version
  if (!bytesEqual(innerAlgorithm.raw, signatureAlgorithm.raw)) {
    throw new SigilError(code, `the ${what} signatureAlgorithm differs from the signed one`);
  }
}
