import type { Reader, Writer } from '../../core/bytes.ts';
import { TPM_ALG } from '../constants.ts';
import { sized, type Codec } from '../marshal/codec.ts';
import { TPM2B_DIGEST, TPM2B_ECC_PARAMETER, TPM2B_PUBLIC_KEY_RSA } from './basic.ts';

/**
 * TPMT_PUBLIC (Part 2, 12.2.4) and the parameter unions it selects by `type`. Represented as one
 * flat object per key type, so templates read like the spec's tables.
 */

/** TPMT_SYM_DEF_OBJECT / TPMT_SYM_DEF: algorithm NULL means "none"; XOR carries a hash, no mode. */
export interface SymmetricDefinition {
  algorithm: number;
  keyBits?: number;
  mode?: number;
}

export const TPMT_SYM_DEF: Codec<SymmetricDefinition> = {
  name: 'TPMT_SYM_DEF',
  read(r) {
    const algorithm = r.u16();
    if (algorithm === TPM_ALG.NULL) return { algorithm };
    const keyBits = r.u16();
    if (algorithm === TPM_ALG.XOR) return { algorithm, keyBits };
    return { algorithm, keyBits, mode: r.u16() };
  },
  write(w, v) {
    w.u16(v.algorithm);
    if (v.algorithm === TPM_ALG.NULL) return;
    w.u16(v.keyBits ?? 0);
    if (v.algorithm !== TPM_ALG.XOR) w.u16(v.mode ?? TPM_ALG.CFB);
  },
};

export const SYM_NULL: SymmetricDefinition = { algorithm: TPM_ALG.NULL };
export const AES_128_CFB: SymmetricDefinition = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };

/**
 * A signing/encryption/KDF scheme: TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_SIG_SCHEME,
 * TPMT_KEYEDHASH_SCHEME, TPMT_KDF_SCHEME, TPMT_RSA_DECRYPT all share this shape: a scheme and,
 * unless NULL (or RSAES), a hash; ECDAA adds a counter, XOR adds a KDF.
 */
export interface Scheme {
  scheme: number;
  hashAlg?: number;
  count?: number;
  kdf?: number;
}

export const SCHEME_NULL: Scheme = { scheme: TPM_ALG.NULL };

export const TPMT_SCHEME: Codec<Scheme> = {
  name: 'TPMT_SCHEME',
  read(r) {
    const scheme = r.u16();
    if (scheme === TPM_ALG.NULL || scheme === TPM_ALG.RSAES) return { scheme };
    const hashAlg = r.u16();
    if (scheme === TPM_ALG.ECDAA) return { scheme, hashAlg, count: r.u16() };
    if (scheme === TPM_ALG.XOR) return { scheme, hashAlg, kdf: r.u16() };
    return { scheme, hashAlg };
  },
  write(w, v) {
    w.u16(v.scheme);
    if (v.scheme === TPM_ALG.NULL || v.scheme === TPM_ALG.RSAES) return;
    w.u16(v.hashAlg ?? TPM_ALG.SHA256);
    if (v.scheme === TPM_ALG.ECDAA) w.u16(v.count ?? 0);
    if (v.scheme === TPM_ALG.XOR) w.u16(v.kdf ?? TPM_ALG.KDF1_SP800_108);
  },
};

interface PublicCommon {
  nameAlg: number;
  objectAttributes: number;
  authPolicy: Uint8Array;
}

export interface RsaPublic extends PublicCommon {
  type: typeof TPM_ALG.RSA;
  symmetric: SymmetricDefinition;
  scheme: Scheme;
  keyBits: number;
  /** 0 means the default 65537. */
  exponent: number;
  /** The modulus. */
  unique: Uint8Array;
}

export interface EccPublic extends PublicCommon {
  type: typeof TPM_ALG.ECC;
  symmetric: SymmetricDefinition;
  scheme: Scheme;
  curveId: number;
  kdf: Scheme;
  unique: { x: Uint8Array; y: Uint8Array };
}

export interface KeyedHashPublic extends PublicCommon {
  type: typeof TPM_ALG.KEYEDHASH;
  scheme: Scheme;
  unique: Uint8Array;
}

export interface SymCipherPublic extends PublicCommon {
  type: typeof TPM_ALG.SYMCIPHER;
  symmetric: SymmetricDefinition;
  unique: Uint8Array;
}

export type TpmPublic = RsaPublic | EccPublic | KeyedHashPublic | SymCipherPublic;

export const TPMT_PUBLIC: Codec<TpmPublic> = {
  name: 'TPMT_PUBLIC',
  read(r: Reader): TpmPublic {
    const type = r.u16();
    const nameAlg = r.u16();
    const objectAttributes = r.u32();
    const authPolicy = TPM2B_DIGEST.read(r);
    const common = { nameAlg, objectAttributes, authPolicy };
    switch (type) {
      case TPM_ALG.RSA: {
        const symmetric = TPMT_SYM_DEF.read(r);
        const scheme = TPMT_SCHEME.read(r);
        const keyBits = r.u16();
        const exponent = r.u32();
        return { type, ...common, symmetric, scheme, keyBits, exponent, unique: TPM2B_PUBLIC_KEY_RSA.read(r) };
      }
      case TPM_ALG.ECC: {
        const symmetric = TPMT_SYM_DEF.read(r);
        const scheme = TPMT_SCHEME.read(r);
        const curveId = r.u16();
        const kdf = TPMT_SCHEME.read(r);
        const x = TPM2B_ECC_PARAMETER.read(r);
        const y = TPM2B_ECC_PARAMETER.read(r);
        return { type, ...common, symmetric, scheme, curveId, kdf, unique: { x, y } };
      }
      case TPM_ALG.KEYEDHASH:
        return { type, ...common, scheme: TPMT_SCHEME.read(r), unique: TPM2B_DIGEST.read(r) };
      case TPM_ALG.SYMCIPHER:
        return { type, ...common, symmetric: TPMT_SYM_DEF.read(r), unique: TPM2B_DIGEST.read(r) };
      default:
        return r.fail(`unknown public area type 0x${type.toString(16)}`, { type }, 'tpm.response_malformed');
    }
  },
  write(w: Writer, v: TpmPublic) {
    w.u16(v.type).u16(v.nameAlg).u32(v.objectAttributes);
    TPM2B_DIGEST.write(w, v.authPolicy);
    switch (v.type) {
      case TPM_ALG.RSA:
        TPMT_SYM_DEF.write(w, v.symmetric);
        TPMT_SCHEME.write(w, v.scheme);
        w.u16(v.keyBits).u32(v.exponent);
        TPM2B_PUBLIC_KEY_RSA.write(w, v.unique);
        break;
      case TPM_ALG.ECC:
        TPMT_SYM_DEF.write(w, v.symmetric);
        TPMT_SCHEME.write(w, v.scheme);
        w.u16(v.curveId);
        TPMT_SCHEME.write(w, v.kdf);
        TPM2B_ECC_PARAMETER.write(w, v.unique.x);
        TPM2B_ECC_PARAMETER.write(w, v.unique.y);
        break;
      case TPM_ALG.KEYEDHASH:
        TPMT_SCHEME.write(w, v.scheme);
        TPM2B_DIGEST.write(w, v.unique);
        break;
      case TPM_ALG.SYMCIPHER:
        TPMT_SYM_DEF.write(w, v.symmetric);
        TPM2B_DIGEST.write(w, v.unique);
        break;
    }
  },
};

export const TPM2B_PUBLIC = sized('TPM2B_PUBLIC', TPMT_PUBLIC);

/** TPMS_ECC_POINT inside TPM2B_ECC_POINT. */
export interface EccPoint {
  x: Uint8Array;
  y: Uint8Array;
}
export const TPM2B_ECC_POINT = sized<EccPoint>('TPM2B_ECC_POINT', {
  name: 'TPMS_ECC_POINT',
  read: (r) => ({ x: TPM2B_ECC_PARAMETER.read(r), y: TPM2B_ECC_PARAMETER.read(r) }),
  write: (w, v) => {
    TPM2B_ECC_PARAMETER.write(w, v.x);
    TPM2B_ECC_PARAMETER.write(w, v.y);
  },
});
