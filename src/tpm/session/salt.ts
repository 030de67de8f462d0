import { constants, createECDH, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { SigilError } from '../../core/errors.ts';
import { hashAlg } from '../algorithms.ts';
import { TPM_ALG, TPM_ECC_CURVE } from '../constants.ts';
import { kdfe } from '../crypto/kdf.ts';
import { marshal } from '../marshal/codec.ts';
import { TPM2B_ECC_PARAMETER } from '../structures/basic.ts';
import type { EccPublic, RsaPublic, TpmPublic } from '../structures/public.ts';

/**
 * Salting a session (Part 1, 19.6.11; Part 1 Annex B.10.3 / C.6.2 for the secret-sharing schemes):
 * a random salt goes to the TPM encrypted to `tpmKey`, so that only the TPM and the caller know
 * the session key even when nothing secret is bound. The label is "SECRET".
 */

export interface EncryptedSalt {
  salt: Uint8Array;
  encryptedSalt: Uint8Array;
}

const NODE_CURVES: Record<number, string> = {
  [TPM_ECC_CURVE.NIST_P256]: 'prime256v1',
  [TPM_ECC_CURVE.NIST_P384]: 'secp384r1',
  [TPM_ECC_CURVE.NIST_P521]: 'secp521r1',
};

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** RSA: OAEP with the key's scheme hash (nameAlg when the scheme is NULL), salt of that digest size. */
function rsaSalt(key: RsaPublic): EncryptedSalt {
  if (key.scheme.scheme !== TPM_ALG.NULL && key.scheme.scheme !== TPM_ALG.OAEP) {
    throw new SigilError('tpm.salt_key_unsuitable', 'an RSA salt key must have the OAEP or NULL scheme', { scheme: key.scheme.scheme });
  }
  const oaepHash = hashAlg(key.scheme.scheme === TPM_ALG.OAEP ? (key.scheme.hashAlg ?? key.nameAlg) : key.nameAlg);
  const exponent = key.exponent === 0 ? 65537 : key.exponent;
  const e = Buffer.alloc(4);
  e.writeUInt32BE(exponent);
  const publicKey = createPublicKey({ key: { kty: 'RSA', n: base64url(key.unique), e: base64url(e.subarray(e.findIndex((b) => b !== 0))) }, format: 'jwk' });
  // The TPM refuses a decrypted salt longer than the OAEP hash's digest (reference CryptSecretDecrypt).
  const salt = new Uint8Array(randomBytes(oaepHash.size));
  const label = Buffer.from('SECRET\0', 'ascii');
  const encrypted = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHash.node, oaepLabel: label }, salt);
  return { salt, encryptedSalt: new Uint8Array(encrypted) };
}

/**
 * ECC: one-pass ECDH with an ephemeral key; salt = KDFe(nameAlg, Z.x, "SECRET", ephemeral.x,
 * tpmKey.x, digest bits). The "encrypted salt" is the ephemeral public point (TPMS_ECC_POINT).
 */
function eccSalt(key: EccPublic): EncryptedSalt {
  const curve = NODE_CURVES[key.curveId];
  if (!curve) throw new SigilError('tpm.salt_key_unsuitable', `ECC curve 0x${key.curveId.toString(16)} is not supported for salting`, { curveId: key.curveId });
  const ecdh = createECDH(curve);
  ecdh.generateKeys();
  const ephemeral = ecdh.getPublicKey();
  const size = (ephemeral.length - 1) / 2;
  const pad = (v: Uint8Array) => {
    if (v.length > size) throw new SigilError('tpm.salt_key_unsuitable', 'the salt key has an oversized ECC coordinate');
    const out = new Uint8Array(size);
    out.set(v, size - v.length);
    return out;
  };
  const tpmPoint = Buffer.concat([Buffer.from([4]), pad(key.unique.x), pad(key.unique.y)]);
  let z: Buffer;
  try {
    z = ecdh.computeSecret(tpmPoint);
  } catch (error) {
    throw new SigilError('tpm.salt_key_unsuitable', 'the salt key is not a valid point on its curve', { cause: String(error) });
  }
  const ephemeralX = new Uint8Array(ephemeral.subarray(1, 1 + size));
  const ephemeralY = new Uint8Array(ephemeral.subarray(1 + size));
  const digestBits = hashAlg(key.nameAlg).size * 8;
  const salt = kdfe(key.nameAlg, z, 'SECRET', ephemeralX, key.unique.x, digestBits);
  const w = [marshal(TPM2B_ECC_PARAMETER, ephemeralX), marshal(TPM2B_ECC_PARAMETER, ephemeralY)];
  return { salt, encryptedSalt: new Uint8Array(Buffer.concat(w)) };
}

/** Encrypt a fresh salt to a loaded decryption key's public area. */
export function encryptSalt(publicArea: TpmPublic): EncryptedSalt {
  if (publicArea.type === TPM_ALG.RSA) return rsaSalt(publicArea);
  if (publicArea.type === TPM_ALG.ECC) return eccSalt(publicArea);
  throw new SigilError('tpm.salt_key_unsuitable', 'a salt key must be an RSA or ECC decryption key', { type: publicArea.type });
}
