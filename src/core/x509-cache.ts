import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SigilError } from './errors.ts';
import { Lru } from './lru.ts';
import { digest, digestSync, hasDigestSync } from './hash.ts';
import { toBase64 } from './hex.ts';
import { nodeBuffer, nodeCrypto } from './node-builtins.ts';

/**
 * The one memo of X.509 work shared by every verifier (SNP, TDX, TPM AK/EK chains, event-log
 * db/KEK certificates, device certificates). Parsing a certificate with @peculiar/x509 costs
 * about 0.5 ms and a chain signature a WebCrypto call, and a verifier sees the same VCEKs, PCK
 * chains, AK CAs and Secure Boot certificates over and over. Both are pure functions of bytes:
 *
 *   - parsed certificates and CRLs, by their exact DER bytes (or exact PEM text);
 *   - "issuer's key signed subject" results, by the (subject DER, issuer DER) pair.
 *
 * Never cached: anything that depends on the time (validity dates, CRL freshness, revocation at
 * `at`): callers decide those on every verification. Parse failures are not cached either.
 * Bounded: the least recently used entry goes first. Parsed objects are shared, so callers must
 * treat them as frozen (every @peculiar/x509 getter memoizes, none mutates).
 */
const CERTIFICATE_CACHE_SIZE = 256;
const CRL_CACHE_SIZE = 32;
const CONTENT_IDS = 1024;
const SIGNATURE_CACHE_SIZE = 1024;

const latin1 = new TextDecoder('latin1');

/**
 * An exact Map key for bytes. On Node their SHA-256 (3 µs for a certificate, and a 44-character
 * key that is cheap to look up); elsewhere the bytes themselves as a string (windows-1252, which
 * maps each of the 256 byte values to a distinct character).
 */
export function contentKey(bytes: Uint8Array): string {
  const hash = nodeCrypto?.hash;
  return hash ? `#${hash('sha256', bytes, 'base64')}` : latin1.decode(bytes);
}

/**
 * Callers often pass the very same array again (a trust anchor, a collateral CRL): on Node the key
 * computed for an array is remembered with a private copy of its bytes, and reused only while a
 * native comparison shows the array still holds exactly those bytes. Elsewhere (no native
 * comparison) the key is computed every time.
 */
const keysByArray = new WeakMap<Uint8Array, { copy: Uint8Array; key: string }>();

function keyOf(bytes: Uint8Array): string {
  const buffer = nodeBuffer;
  if (!buffer || bytes.length <= 64) return contentKey(bytes);
  const known = keysByArray.get(bytes);
  if (known && buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(known.copy)) return known.key;
  const key = contentKey(bytes);
  keysByArray.set(bytes, { copy: bytes.slice(), key });
  return key;
}

const certificates = new Lru<x509.X509Certificate>(CERTIFICATE_CACHE_SIZE);
const crls = new Lru<x509.X509Crl>(CRL_CACHE_SIZE);

/**
 * Each distinct content gets a number that is never reused, and each parsed object remembers
 * its content's number: signature results are then keyed by two small numbers instead of two
 * certificates' worth of bytes. A content evicted and seen again gets a new number (its old
 * results simply age out), so a number always stands for exactly one content.
 */
const ids = new Lru<number>(CONTENT_IDS);
const objectIds = new WeakMap<object, number>();
let nextId = 1;

/** A number standing for this object's exact DER content (equal content, equal number, while cached). */
export function contentId(object: x509.X509Certificate | x509.X509Crl): number {
  return idOf(object);
}

function idOf(object: x509.X509Certificate | x509.X509Crl): number {
  let id = objectIds.get(object);
  if (id === undefined) {
    const key = contentKey(new Uint8Array(object.rawData));
    id = ids.get(key);
    if (id === undefined) ids.set(key, (id = nextId++));
    objectIds.set(object, id);
  }
  return id;
}

/** `new x509.X509Certificate(der)` once per distinct DER; throws what the parser throws. */
export function certificateFromDer(der: Uint8Array): x509.X509Certificate {
  return certificateByKey(`d${keyOf(der)}`, der);
}

/**
 * The SHA-256 of `der` and, when it is a certificate, the parsed certificate, hashing the bytes
 * once: on Node that digest is the cache key too (what contentKey computes). For callers that
 * report certificates by SHA-256 (Secure Boot databases, authorities). A parse failure leaves
 * `certificate` undefined.
 */
export async function certificateAndSha256(der: Uint8Array): Promise<{ sha256: Uint8Array; certificate?: x509.X509Certificate }> {
  const sha256 = hasDigestSync ? digestSync('SHA-256', der) : await digest('SHA-256', der);
  const key = nodeCrypto?.hash ? `d#${toBase64(sha256)}` : `d${contentKey(der)}`;
  try {
    return { sha256, certificate: certificateByKey(key, der) };
  } catch {
    return { sha256 };
  }
}

function certificateByKey(key: string, der: Uint8Array): x509.X509Certificate {
  let cert = certificates.get(key);
  if (!cert) {
    // A copy: the parser keeps the buffer it is given, and the caller's array may change later.
    cert = new x509.X509Certificate(der.slice() as Uint8Array<ArrayBuffer>);
    certificates.set(key, cert);
  }
  return cert;
}

/** `new x509.X509Certificate(text)` (its first PEM block) once per distinct text. */
export function certificateFromText(text: string): x509.X509Certificate {
  const key = `t${text}`;
  let cert = certificates.get(key);
  if (!cert) {
    cert = new x509.X509Certificate(text);
    certificates.set(key, cert);
  }
  return cert;
}

/** `new x509.X509Crl(der or PEM text)` once per distinct input; throws what the parser throws. */
export function crlFrom(input: Uint8Array | string): x509.X509Crl {
  const key = typeof input === 'string' ? `t${input}` : `d${keyOf(input)}`;
  let crl = crls.get(key);
  if (!crl) {
    crl = new x509.X509Crl(typeof input === 'string' ? input : (input.slice() as Uint8Array<ArrayBuffer>));
    crls.set(key, crl);
  }
  return crl;
}

const signatures = new Lru<Promise<boolean>>(SIGNATURE_CACHE_SIZE);

function memoized(key: string, check: () => Promise<boolean>): Promise<boolean> {
  let result = signatures.get(key);
  if (!result) {
    // A hostile object can make the key or signature getters throw: that is "not signed by".
    result = (async () => check())().catch(() => false);
    signatures.set(key, result);
  }
  return result;
}

/** Whether `issuer`'s key made the signature on `subject`: the signature only, never the dates. */
export function certificateSignedBy(subject: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  return memoized(`c${idOf(subject)}:${idOf(issuer)}`, () => subject.verify({ publicKey: issuer.publicKey, signatureOnly: true }));
}

/** Whether `issuer`'s key signed the CRL (signature only: thisUpdate/nextUpdate are the caller's). */
export function crlSignedBy(crl: x509.X509Crl, issuer: x509.X509Certificate): Promise<boolean> {
  return memoized(`r${idOf(crl)}:${idOf(issuer)}`, () => crl.verify({ publicKey: issuer.publicKey }));
}

const crlIssuers = new WeakMap<x509.X509Crl, string>();

/** `crl.issuer`, which @peculiar/x509 re-renders from the ASN.1 name on every read. */
export function crlIssuer(crl: x509.X509Crl): string {
  let issuer = crlIssuers.get(crl);
  if (issuer === undefined) crlIssuers.set(crl, (issuer = crl.issuer));
  return issuer;
}

const revocations = new Lru<x509.X509CrlEntry | null>(SIGNATURE_CACHE_SIZE);

/**
 * `crl.findRevoked(cert)` (the CRL's entry for the certificate's serial number, or null): a linear
 * scan of the CRL, memoized by the two contents. Whether the entry matters at `at` (its
 * revocation date) is the caller's decision, every time.
 */
export function revokedEntry(crl: x509.X509Crl, cert: x509.X509Certificate): x509.X509CrlEntry | null {
  const key = `${idOf(crl)}:${idOf(cert)}`;
  let entry = revocations.get(key);
  if (entry === undefined) {
    entry = crl.findRevoked(cert);
    revocations.set(key, entry);
  }
  return entry;
}

const publicJwks = new WeakMap<x509.X509Certificate, Promise<JsonWebKey>>();

/** The certified public key as a JWK (for comparing with a TPM public area), once per parsed certificate. */
export function certificatePublicJwk(cert: x509.X509Certificate): Promise<JsonWebKey> {
  let jwk = publicJwks.get(cert);
  if (!jwk) {
    jwk = (async () => globalThis.crypto.subtle.exportKey('jwk', await cert.publicKey.export()))();
    publicJwks.set(cert, jwk);
    jwk.catch(() => publicJwks.delete(cert));
  }
  return jwk;
}

/** Same DER bytes (what @peculiar/x509's equal() and thumbprint comparisons decide). */
export function sameCertificate(a: x509.X509Certificate, b: x509.X509Certificate): boolean {
  return a === b || idOf(a) === idOf(b);
}

const validities = new WeakMap<x509.X509Certificate, { notBefore: number; notAfter: number }>();

/** notBefore and notAfter as milliseconds, read once per parsed certificate (the dates, not a decision). */
export function validity(cert: x509.X509Certificate): { notBefore: number; notAfter: number } {
  let period = validities.get(cert);
  if (!period) validities.set(cert, (period = { notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime() }));
  return period;
}

/** @peculiar/x509's own validity rule (verify with signatureOnly false): notBefore < at < notAfter. */
export function validAt(cert: x509.X509Certificate, at: Date): boolean {
  const time = at.getTime();
  const { notBefore, notAfter } = validity(cert);
  return notBefore < time && time < notAfter;
}

/**
 * What `new x509.X509ChainBuilder({ certificates: pool }).build(leaf)` returns, with every
 * signature check memoized: from the leaf, repeatedly the first pool certificate whose subject is
 * the current issuer, whose subjectKeyIdentifier (if any) matches the authorityKeyIdentifier
 * keyId (if any), and whose key verifies the signature; the chain stops at a self-signed
 * certificate or when no issuer is found. Only signatures are checked here; dates, CA flags and
 * the trust anchor are the caller's.
 */
export async function buildCertificateChain(leaf: x509.X509Certificate, pool: x509.X509Certificate[]): Promise<x509.X509Certificate[]> {
  const chain = [leaf];
  for (let current = leaf; ; ) {
    const issuer = await findIssuer(current, pool);
    if (!issuer) return chain;
    if (chain.some((c) => sameCertificate(c, issuer))) throw new SigilError('x509.chain_circular', 'the certificate chain loops back on itself', { subject: issuer.subject });
    chain.push(issuer);
    current = issuer;
  }
}

async function findIssuer(cert: x509.X509Certificate, pool: x509.X509Certificate[]): Promise<x509.X509Certificate | undefined> {
  if (cert.subject === cert.issuer && (await certificateSignedBy(cert, cert))) return undefined;
  const keyId = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  for (const candidate of pool) {
    if (candidate.subject !== cert.issuer) continue;
    if (keyId) {
      const ski = candidate.getExtension(x509.SubjectKeyIdentifierExtension);
      if (ski && ski.keyId !== keyId) continue;
    }
    if (await certificateSignedBy(cert, candidate)) return candidate;
  }
  return undefined;
}
