import { fromHex } from '../core/hex.ts';
import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT } from './constants.ts';
import { AES_128_CFB, SCHEME_NULL, SYM_NULL, type EccPublic, type KeyedHashPublic, type RsaPublic, type Scheme } from './structures/public.ts';

/**
 * Key templates as TpmPublic values. Each function returns a fresh object, so a caller may change
 * a field (say, a unique value) without touching anyone else's template.
 *
 * Sources: TCG EK Credential Profile for TPM 2.0 (v2.x, section 2.1.5 "Default EK Templates", low
 * range L-1 / L-2), TCG TPM v2.0 Provisioning Guidance (section 7.5, the SRK), and tpm2-tools'
 * tpm2_createak defaults for attestation keys.
 */

/**
 * The EK authPolicy: PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256, i.e.
 * SHA256(0^32 ‖ TPM_CC_PolicySecret ‖ 0x4000000B) hashed once more with an empty policyRef.
 */
export const EK_AUTH_POLICY_SHA256 = '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa';

export const EK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.adminWithPolicy | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;

export const SRK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM |
  TPMA_OBJECT.fixedParent |
  TPMA_OBJECT.sensitiveDataOrigin |
  TPMA_OBJECT.userWithAuth |
  TPMA_OBJECT.noDA |
  TPMA_OBJECT.restricted |
  TPMA_OBJECT.decrypt;

export const AK_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;

/** An unrestricted key may sign or decrypt any data, not only TPM-made structures. */
const UNRESTRICTED_ATTRIBUTES = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth;

function empty(): Uint8Array {
  return new Uint8Array(0);
}

/** EK template L-1: RSA-2048, AES-128-CFB, no scheme, unique = 256 zero bytes. */
export function ekRsa2048Template(): RsaPublic {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: EK_ATTRIBUTES,
    authPolicy: fromHex(EK_AUTH_POLICY_SHA256),
    symmetric: { ...AES_128_CFB },
    scheme: { ...SCHEME_NULL },
    keyBits: 2048,
    exponent: 0,
    unique: new Uint8Array(256),
  };
}

/** EK template L-2: ECC NIST P-256, AES-128-CFB, no scheme or KDF, unique x and y = 32 zero bytes. */
export function ekEccP256Template(): EccPublic {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: EK_ATTRIBUTES,
    authPolicy: fromHex(EK_AUTH_POLICY_SHA256),
    symmetric: { ...AES_128_CFB },
    scheme: { ...SCHEME_NULL },
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: { ...SCHEME_NULL },
    unique: { x: new Uint8Array(32), y: new Uint8Array(32) },
  };
}

/** SRK (storage root key) per the Provisioning Guidance: RSA-2048 restricted decryption parent. */
export function srkRsa2048Template(): RsaPublic {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: SRK_ATTRIBUTES,
    authPolicy: empty(),
    symmetric: { ...AES_128_CFB },
    scheme: { ...SCHEME_NULL },
    keyBits: 2048,
    exponent: 0,
    unique: new Uint8Array(256),
  };
}

export function srkEccP256Template(): EccPublic {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: SRK_ATTRIBUTES,
    authPolicy: empty(),
    symmetric: { ...AES_128_CFB },
    scheme: { ...SCHEME_NULL },
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: { ...SCHEME_NULL },
    unique: { x: new Uint8Array(32), y: new Uint8Array(32) },
  };
}

/** Attestation key: restricted signing, RSA-2048 RSASSA-SHA256 (signs only TPM-made structures). */
export function akRsa2048Template(): RsaPublic {
  return {
    type: TPM_ALG.RSA,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: empty(),
    symmetric: { ...SYM_NULL },
    scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 },
    keyBits: 2048,
    exponent: 0,
    unique: empty(),
  };
}

export function akEccP256Template(): EccPublic {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: AK_ATTRIBUTES,
    authPolicy: empty(),
    symmetric: { ...SYM_NULL },
    scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: { ...SCHEME_NULL },
    unique: { x: empty(), y: empty() },
  };
}

export interface SealedDataOptions {
  /** When given, the object is unsealed through this policy and userWithAuth is cleared. */
  authPolicy?: Uint8Array;
  /** Keep userWithAuth even with a policy (the authValue then also unseals). */
  userWithAuth?: boolean;
  nameAlg?: number;
}

/**
 * Sealed data: a KEYEDHASH object with the NULL scheme whose sensitive `data` is the secret
 * (given to Create in inSensitive.data). Not sensitiveDataOrigin: the caller supplies the data.
 */
export function sealedDataTemplate(options: SealedDataOptions = {}): KeyedHashPublic {
  const policy = options.authPolicy ?? empty();
  const userWithAuth = options.userWithAuth ?? policy.length === 0;
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: options.nameAlg ?? TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | (userWithAuth ? TPMA_OBJECT.userWithAuth : 0),
    authPolicy: policy.slice(),
    scheme: { ...SCHEME_NULL },
    unique: empty(),
  };
}

export interface KeyOptions {
  /** Extra TPMA_OBJECT bits or a full replacement (`attributes`). */
  attributes?: number;
  authPolicy?: Uint8Array;
  nameAlg?: number;
  /** The key's fixed scheme; NULL lets each Sign/decrypt call choose. */
  scheme?: Scheme;
}

/** Unrestricted RSA signing key (RSASSA-SHA256 unless a scheme is given; NULL = chosen per Sign). */
export function rsaSigningTemplate(keyBits = 2048, options: KeyOptions = {}): RsaPublic {
  return rsaTemplate(keyBits, TPMA_OBJECT.sign, options.scheme ?? { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 }, options);
}

/** Unrestricted RSA decryption key (for RSA_Decrypt); scheme NULL lets each call choose OAEP/RSAES. */
export function rsaDecryptionTemplate(keyBits = 2048, options: KeyOptions = {}): RsaPublic {
  return rsaTemplate(keyBits, TPMA_OBJECT.decrypt, options.scheme ?? { ...SCHEME_NULL }, options);
}

/** Unrestricted ECC signing key (ECDSA-SHA256 unless a scheme is given). */
export function eccSigningTemplate(curveId: number = TPM_ECC_CURVE.NIST_P256, options: KeyOptions = {}): EccPublic {
  return eccTemplate(curveId, TPMA_OBJECT.sign, options.scheme ?? { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 }, options);
}

/** Unrestricted ECC key-agreement key (for ECDH_ZGen / ECDH_KeyGen). */
export function eccEcdhTemplate(curveId: number = TPM_ECC_CURVE.NIST_P256, options: KeyOptions = {}): EccPublic {
  return eccTemplate(curveId, TPMA_OBJECT.decrypt, options.scheme ?? { scheme: TPM_ALG.ECDH, hashAlg: TPM_ALG.SHA256 }, options);
}

function rsaTemplate(keyBits: number, usage: number, scheme: Scheme, options: KeyOptions): RsaPublic {
  return {
    type: TPM_ALG.RSA,
    nameAlg: options.nameAlg ?? TPM_ALG.SHA256,
    objectAttributes: options.attributes ?? UNRESTRICTED_ATTRIBUTES | usage,
    authPolicy: options.authPolicy?.slice() ?? empty(),
    symmetric: { ...SYM_NULL },
    scheme: { ...scheme },
    keyBits,
    exponent: 0,
    unique: empty(),
  };
}

function eccTemplate(curveId: number, usage: number, scheme: Scheme, options: KeyOptions): EccPublic {
  return {
    type: TPM_ALG.ECC,
    nameAlg: options.nameAlg ?? TPM_ALG.SHA256,
    objectAttributes: options.attributes ?? UNRESTRICTED_ATTRIBUTES | usage,
    authPolicy: options.authPolicy?.slice() ?? empty(),
    symmetric: { ...SYM_NULL },
    scheme: { ...scheme },
    curveId,
    kdf: { ...SCHEME_NULL },
    unique: { x: empty(), y: empty() },
  };
}
