import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT, type CryptoKey as JoseKey, type JWTPayload, type KeyObject } from 'jose';
import { SigilError } from '../core/errors.ts';
import type { AppraisalStatus, TrustVector } from '../evidence/verifier.ts';
import type { RuntimeJwk } from './binding.ts';

/**
 * EAT Attestation Results (draft-ietf-rats-ear) as a signed JWT. One submodule per evidence kind
 * appraised; Sigil adds RFC 7800 `cnf.jkt` (the runtime key the evidence was bound to) and
 * `sigil.*` claims naming the tenant, device and attesting key, which the relying-party side of
 * the broker needs to release secrets and to honour revocation.
 */
export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';
export const EAR_ALGORITHMS = ['ES256', 'ES384'] as const;
export type EarAlgorithm = (typeof EAR_ALGORITHMS)[number];

export interface EarSubmodule {
  'ear.status': AppraisalStatus;
  'ear.trustworthiness-vector': TrustVector;
  'ear.appraisal-policy-id': string;
}

export interface EarClaims {
  eat_profile: typeof EAR_PROFILE;
  iat: number;
  exp: number;
  jti: string;
  iss?: string;
  'ear.verifier-id': { build: string; developer: string };
  /** base64url of the nonce the evidence answered (absent for nonce-less verification). */
  eat_nonce?: string;
  submods: Record<string, EarSubmodule>;
  cnf?: { jkt: string };
  'sigil.tenant': string;
  'sigil.kind': string;
  'sigil.device'?: string;
  /** The attesting key's identity (TPM: AK name, hex), for AK revocation. */
  'sigil.ak'?: string;
  /** The public runtime key released secrets are encrypted to; its thumbprint is cnf.jkt. */
  'sigil.runtime-jwk'?: RuntimeJwk;
  'sigil.attestation'?: string;
  /** "verify" marks results of stateless verification: the broker releases nothing on them. */
  'sigil.use'?: 'release' | 'verify';
  /**
   * Set only when certificates, CRLs and TCB data were checked at a pinned instant rather than at
   * issue time (recorded evidence: an admin's `at`, or the tenant's `verificationTime`). A relying
   * party that wants a statement about the present must refuse such a result.
   */
  'sigil.verification-time'?: string;
}

export const VERIFIER_ID = { build: 'sigil 0.1.0', developer: 'https://github.com/sigil' } as const;

export type SigningKey = JoseKey | KeyObject;

export async function signEar(claims: EarClaims, key: SigningKey, options: { kid: string; alg: EarAlgorithm }): Promise<string> {
  return new SignJWT(claims as unknown as JWTPayload).setProtectedHeader({ alg: options.alg, kid: options.kid, typ: 'JWT' }).sign(key);
}

/** The worst status over all submodules (an EAR is only as good as its worst part). */
export function earStatus(claims: Pick<EarClaims, 'submods'>): AppraisalStatus {
  const order: AppraisalStatus[] = ['affirming', 'warning', 'contraindicated', 'none'];
  let worst = 0;
  const statuses = Object.values(claims.submods ?? {}).map((s) => s['ear.status']);
  if (statuses.length === 0) return 'none';
  for (const status of statuses) worst = Math.max(worst, Math.max(0, order.indexOf(status)));
  return order[worst];
}

/**
 * Verify an EAR against the broker's keys: signature (kid lookup), algorithm allow-list, expiry
 * at `now`, and the profile. Every failure is a SigilError whose code names what failed.
 */
export async function verifyEar(token: string, resolveKey: (kid: string) => Promise<SigningKey | undefined>, now: Date): Promise<EarClaims> {
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(token).kid;
  } catch (error) {
    throw new SigilError('ear.malformed', 'the token is not a JWT', {}, { cause: error });
  }
  const key = kid ? await resolveKey(kid) : undefined;
  if (!key) throw new SigilError('ear.signature_invalid', 'the token was not signed by a key of this broker', { kid });
  try {
    const { payload } = await jwtVerify(token, key, { algorithms: [...EAR_ALGORITHMS], currentDate: now, clockTolerance: 0 });
    if (payload.eat_profile !== EAR_PROFILE) throw new SigilError('ear.profile_invalid', 'the token is not an EAR', { profile: payload.eat_profile });
    if (typeof payload['sigil.tenant'] !== 'string' || typeof payload.submods !== 'object') throw new SigilError('ear.malformed', 'the EAR lacks tenant or submods');
    return payload as unknown as EarClaims;
  } catch (error) {
    if (error instanceof SigilError) throw error;
    if (error instanceof joseErrors.JWTExpired) throw new SigilError('ear.expired', 'the token has expired', { exp: (error.payload as JWTPayload).exp });
    if (error instanceof joseErrors.JWSSignatureVerificationFailed) throw new SigilError('ear.signature_invalid', 'the token signature does not verify');
    if (error instanceof joseErrors.JWTClaimValidationFailed) throw new SigilError('ear.claims_invalid', `the token claims are invalid: ${error.message}`);
    throw new SigilError('ear.malformed', `the token is not a valid EAR: ${(error as Error).message}`, {}, { cause: error });
  }
}
