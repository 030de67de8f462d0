/**
 * Signing and loading reference-value documents: JWS compact serialization (RFC 7515) through
 * `jose`, with protected header {alg, typ: "sigil-rv+json", kid?}. Loading checks, in order: the
 * JWS signature against the trusted keys (never against a key carried in the token), the `typ`,
 * the document's shape, then its validity window. Every refusal is a SigilError:
 *   rv.signature_invalid (bad signature, changed payload, untrusted key), rv.malformed,
 *   rv.expired, rv.not_yet_valid, rv.key_invalid, rv.algorithm_unsupported.
 */
import { CompactSign, compactVerify, decodeProtectedHeader, exportJWK, importJWK, importPKCS8, importSPKI, type CryptoKey, type JWK } from 'jose';
import { SigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { checkReferenceValueDocument, type ReferenceValueDocument } from './document.ts';

export const RV_JWS_TYPE = 'sigil-rv+json';
export const RV_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'RS256'] as const;
export type RvAlgorithm = (typeof RV_ALGORITHMS)[number];

export interface RvKey {
  key: CryptoKey;
  alg: RvAlgorithm;
  kid?: string;
}

/** DER object identifiers that name a key's algorithm (X.509 / PKCS#8 AlgorithmIdentifier). */
const OIDS: [string, RvAlgorithm][] = [
  ['06082a8648ce3d030107', 'ES256'], // secp256r1
  ['06052b81040022', 'ES384'], // secp384r1
  ['06052b81040023', 'ES512'], // secp521r1
  ['06032b6570', 'EdDSA'], // Ed25519
  ['06092a864886f70d010101', 'PS256'], // rsaEncryption: sign RSA-PSS
];

function keyInvalid(message: string, cause?: unknown): never {
  throw new SigilError('rv.key_invalid', message, {}, cause === undefined ? undefined : { cause });
}

function pemDer(pem: string, label: string): Uint8Array | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem);
  return m ? fromBase64(m[1]) : undefined;
}

function algorithmOfDer(der: Uint8Array): RvAlgorithm {
  let hex = '';
  for (const b of der.subarray(0, 64)) hex += b.toString(16).padStart(2, '0');
  for (const [oid, alg] of OIDS) if (hex.includes(oid)) return alg;
  return keyInvalid('the key is not EC P-256/384/521, Ed25519 or RSA');
}

function algorithmOfJwk(jwk: JWK): RvAlgorithm {
  if (jwk.alg && (RV_ALGORITHMS as readonly string[]).includes(jwk.alg)) return jwk.alg as RvAlgorithm;
  if (jwk.kty === 'EC') return ({ 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' } as Record<string, RvAlgorithm>)[jwk.crv ?? ''] ?? keyInvalid(`unsupported curve ${jwk.crv}`);
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'RSA') return 'PS256';
  return keyInvalid(`unsupported JWK key type ${jwk.kty}`);
}

async function importJwkKey(jwk: JWK, wantPrivate: boolean): Promise<RvKey> {
  if (wantPrivate !== (jwk.d !== undefined)) keyInvalid(wantPrivate ? 'a signing key must be private' : 'a trusted key must be public (it has a private part)');
  const alg = algorithmOfJwk(jwk);
  try {
    return { key: (await importJWK(jwk, alg)) as CryptoKey, alg, kid: jwk.kid };
  } catch (error) {
    return keyInvalid('the JWK could not be imported', error);
  }
}

/** A private key for signing: PKCS#8 PEM or a private JWK (JSON text). */
export async function importRvSigningKey(text: string, kid?: string): Promise<RvKey> {
  const der = pemDer(text, 'PRIVATE KEY');
  if (der) {
    const alg = algorithmOfDer(der);
    try {
      return { key: await importPKCS8(text, alg, { extractable: true }), alg, kid };
    } catch (error) {
      return keyInvalid('the PKCS#8 key could not be imported', error);
    }
  }
  if (/-----BEGIN (EC|RSA) PRIVATE KEY-----/.test(text)) keyInvalid('convert the key to PKCS#8 ("openssl pkcs8 -topk8 -nocrypt")');
  let jwk: JWK;
  try {
    jwk = JSON.parse(text);
  } catch (error) {
    return keyInvalid('the key is neither a PKCS#8 PEM nor a JWK', error);
  }
  const key = await importJwkKey(jwk, true);
  return { ...key, kid: kid ?? key.kid };
}

/** Trusted public keys: SPKI PEM (one or more), a JWK, or a JWK set (JSON text). */
export async function importRvTrustedKeys(text: string): Promise<RvKey[]> {
  const pems = [...text.matchAll(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g)].map((m) => m[0]);
  if (pems.length) {
    return Promise.all(
      pems.map(async (pem) => {
        const alg = algorithmOfDer(pemDer(pem, 'PUBLIC KEY')!);
        try {
          return { key: await importSPKI(pem, alg, { extractable: true }), alg };
        } catch (error) {
          return keyInvalid('the public key could not be imported', error);
        }
      }),
    );
  }
  let parsed: { keys?: JWK[] } & JWK;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return keyInvalid('the trusted key is neither an SPKI PEM nor a JWK / JWK set', error);
  }
  const jwks = Array.isArray(parsed.keys) ? parsed.keys : [parsed];
  return Promise.all(jwks.map((jwk) => importJwkKey(jwk, false)));
}

/** The public JWK of a signing key, e.g. to publish as the broker's trusted key. */
export async function publicJwk(key: RvKey): Promise<JWK> {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = await exportJWK(key.key);
  return { ...pub, alg: key.alg, ...(key.kid ? { kid: key.kid } : {}) };
}

export async function signReferenceValues(doc: ReferenceValueDocument, key: RvKey): Promise<string> {
  const checked = checkReferenceValueDocument(doc);
  const payload = new TextEncoder().encode(JSON.stringify(checked));
  return new CompactSign(payload).setProtectedHeader({ alg: key.alg, typ: RV_JWS_TYPE, ...(key.kid ? { kid: key.kid } : {}) }).sign(key.key);
}

export interface LoadedReferenceValues {
  document: ReferenceValueDocument;
  /** The trusted key that verified it. */
  signer: RvKey;
}

export async function loadReferenceValues(jws: string, trusted: RvKey[], options: { now?: Date } = {}): Promise<LoadedReferenceValues> {
  let header;
  try {
    header = decodeProtectedHeader(jws.trim());
  } catch (error) {
    throw new SigilError('rv.malformed', 'reference values: not a JWS compact serialization', {}, { cause: error });
  }
  if (!header.alg || !(RV_ALGORITHMS as readonly string[]).includes(header.alg)) {
    throw new SigilError('rv.algorithm_unsupported', `reference values signed with ${JSON.stringify(header.alg)}, not one of ${RV_ALGORITHMS.join(', ')}`, { alg: header.alg });
  }
  // Only keys that could have made this signature; a kid narrows them, it never adds a key.
  if (header.typ !== RV_JWS_TYPE) throw new SigilError('rv.malformed', `reference values: JWS type ${JSON.stringify(header.typ)} is not ${RV_JWS_TYPE}`, { typ: header.typ });
  const sameAlgorithm = (alg: RvAlgorithm) => alg === header.alg || (alg === 'EdDSA' && header.alg === 'Ed25519');
  const candidates = trusted.filter((k) => sameAlgorithm(k.alg) && (!header.kid || !k.kid || k.kid === header.kid));
  for (const signer of candidates) {
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(jws.trim(), signer.key, { algorithms: [header.alg] }));
    } catch {
      continue;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
    } catch (error) {
      throw new SigilError('rv.malformed', 'reference values: the signed payload is not JSON', {}, { cause: error });
    }
    const document = checkReferenceValueDocument(raw);
    const now = (options.now ?? new Date()).getTime();
    const { notBefore, notAfter } = document.validity ?? {};
    if (notAfter && now > Date.parse(notAfter)) throw new SigilError('rv.expired', `the reference values expired at ${notAfter}`, { notAfter, id: document.id });
    if (notBefore && now < Date.parse(notBefore)) throw new SigilError('rv.not_yet_valid', `the reference values are not valid before ${notBefore}`, { notBefore, id: document.id });
    return { document, signer };
  }
  throw new SigilError('rv.signature_invalid', 'the reference values are not signed by a trusted key, or were changed after signing', {
    alg: header.alg,
    kid: header.kid,
    trustedKeys: trusted.length,
  });
}
