import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { SigilError } from '../core/errors.ts';
import { EAR_ALGORITHMS, EAR_PROFILE, type EarAlgorithm, type EarClaims } from '../policy/ear.ts';

/**
 * The broker's own EAR signing and checking, with node:crypto: every attestation signs one EAR
 * and every release checks one, and jose goes through WebCrypto (a thread-pool job each, and a
 * key import per call with KeyObjects), which measured several times the cost of node's one-shot
 * sign/verify on this hot path. Same format as src/policy/ear.ts (the isomorphic signer/verifier
 * relying parties use); jose verifies these tokens and these functions verify jose's in
 * test/broker/ear-jws.test.ts.
 */
const HASH: Record<EarAlgorithm, string> = { ES256: 'sha256', ES384: 'sha384' };
const CURVE: Record<EarAlgorithm, string> = { ES256: 'prime256v1', ES384: 'secp384r1' };
const b64url = (bytes: Uint8Array | string): string => Buffer.from(bytes).toString('base64url');

export function signEarFast(claims: EarClaims, key: KeyObject, options: { kid: string; alg: EarAlgorithm }): string {
  const signingInput = `${b64url(JSON.stringify({ alg: options.alg, kid: options.kid, typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signingInput}.${b64url(sign(HASH[options.alg], Buffer.from(signingInput), { key, dsaEncoding: 'ieee-p1363' }))}`;
}

/**
 * The EARs this process signed, by the SHA-256 of their compact form, until they expire. A
 * release that presents one of them skips only the ECDSA verification — the token is
 * byte-for-byte one this process signed, so its signature is valid by construction — and every
 * other check still runs (expiry, profile, tenant, binding, revocation). A token from another
 * replica, or anything else, is verified in full. Attesters normally fetch their secrets from
 * the replica that attested them, so this halves the public-key work of a release.
 */
export class IssuedEars {
  readonly #expiry = new Map<string, number>();
  readonly #limit: number;

  constructor(limit = 100_000) {
    this.#limit = limit;
  }

  static digest(token: string): string {
    return createHash('sha256').update(token).digest('base64');
  }

  remember(token: string, exp: number): void {
    if (this.#expiry.size >= this.#limit) this.#expiry.delete(this.#expiry.keys().next().value!);
    this.#expiry.set(IssuedEars.digest(token), exp);
  }

  /** Whether this process signed exactly this token (and it has not been forgotten yet). */
  signedHere(token: string, nowSeconds: number): boolean {
    const digest = IssuedEars.digest(token);
    const exp = this.#expiry.get(digest);
    if (exp === undefined) return false;
    if (exp <= nowSeconds) {
      this.#expiry.delete(digest);
      return false;
    }
    return true;
  }
}

function decodePart(part: string, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value;
  } catch {
    // reported below
  }
  throw new SigilError('ear.malformed', `the token ${what} is not a JSON object`);
}

/** Signature (kid → key, alg allow-list matching the key's curve), expiry at `now`, profile. */
export async function verifyEarFast(token: string, resolveKey: (kid: string) => Promise<KeyObject | undefined>, now: Date, issued?: IssuedEars): Promise<EarClaims> {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) throw new SigilError('ear.malformed', 'the token is not a compact JWS');
  const header = decodePart(parts[0], 'header');
  const alg = header.alg as EarAlgorithm;
  if (!EAR_ALGORITHMS.includes(alg)) throw new SigilError('ear.signature_invalid', `algorithm ${String(header.alg)} is not accepted`);
  if (header.crit !== undefined) throw new SigilError('ear.malformed', 'the token has critical header parameters this broker does not know');
  const key = typeof header.kid === 'string' ? await resolveKey(header.kid) : undefined;
  if (!key || key.asymmetricKeyDetails?.namedCurve !== CURVE[alg]) throw new SigilError('ear.signature_invalid', 'the token was not signed by a key of this broker', { kid: header.kid });
  const seconds = Math.floor(now.getTime() / 1000);
  if (!issued?.signedHere(token, seconds)) {
    const signature = Buffer.from(parts[2], 'base64url');
    if (!verify(HASH[alg], Buffer.from(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: 'ieee-p1363' }, signature)) {
      throw new SigilError('ear.signature_invalid', 'the token signature does not verify');
    }
  }
  const claims = decodePart(parts[1], 'payload');
  if (typeof claims.exp !== 'number' || typeof claims.iat !== 'number') throw new SigilError('ear.claims_invalid', 'the token lacks numeric iat and exp');
  if (claims.exp <= seconds) throw new SigilError('ear.expired', 'the token has expired', { exp: claims.exp });
  if (typeof claims.nbf === 'number' && claims.nbf > seconds) throw new SigilError('ear.claims_invalid', 'the token is not valid yet');
  if (claims.eat_profile !== EAR_PROFILE) throw new SigilError('ear.profile_invalid', 'the token is not an EAR', { profile: claims.eat_profile });
  if (typeof claims['sigil.tenant'] !== 'string' || typeof claims.submods !== 'object' || claims.submods === null) throw new SigilError('ear.malformed', 'the EAR lacks tenant or submods');
  return claims as unknown as EarClaims;
}
