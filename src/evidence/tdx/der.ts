import { SigilError } from '../../core/errors.ts';

/**
 * Strict DER framing for signed X.509 objects. @peculiar/x509 (via asn1js) accepts a
 * Certificate or CertificateList whose outer SEQUENCE length disagrees with its contents, or a
 * signature BIT STRING with unused bits: the signed TBS is unchanged, so such an object still
 * "verifies". A verifier should not accept bytes that no honest encoder produced, so the outer
 * framing is checked here: SEQUENCE { SEQUENCE (tbs), SEQUENCE (algorithm), BIT STRING (signature,
 * 0 unused bits) } with minimal definite lengths that exactly fill the input (X.690, 10.1), and
 * the ECDSA signature inside.
 */
interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

function readTlv(der: Uint8Array, offset: number, limit: number): Tlv | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset];
  const first = der[offset + 1];
  let length: number;
  let contentStart: number;
  if (first < 0x80) {
    length = first;
    contentStart = offset + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0 || count > 3 || offset + 2 + count > limit) return undefined;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[offset + 2 + i];
    // Minimal: no leading zero byte, and the long form only for lengths of 128 and more.
    if (der[offset + 2] === 0 || length < 0x80) return undefined;
    contentStart = offset + 2 + count;
  }
  const end = contentStart + length;
  if (end > limit) return undefined;
  return { tag, start: offset, contentStart, end };
}

export function assertSignedDerFraming(der: Uint8Array, code: string, what: string): void {
  const fail = (): never => {
    throw new SigilError(code, `the ${what} is not strict DER (its outer framing is inconsistent)`);
  };
  const outer = readTlv(der, 0, der.length);
  if (!outer || outer.tag !== 0x30 || outer.end !== der.length) fail();
  const tbs = readTlv(der, outer!.contentStart, outer!.end);
  if (!tbs || tbs.tag !== 0x30) return fail();
  const algorithm = readTlv(der, tbs.end, outer!.end);
  if (!algorithm || algorithm.tag !== 0x30) return fail();
  const signature = readTlv(der, algorithm.end, outer!.end);
  if (!signature || signature.tag !== 0x03 || signature.end !== outer!.end) return fail();
  if (signature.contentStart >= signature.end || der[signature.contentStart] !== 0) fail();
  assertEcdsaSignature(der, signature.contentStart + 1, signature.end, fail);
}

/**
 * Intel's DCAP PKI signs with ECDSA only; its signature value is SEQUENCE { INTEGER r, INTEGER s }
 * (RFC 5480, 2.2.3), checked here as strictly as the framing: the lenient DER-to-raw conversion
 * in @peculiar/x509 would otherwise ignore a damaged tag or a padding byte.
 */
function assertEcdsaSignature(der: Uint8Array, start: number, end: number, fail: () => never): void {
  const sequence = readTlv(der, start, end);
  if (!sequence || sequence.tag !== 0x30 || sequence.end !== end) fail();
  let offset = sequence!.contentStart;
  for (let i = 0; i < 2; i++) {
    const integer = readTlv(der, offset, end);
    if (!integer || integer.tag !== 0x02 || integer.contentStart === integer.end) return fail();
    const first = der[integer.contentStart];
    // Positive and minimal: no sign bit; a leading zero only in front of a byte with the high bit set.
    if (first & 0x80) fail();
    if (first === 0 && (integer.end - integer.contentStart === 1 || (der[integer.contentStart + 1] & 0x80) === 0)) fail();
    offset = integer.end;
  }
  if (offset !== end) fail();
}
