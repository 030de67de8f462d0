import { concatBytes, constantTimeEqual, utf8 } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { fromBase64, toBase64 } from '../core/hex.ts';
import { digest } from '../core/hash.ts';

/**
 * Binding a runtime key to evidence (docs/broker-protocol.md, "Binding"):
 *
 *   thumbprint = SHA-256(RFC 7638 canonical JWK)            (32 bytes, the RFC 7638 thumbprint)
 *   binding    = SHA-256(nonce ‖ thumbprint)                 (32 bytes)
 *
 * The attester puts `binding` where its evidence carries caller data: a TPM quote's
 * qualifyingData (extraData), an SNP or TDX report_data (64 bytes: binding ‖ 32 zero bytes).
 * So the evidence is fresh (the nonce) and names the key the secret will be encrypted to.
 */
export interface RuntimeJwk {
  kty: 'EC' | 'RSA';
  crv?: string;
  x?: string;
  y?: string;
  n?: string;
  e?: string;
  [member: string]: unknown;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const CURVES: Record<string, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };

/** Accept only public EC (P-256/384/521) or RSA (≥ 2048-bit) keys; return the members that matter. */
export function checkRuntimeJwk(input: unknown): RuntimeJwk {
  const fail = (why: string): never => {
    throw new SigilError('policy.runtime_key_invalid', `the runtime key is not usable: ${why}`);
  };
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return fail('expected a JWK object');
  const jwk = input as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) fail('it carries private key members; send only the public key');
  if (jwk.kty === 'EC') {
    const size = CURVES[String(jwk.crv)];
    if (!size) fail(`curve ${String(jwk.crv)} is not P-256, P-384 or P-521`);
    if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') fail('EC keys need x and y');
    if (fromBase64(jwk.x as string).length !== size || fromBase64(jwk.y as string).length !== size) fail('x or y has the wrong length for the curve');
    return { kty: 'EC', crv: jwk.crv as string, x: jwk.x as string, y: jwk.y as string };
  }
  if (jwk.kty === 'RSA') {
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') fail('RSA keys need n and e');
    const bits = fromBase64(jwk.n as string).length * 8;
    if (bits < 2048 || bits > 8192) fail(`an RSA modulus of ${bits} bits is outside 2048..8192`);
    return { kty: 'RSA', n: jwk.n as string, e: jwk.e as string };
  }
  return fail(`key type ${String(jwk.kty)} is not EC or RSA`);
}

/**
 * The RFC 7638 SHA-256 thumbprint, base64url (what EAR `cnf.jkt` carries): the hash of the
 * required members in lexicographic order, no whitespace. Written out rather than jose's
 * calculateJwkThumbprint because core/hash hashes synchronously on Node, which matters on the
 * attestation hot path (three thumbprints per attestation and release); the RFC's own example is
 * the test (test/policy/binding.test.ts).
 */
export async function jwkThumbprint(jwk: RuntimeJwk): Promise<string> {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y } : { e: jwk.e, kty: 'RSA', n: jwk.n };
  if (Object.values(members).some((v) => typeof v !== 'string')) throw new SigilError('policy.runtime_key_invalid', 'the JWK lacks members its thumbprint needs');
  return base64url(await digest('SHA-256', utf8.encode(JSON.stringify(members))));
}

function base64url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export async function runtimeKeyBinding(nonce: Uint8Array, jwk: RuntimeJwk): Promise<Uint8Array> {
  return digest('SHA-256', concatBytes(nonce, fromBase64(await jwkThumbprint(jwk))));
}

/**
 * Whether evidence binding data carries `expected`: equal, or (64-byte report_data fields) the
 * binding followed by zero bytes only. Constant-time over the compared bytes.
 */
export function bindingMatches(actual: Uint8Array, expected: Uint8Array): boolean {
  if (actual.length === expected.length) return constantTimeEqual(actual, expected);
  if (actual.length < expected.length) return false;
  const padded = new Uint8Array(actual.length);
  padded.set(expected);
  return constantTimeEqual(actual, padded);
}

/** The same binding from a stored thumbprint (dry runs re-check recorded evidence). */
export async function bindingFromThumbprint(nonce: Uint8Array, thumbprint: string): Promise<Uint8Array> {
  return digest('SHA-256', concatBytes(nonce, fromBase64(thumbprint)));
}
