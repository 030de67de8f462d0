import { SigilError } from './errors.ts';
import { Lru } from './lru.ts';
import { NODE_HASH_NAMES, type HashName } from './hash.ts';
import { nodeCrypto, type NodePublicKey } from './node-builtins.ts';

/**
 * Signature verification for every evidence kind, in one place. On Node it runs synchronously
 * through node:crypto (node-builtins.ts): WebCrypto's verify costs a thread-pool hop per call, as
 * much as the ECDSA check itself. In browsers it uses WebCrypto. Either way a public key is
 * imported once and kept, by its bytes (a verifier sees the same VCEK, PCK or AK again and
 * again); the cache is bounded and holds only public keys.
 */
export type SignatureAlgorithm = 'ECDSA' | 'RSASSA-PKCS1-v1_5' | 'RSA-PSS';
export type NamedCurve = 'P-256' | 'P-384' | 'P-521';

/**
 * SubjectPublicKeyInfo DER, a JWK, an uncompressed EC point x || y (without the 04 prefix; the
 * curve comes with the check), or an RSA modulus and exponent (a TPM public area's form). The raw
 * forms spare callers building a JWK for every check.
 */
export type PublicKeyInput = { spki: Uint8Array } | { jwk: JsonWebKey } | { ecPoint: Uint8Array } | { rsaModulus: Uint8Array; rsaExponent: number };

export interface SignatureCheck {
  alg: SignatureAlgorithm;
  hash: HashName;
  key: PublicKeyInput;
  /** ECDSA: the curve the key must be on; a key on another curve is refused. */
  namedCurve?: NamedCurve;
  data: Uint8Array;
  /** ECDSA: IEEE P1363 r || s (WebCrypto's format); RSA: the big-endian signature. */
  signature: Uint8Array;
  /** RSA-PSS: the exact salt length. */
  saltLength?: number;
}

const NODE_CURVES: Record<NamedCurve, string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' };
const CURVE_BYTES: Record<NamedCurve, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const KEY_CACHE_SIZE = 512;


function binaryString(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  return out;
}

function keyId(key: PublicKeyInput): string {
  if ('spki' in key) return `s${binaryString(key.spki)}`;
  if ('ecPoint' in key) return `p${binaryString(key.ecPoint)}`;
  if ('rsaModulus' in key) return `r${key.rsaExponent}|${binaryString(key.rsaModulus)}`;
  const { kty, crv, x, y, n, e } = key.jwk;
  return `j${kty}|${crv}|${x}|${y}|${n}|${e}`;
}

function keyInvalid(message: string, cause?: unknown): SigilError {
  return new SigilError('core.public_key_invalid', message, cause === undefined ? {} : { cause: String(cause) }, cause === undefined ? undefined : { cause });
}

function base64url(bytes: Uint8Array): string {
  return btoa(binaryString(bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function rsaJwk(modulus: Uint8Array, exponent: number): JsonWebKey {
  const e = new Uint8Array([exponent >>> 24, (exponent >>> 16) & 0xff, (exponent >>> 8) & 0xff, exponent & 0xff]);
  let start = 0;
  while (start < 3 && e[start] === 0) start++;
  return { kty: 'RSA', n: base64url(modulus), e: base64url(e.subarray(start)) };
}

/** The JWK for the forms that have no import format of their own. */
function inputJwk(input: PublicKeyInput, curve: NamedCurve | undefined): JsonWebKey {
  if ('jwk' in input) return input.jwk;
  if ('rsaModulus' in input) return rsaJwk(input.rsaModulus, input.rsaExponent);
  if ('ecPoint' in input) return pointJwk(input.ecPoint, curve);
  throw keyInvalid('no JWK form for this key');
}

function pointJwk(point: Uint8Array, curve: NamedCurve | undefined): JsonWebKey {
  if (!curve) throw keyInvalid('an EC point needs its curve');
  const size = CURVE_BYTES[curve];
  if (point.length !== 2 * size) throw keyInvalid(`a ${curve} point is ${2 * size} bytes, got ${point.length}`);
  return { kty: 'EC', crv: curve, x: base64url(point.subarray(0, size)), y: base64url(point.subarray(size)) };
}

// ---- Node: KeyObjects, synchronous verify ----

/** A KeyObject with its type and curve read once (node's getters cross into C++ on every read). */
interface NodeKeyEntry {
  key: NodePublicKey;
  type: string | undefined;
  curve: string | undefined;
}

const nodeKeys = new Lru<NodeKeyEntry>(KEY_CACHE_SIZE);

function nodeKey(check: SignatureCheck): NodePublicKey {
  const node = nodeCrypto!;
  const id = keyId(check.key);
  let entry = nodeKeys.get(id);
  if (!entry) {
    const input = check.key;
    let key: NodePublicKey;
    try {
      if ('spki' in input) key = node.createPublicKey({ key: input.spki, format: 'der', type: 'spki' });
      else key = node.createPublicKey({ key: inputJwk(input, check.namedCurve), format: 'jwk' });
    } catch (error) {
      if (error instanceof SigilError) throw error;
      throw keyInvalid('the public key cannot be imported', error);
    }
    entry = { key, type: key.asymmetricKeyType, curve: key.asymmetricKeyDetails?.namedCurve };
    nodeKeys.set(id, entry);
  }
  // Checked on every use: the cache is by key bytes, the algorithm comes with each call.
  if (check.alg === 'ECDSA') {
    if (entry.type !== 'ec' || !check.namedCurve || entry.curve !== NODE_CURVES[check.namedCurve]) {
      throw keyInvalid(check.namedCurve ? `the key is not an ECDSA ${check.namedCurve} public key` : 'an ECDSA check needs its curve');
    }
  } else if (entry.type !== 'rsa' && !(check.alg === 'RSA-PSS' && entry.type === 'rsa-pss')) {
    throw keyInvalid(`the key is not an RSA public key (${entry.type})`);
  }
  return entry.key;
}

/** Writes signature[from, from + size) as a DER INTEGER: no leading zeros, 00 before a set high bit. */
function writeDerInteger(out: Uint8Array, offset: number, signature: Uint8Array, from: number, size: number): number {
  let start = from;
  const end = from + size;
  while (start < end - 1 && signature[start] === 0) start++;
  const pad = signature[start] & 0x80 ? 1 : 0;
  out[offset] = 0x02;
  out[offset + 1] = end - start + pad;
  let o = offset + 2;
  if (pad) out[o++] = 0;
  for (let i = start; i < end; i++) out[o++] = signature[i];
  return o;
}

/** IEEE P1363 r || s → the DER ECDSA-Sig-Value node:crypto reads fastest (see verifyNode). */
function p1363ToDer(signature: Uint8Array, curve: NamedCurve): Uint8Array | undefined {
  const size = CURVE_BYTES[curve];
  if (signature.length !== 2 * size) return undefined;
  const out = new Uint8Array(2 * size + 9);
  const long = 2 * size + 6 >= 0x80; // P-521 signatures exceed 127 bytes: long-form length
  const start = long ? 3 : 2;
  let end = writeDerInteger(out, start, signature, 0, size);
  end = writeDerInteger(out, end, signature, size, size);
  out[0] = 0x30;
  if (long) {
    out[1] = 0x81;
    out[2] = end - start;
  } else out[1] = end - start;
  return out.subarray(0, end);
}

function verifyNode(check: SignatureCheck): boolean {
  const node = nodeCrypto!;
  const key = nodeKey(check);
  const hash = NODE_HASH_NAMES[check.hash];
  try {
    // The key is passed bare where the defaults fit (DER ECDSA signatures, PKCS #1 v1.5 padding):
    // node's options-object form ({ key, dsaEncoding }) costs 15-40 µs more per call.
    if (check.alg === 'ECDSA') {
      const der = p1363ToDer(check.signature, check.namedCurve!);
      return der !== undefined && node.verify(hash, check.data, key, der);
    }
    if (check.alg === 'RSASSA-PKCS1-v1_5') return node.verify(hash, check.data, key, check.signature);
    return node.verify(hash, check.data, { key, padding: node.constants.RSA_PKCS1_PSS_PADDING, saltLength: check.saltLength ?? 0 }, check.signature);
  } catch {
    return false; // malformed signature encodings are "does not verify", as in WebCrypto
  }
}

// ---- Browsers: WebCrypto keys per algorithm ----

const cryptoKeys = new Lru<Promise<CryptoKey>>(KEY_CACHE_SIZE);

function importParams(check: SignatureCheck): EcKeyImportParams | RsaHashedImportParams {
  if (check.alg === 'ECDSA') {
    if (!check.namedCurve) throw keyInvalid('an ECDSA check needs its curve');
    return { name: 'ECDSA', namedCurve: check.namedCurve };
  }
  return { name: check.alg, hash: check.hash };
}

function cryptoKey(check: SignatureCheck): Promise<CryptoKey> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new SigilError('core.no_webcrypto', 'WebCrypto is not available in this runtime');
  const params = importParams(check);
  const id = `${check.alg}|${check.alg === 'ECDSA' ? check.namedCurve : check.hash}|${keyId(check.key)}`;
  let key = cryptoKeys.get(id);
  if (!key) {
    const input = check.key;
    key = (async () => {
      try {
        if ('spki' in input) return await subtle.importKey('spki', input.spki as Uint8Array<ArrayBuffer>, params, false, ['verify']);
        if (!('ecPoint' in input)) return await subtle.importKey('jwk', inputJwk(input, check.namedCurve), params, false, ['verify']);
        const point = new Uint8Array(input.ecPoint.length + 1);
        point[0] = 4;
        point.set(input.ecPoint, 1);
        return await subtle.importKey('raw', point, params, false, ['verify']);
      } catch (error) {
        throw keyInvalid(`the key is not a ${check.alg}${check.alg === 'ECDSA' ? ` ${check.namedCurve}` : ''} public key`, error);
      }
    })();
    cryptoKeys.set(id, key);
    key.catch(() => cryptoKeys.delete(id));
  }
  return key;
}

/** verifySignature without node:crypto: what browsers run (exported for tests). */
export async function verifyWebCrypto(check: SignatureCheck): Promise<boolean> {
  const key = await cryptoKey(check);
  const algorithm = check.alg === 'ECDSA' ? { name: 'ECDSA', hash: check.hash } : check.alg === 'RSA-PSS' ? { name: 'RSA-PSS', saltLength: check.saltLength ?? 0 } : { name: check.alg };
  try {
    return await globalThis.crypto.subtle.verify(algorithm, key, check.signature as Uint8Array<ArrayBuffer>, check.data as Uint8Array<ArrayBuffer>);
  } catch {
    return false; // a signature the engine cannot even parse does not verify (as with node:crypto)
  }
}

/**
 * True when `signature` verifies; false when it does not (including malformed signatures).
 * Throws core.public_key_invalid when the key cannot be used for `alg` (wrong type or curve,
 * not a point on the curve, undecodable), so callers can name the key as the problem.
 */
export async function verifySignature(check: SignatureCheck): Promise<boolean> {
  return nodeCrypto ? verifyNode(check) : verifyWebCrypto(check);
}

/** Import (and cache) the key now, to report a bad key before any signature is checked. */
export async function assertPublicKey(check: Pick<SignatureCheck, 'alg' | 'hash' | 'key' | 'namedCurve'>): Promise<void> {
  const full = { ...check, data: new Uint8Array(0), signature: new Uint8Array(0) };
  if (nodeCrypto) nodeKey(full);
  else await cryptoKey(full);
}
