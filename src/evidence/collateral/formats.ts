import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { fromBase64, fromHex } from '../../core/hex.ts';

/**
 * The shapes vendor services and bundles use for the same material, normalized: DER whether a
 * file or response holds DER, PEM or hex text (PCCS serves the Root CA CRL as hex), a CRL's and a
 * signed JSON's nextUpdate (the freshness of cached copies), and Intel's URL-encoded PEM issuer
 * chain headers. Errors are `collateral.*`; the verifiers re-check everything that matters.
 */
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]*?)-----END \1-----/;

function isText(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b > 0x7e || (b < 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09)) return false;
  return true;
}

/** DER (first byte 0x30, a SEQUENCE), or the first PEM block, or hex text → DER bytes. */
export function toDer(bytes: Uint8Array, what: string, code: string): Uint8Array {
  if (bytes.length > 0 && bytes[0] === 0x30) return bytes;
  if (!isText(bytes)) throw new SigilError(code, `${what} is neither DER, PEM nor hex`);
  const text = utf8.decode(bytes).trim();
  const pem = PEM_BLOCK.exec(text);
  try {
    if (pem) return fromBase64(pem[2]);
    if (/^([0-9a-fA-F]{2})+$/.test(text)) return fromHex(text);
  } catch (error) {
    throw new SigilError(code, `${what} is not valid PEM or hex`, {}, { cause: error });
  }
  throw new SigilError(code, `${what} is neither DER, PEM nor hex`);
}

/** A CRL's nextUpdate; the CRL is parsed (not verified) to read it. */
export function crlNextUpdate(der: Uint8Array, what: string, code: string): Date | undefined {
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(der.slice() as Uint8Array<ArrayBuffer>);
  } catch (error) {
    throw new SigilError(code, `${what} is not a CRL`, {}, { cause: error });
  }
  const next = crl.nextUpdate;
  return next && !Number.isNaN(next.getTime()) ? next : undefined;
}

/** PEM text holding at least one certificate and nothing but PEM blocks. */
export function checkPemChain(text: string, what: string, code: string): string {
  if (!/-----BEGIN CERTIFICATE-----/.test(text) || text.replace(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*?-----END CERTIFICATE-----/g, '').trim() !== '') {
    throw new SigilError(code, `${what} is not a PEM certificate chain`);
  }
  return text;
}

export type SignedJsonMember = 'tcbInfo' | 'enclaveIdentity';

/**
 * Check a PCS body {"tcbInfo"|"enclaveIdentity": {…, "nextUpdate": ISO}, "signature": hex} and
 * return its nextUpdate. The exact text is kept by the caller (the signature covers it).
 */
export function signedJsonNextUpdate(text: string, member: SignedJsonMember, what: string, code: string): Date {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SigilError(code, `${what} is not JSON`, {}, { cause: error });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new SigilError(code, `${what} is not a JSON object`);
  const body = (json as Record<string, unknown>)[member];
  const signature = (json as Record<string, unknown>).signature;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new SigilError(code, `${what} has no "${member}" object`);
  if (typeof signature !== 'string' || !/^[0-9a-fA-F]{128}$/.test(signature)) throw new SigilError(code, `${what} has no 64-byte hex "signature"`);
  const next = (body as Record<string, unknown>).nextUpdate;
  const date = typeof next === 'string' && /^\d{4}-\d\d-\d\dT/.test(next) ? new Date(next) : undefined;
  if (!date || Number.isNaN(date.getTime())) throw new SigilError(code, `${what} has no valid ${member}.nextUpdate`);
  return date;
}

/** Intel's issuer-chain headers carry URL-encoded PEM. */
export function decodeIssuerChainHeader(value: string, what: string): string {
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch (error) {
    throw new SigilError('collateral.response_malformed', `${what} is not URL-encoded`, {}, { cause: error });
  }
  return checkPemChain(text, what, 'collateral.response_malformed');
}
