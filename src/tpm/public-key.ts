import { createPublicKey, KeyObject, verify } from 'node:crypto';
import { SigilError } from '../core/errors.ts';
import { fromBase64 } from '../core/hex.ts';
import { hashAlg } from './algorithms.ts';
import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT } from './constants.ts';
import { curveSize, publicAreaToJwk } from './jwk.ts';
import { SCHEME_NULL, SYM_NULL, type EccPublic, type RsaPublic, type Scheme, type SymmetricDefinition, type TpmPublic } from './structures/public.ts';
import type { Sensitive } from './structures/sensitive.ts';
import type { TpmSignature } from './structures/signature.ts';

/**
 * TPM public areas and signatures ↔ node:crypto (Node-only; the isomorphic JWK conversion is
 * jwk.ts and the WebCrypto verifier evidence/tpm/signature.ts). JWK is the form node imports RSA
 * and ECC public keys from without hand-written DER.
 */

/** JWK curve names → TPM curve IDs and coordinate sizes (the reverse of jwk.ts). */
const CURVES: { curveId: number; jwk: string; size: number }[] = [
  { curveId: TPM_ECC_CURVE.NIST_P256, jwk: 'P-256', size: 32 },
  { curveId: TPM_ECC_CURVE.NIST_P384, jwk: 'P-384', size: 48 },
  { curveId: TPM_ECC_CURVE.NIST_P521, jwk: 'P-521', size: 66 },
];

function curveByJwkName(crv: string) {
  const curve = CURVES.find((c) => c.jwk === crv);
  if (!curve) throw new SigilError('tpm.curve_unsupported', `curve ${crv} is not supported`, { curve: crv });
  return curve;
}

/** Left-pad a big-endian integer to `size` bytes; longer (after leading zeros) is an error. */
function leftPad(bytes: Uint8Array, size: number, what: string): Uint8Array {
  let start = 0;
  while (start < bytes.length - size && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  if (trimmed.length > size) throw new SigilError('tpm.public_key_invalid', `${what} is ${trimmed.length} bytes, at most ${size} allowed`, { what });
  const out = new Uint8Array(size);
  out.set(trimmed, size - trimmed.length);
  return out;
}

function stripLeadingZeros(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return bytes.slice(start);
}

/** Check what jwk.ts does not: RSA 1024-4096 with a modulus of keyBits, coordinates within the curve. */
function checkPublicArea(publicArea: TpmPublic): void {
  if (publicArea.type === TPM_ALG.RSA) {
    const { keyBits, unique } = publicArea;
    if (keyBits < 1024 || keyBits > 4096 || keyBits % 8 !== 0) {
      throw new SigilError('tpm.public_key_invalid', `RSA key size ${keyBits} is outside 1024-4096`, { keyBits });
    }
    if (unique.length !== keyBits / 8) {
      throw new SigilError('tpm.public_key_invalid', `RSA modulus is ${unique.length} bytes for a ${keyBits}-bit key`, { keyBits });
    }
  } else if (publicArea.type === TPM_ALG.ECC) {
    const size = curveSize(publicArea.curveId);
    leftPad(publicArea.unique.x, size, 'ECC x');
    leftPad(publicArea.unique.y, size, 'ECC y');
  }
}

/** An RSA or ECC TPM public area as a node public KeyObject. */
export function tpmPublicToKeyObject(publicArea: TpmPublic): KeyObject {
  checkPublicArea(publicArea);
  const jwk = publicAreaToJwk(publicArea);
  try {
    return createPublicKey({ key: jwk, format: 'jwk' });
  } catch (error) {
    // node refuses points off the curve and malformed moduli.
    throw new SigilError('tpm.public_key_invalid', 'the TPM public key is not a valid key', { cause: String(error) }, { cause: error });
  }
}

/** SubjectPublicKeyInfo PEM of an RSA or ECC TPM public area. */
export function tpmPublicToPem(publicArea: TpmPublic): string {
  return tpmPublicToKeyObject(publicArea).export({ type: 'spki', format: 'pem' }).toString();
}

export interface TpmPublicOptions {
  nameAlg?: number;
  /** Default: userWithAuth | sign | decrypt (an unrestricted key usable for either). */
  objectAttributes?: number;
  authPolicy?: Uint8Array;
  /** Default NULL: a key with both sign and decrypt must leave the scheme to each command. */
  scheme?: Scheme;
  symmetric?: SymmetricDefinition;
}

/** A node key (public, or private: its public half is used) as a TPM public area for LoadExternal or Import. */
export function keyObjectToTpmPublic(key: KeyObject, options: TpmPublicOptions = {}): RsaPublic | EccPublic {
  const publicKey = key.type === 'public' ? key : createPublicKey(key);
  const jwk = publicKey.export({ format: 'jwk' });
  const common = {
    nameAlg: options.nameAlg ?? TPM_ALG.SHA256,
    objectAttributes: options.objectAttributes ?? TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign | TPMA_OBJECT.decrypt,
    authPolicy: options.authPolicy?.slice() ?? new Uint8Array(0),
    symmetric: options.symmetric ?? SYM_NULL,
    scheme: options.scheme ?? SCHEME_NULL,
  };
  if (jwk.kty === 'RSA' && jwk.n && jwk.e) {
    const modulus = stripLeadingZeros(fromBase64(jwk.n));
    const keyBits = modulus.length * 8;
    if (keyBits < 1024 || keyBits > 4096) throw new SigilError('tpm.public_key_invalid', `RSA key size ${keyBits} is outside 1024-4096`, { keyBits });
    let exponent = 0;
    for (const b of fromBase64(jwk.e)) exponent = exponent * 256 + b;
    if (exponent > 0xffffffff) throw new SigilError('tpm.public_key_invalid', 'RSA exponent does not fit in 32 bits');
    // The TPM writes the default exponent 65537 as 0; the same key must get the same name.
    return { type: TPM_ALG.RSA, ...common, keyBits, exponent: exponent === 65537 ? 0 : exponent, unique: modulus };
  }
  if (jwk.kty === 'EC' && jwk.crv && jwk.x && jwk.y) {
    const curve = curveByJwkName(jwk.crv);
    return {
      type: TPM_ALG.ECC,
      ...common,
      curveId: curve.curveId,
      kdf: SCHEME_NULL,
      unique: { x: leftPad(fromBase64(jwk.x), curve.size, 'ECC x'), y: leftPad(fromBase64(jwk.y), curve.size, 'ECC y') },
    };
  }
  throw new SigilError('tpm.public_key_invalid', `key type ${publicKey.asymmetricKeyType} cannot be a TPM key`, { type: publicKey.asymmetricKeyType });
}

/**
 * The TPMT_SENSITIVE of a node private key, for LoadExternal or an unwrapped Import: RSA carries
 * one prime (the TPM recomputes the rest), ECC the private scalar.
 */
export function keyObjectToTpmSensitive(privateKey: KeyObject, authValue: Uint8Array = new Uint8Array(0)): Sensitive {
  if (privateKey.type !== 'private') throw new SigilError('tpm.public_key_invalid', 'a private key is needed for a sensitive area');
  const jwk = privateKey.export({ format: 'jwk' });
  const base = { authValue, seedValue: new Uint8Array(0) };
  if (jwk.kty === 'RSA' && jwk.p) return { sensitiveType: TPM_ALG.RSA, ...base, sensitive: stripLeadingZeros(fromBase64(jwk.p)) };
  if (jwk.kty === 'EC' && jwk.d && jwk.crv) {
    const curve = curveByJwkName(jwk.crv);
    return { sensitiveType: TPM_ALG.ECC, ...base, sensitive: leftPad(fromBase64(jwk.d), curve.size, 'ECC private key') };
  }
  throw new SigilError('tpm.public_key_invalid', `key type ${privateKey.asymmetricKeyType} cannot be a TPM key`);
}

/** DER length octets. */
function derLength(length: number): number[] {
  if (length < 0x80) return [length];
  if (length < 0x100) return [0x81, length];
  return [0x82, length >> 8, length & 0xff];
}

/** An unsigned big-endian integer as a DER INTEGER (minimal, with a 0x00 when the top bit is set). */
function derInteger(value: Uint8Array): number[] {
  const v = stripLeadingZeros(value);
  const body = v[0] & 0x80 ? [0, ...v] : [...v];
  return [0x02, ...derLength(body.length), ...body];
}

/** ECDSA (r, s) as the DER SEQUENCE node and X.509 use. */
export function ecdsaSignatureToDer(r: Uint8Array, s: Uint8Array): Uint8Array {
  const body = [...derInteger(r), ...derInteger(s)];
  return new Uint8Array([0x30, ...derLength(body.length), ...body]);
}

/** ECDSA (r, s) as IEEE P1363 r ‖ s, each padded to the curve size (WebCrypto's form). */
export function ecdsaSignatureToP1363(r: Uint8Array, s: Uint8Array, coordinateSize: number): Uint8Array {
  const out = new Uint8Array(coordinateSize * 2);
  out.set(leftPad(r, coordinateSize, 'ECDSA r'), 0);
  out.set(leftPad(s, coordinateSize, 'ECDSA s'), coordinateSize);
  return out;
}

export interface NodeSignature {
  /** Node's digest name for crypto.verify (`sha256`). */
  hash: string;
  /** DER for ECDSA, the raw signature for RSA. */
  signature: Uint8Array;
  /** Padding options for crypto.verify's key argument. */
  options: { padding?: number; saltLength?: number; dsaEncoding?: 'der' };
}

/** A TPMT_SIGNATURE in the form node's crypto.verify takes (RSASSA, RSAPSS, ECDSA). */
export function tpmSignatureToNode(signature: TpmSignature): NodeSignature {
  // Constants from node:crypto's `constants` (RSA_PKCS1_PADDING, RSA_PKCS1_PSS_PADDING, RSA_PSS_SALTLEN_AUTO).
  const RSA_PKCS1_PADDING = 1;
  const RSA_PKCS1_PSS_PADDING = 6;
  const RSA_PSS_SALTLEN_AUTO = -2;
  switch (signature.sigAlg) {
    case TPM_ALG.RSASSA:
      return { hash: hashAlg(signature.hashAlg).node, signature: signature.sig, options: { padding: RSA_PKCS1_PADDING } };
    case TPM_ALG.RSAPSS:
      // TPMs differ in salt length (hash size or the maximum); AUTO accepts either.
      return { hash: hashAlg(signature.hashAlg).node, signature: signature.sig, options: { padding: RSA_PKCS1_PSS_PADDING, saltLength: RSA_PSS_SALTLEN_AUTO } };
    case TPM_ALG.ECDSA:
      return { hash: hashAlg(signature.hashAlg).node, signature: ecdsaSignatureToDer(signature.r, signature.s), options: { dsaEncoding: 'der' } };
    default:
      throw new SigilError('tpm.signature_unsupported', `signature algorithm 0x${signature.sigAlg.toString(16)} cannot be verified in software`, {
        sigAlg: signature.sigAlg,
      });
  }
}

/** Verify a TPM signature over `data` (the TPM signed H(data)) with node:crypto. */
export function verifyTpmSignature(key: KeyObject | TpmPublic, data: Uint8Array, signature: TpmSignature): boolean {
  const publicKey = key instanceof KeyObject ? key : tpmPublicToKeyObject(key);
  const converted = tpmSignatureToNode(signature);
  return verify(converted.hash, data, { key: publicKey, ...converted.options }, converted.signature);
}

/** Parse a DER ECDSA signature (node's default output) into a TPMT_SIGNATURE. */
export function ecdsaDerToTpmSignature(der: Uint8Array, hash: number): TpmSignature {
  const fail = (): never => {
    throw new SigilError('tpm.signature_invalid', 'not a DER ECDSA signature');
  };
  let offset = 0;
  const readLength = (): number => {
    const first = der[offset++] ?? fail();
    if (first < 0x80) return first;
    const count = first & 0x7f;
    if (count === 0 || count > 2) fail();
    let length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + (der[offset++] ?? fail());
    return length;
  };
  const readInteger = (): Uint8Array => {
    if (der[offset++] !== 0x02) fail();
    const length = readLength();
    if (length === 0 || offset + length > der.length) fail();
    const value = der.slice(offset, offset + length);
    offset += length;
    return stripLeadingZeros(value);
  };
  if (der[offset++] !== 0x30) fail();
  if (readLength() !== der.length - offset) fail();
  const r = readInteger();
  const s = readInteger();
  if (offset !== der.length) fail();
  return { sigAlg: TPM_ALG.ECDSA, hashAlg: hash, r, s };
}
