/**
 * The product manifest's signature: a JWS (RFC 7515) in compact serialization with a detached
 * payload (RFC 7515 appendix F) — `BASE64URL(header) "." "." BASE64URL(signature)` — over the
 * manifest document's exact bytes, ES256 (ECDSA P-256 with SHA-256, signature r‖s), made with the
 * product key from the vendor keyset. The protected header carries the product certificate:
 *
 *   { "alg": "ES256", "typ": "vnd.sigil.manifest.signature.v1+jws",
 *     "cty": "vnd.sigil.product-manifest.v1+json", "x5c": [ base64 DER product certificate ] }
 *
 * Detached, because the document already travels as its own blob; the signature blob stays small
 * and names nothing it does not cover. `typ` and `cty` keep a manifest signature from being taken
 * for any other JWS made with the same key. Parsing refuses every other header field (no `crit`,
 * no `b64`, no `jku`/`x5u`: nothing fetched, nothing left unchecked).
 */
import type * as x509 from '@peculiar/x509';
import { base64url, errors as joseErrors, FlattenedSign, flattenedVerify } from 'jose';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { SigilError } from '../../core/errors.ts';
import { fromBase64, toBase64 } from '../../core/hex.ts';
import { certifiesKey, parseCertificateDer, platformClaims } from '../../device/certificates.ts';
import { parseProductManifest } from './product-manifest.ts';

export const SIGNATURE_ARTIFACT_TYPE = 'application/vnd.sigil.manifest.signature.v1+jws';
export const SIGNATURE_TYP = 'vnd.sigil.manifest.signature.v1+jws';
export const SIGNATURE_CTY = 'vnd.sigil.product-manifest.v1+json';
const MALFORMED = 'manifest.signature_malformed';
const MAX_SIGNATURE_BYTES = 64 * 1024;
const HEADER_FIELDS = new Set(['alg', 'typ', 'cty', 'x5c', 'kid']);
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface ManifestSignature {
  /** The protected header exactly as signed (base64url). */
  protectedHeader: string;
  /** The signature (base64url): ECDSA r‖s. */
  signatureValue: string;
  /** x5c[0]: the certificate of the key that signed. */
  certificate: x509.X509Certificate;
  kid?: string;
}

function malformed(message: string): never {
  throw new SigilError(MALFORMED, `manifest signature: ${message}`);
}

function decode(run: () => Uint8Array, message: string): Uint8Array {
  try {
    return run();
  } catch {
    return malformed(message);
  }
}

/** Sign manifest document bytes with a product key; returns the JWS as ASCII bytes. */
export async function signProductManifest(document: Uint8Array, productKey: KeyObject, productCertificate: x509.X509Certificate): Promise<Uint8Array> {
  const manifest = parseProductManifest(document);
  const certified = platformClaims(productCertificate).productId;
  if (certified !== manifest.productId) {
    throw new SigilError('manifest.signer_mismatch', `the product key for ${certified} cannot sign a manifest of product ${manifest.productId}`, { certified, manifest: manifest.productId });
  }
  if (!certifiesKey(productCertificate, productKey)) throw new SigilError('manifest.signer_mismatch', 'the product key is not the key its certificate certifies');
  if (productKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new SigilError('manifest.signer_invalid', 'product keys sign with ECDSA P-256 (ES256)');
  const header = { alg: 'ES256', typ: SIGNATURE_TYP, cty: SIGNATURE_CTY, x5c: [toBase64(new Uint8Array(productCertificate.rawData))] };
  const jws = await new FlattenedSign(document).setProtectedHeader(header).sign(productKey);
  return new TextEncoder().encode(`${jws.protected}..${jws.signature}`);
}

/** Parse untrusted signature bytes (shape only; verify.ts checks what it says). */
export function parseManifestSignature(bytes: Uint8Array): ManifestSignature {
  if (!(bytes instanceof Uint8Array)) malformed('is not bytes');
  if (bytes.length > MAX_SIGNATURE_BYTES) malformed(`is larger than ${MAX_SIGNATURE_BYTES} bytes`);
  let text = '';
  for (const byte of bytes) {
    if (byte < 0x21 || byte > 0x7e) malformed('is not a compact JWS (non-ASCII or whitespace)');
    text += String.fromCharCode(byte);
  }
  const parts = text.split('.');
  if (parts.length !== 3) malformed('is not a compact JWS (three dot-separated parts)');
  const [protectedHeader, payload, signatureValue] = parts;
  if (payload !== '') malformed('carries a payload; a manifest signature is detached (RFC 7515 appendix F)');
  if (!BASE64URL.test(protectedHeader) || !BASE64URL.test(signatureValue)) malformed('header or signature is not base64url');
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(decode(() => base64url.decode(protectedHeader), '')));
  } catch {
    malformed('the protected header is not base64url JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) malformed('the protected header is not a JSON object');
  const fields = header as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (!HEADER_FIELDS.has(key)) malformed(`the protected header has the unsupported field "${key.slice(0, 32)}"`);
  if (fields.alg !== 'ES256') malformed(`alg must be ES256, not ${String(fields.alg).slice(0, 32)}`);
  if (fields.typ !== SIGNATURE_TYP) malformed(`typ must be ${SIGNATURE_TYP}`);
  if (fields.cty !== SIGNATURE_CTY) malformed(`cty must be ${SIGNATURE_CTY}`);
  if (fields.kid !== undefined && (typeof fields.kid !== 'string' || fields.kid.length > 256)) malformed('kid must be a short string');
  const x5c = fields.x5c;
  if (!Array.isArray(x5c) || x5c.length < 1 || x5c.length > 4) malformed('x5c must list 1-4 certificates');
  if (!x5c.every((c): c is string => typeof c === 'string' && c.length <= 16384 && BASE64.test(c))) malformed('x5c entries must be base64 DER certificates');
  const certificate = parseCertificateDer(decode(() => fromBase64(x5c[0]), 'x5c[0] is not base64'), 'manifest signing certificate', MALFORMED);
  if (decode(() => base64url.decode(signatureValue), 'the signature is not base64url').length !== 64) malformed('an ES256 signature is 64 bytes');
  return { protectedHeader, signatureValue, certificate, ...(typeof fields.kid === 'string' ? { kid: fields.kid } : {}) };
}

/** True when the signature is ES256 over `document` by the certificate's key (no trust decisions here). */
export async function signatureVerifies(signature: ManifestSignature, document: Uint8Array): Promise<boolean> {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(signature.certificate.publicKey.rawData), format: 'der', type: 'spki' });
  } catch {
    return false;
  }
  if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') return false;
  try {
    await flattenedVerify({ protected: signature.protectedHeader, payload: base64url.encode(document), signature: signature.signatureValue }, key, { algorithms: ['ES256'] });
    return true;
  } catch (error) {
    if (error instanceof joseErrors.JOSEError) return false;
    throw error;
  }
}
