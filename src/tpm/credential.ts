import { createECDH, constants as cryptoConstants, publicEncrypt, randomBytes } from 'node:crypto';
import { concatBytes, Writer } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { hashAlg } from './algorithms.ts';
import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT } from './constants.ts';
import { aesCfbEncrypt, hashBytes, hmacBytes, kdfa, kdfe } from './crypto/kdf.ts';
import { marshal } from './marshal/codec.ts';
import { objectName } from './names.ts';
import { tpmPublicToKeyObject } from './public-key.ts';
import { TPM2B_DIGEST } from './structures/basic.ts';
import type { KeyedHashPublic, TpmPublic } from './structures/public.ts';
import { TPM2B_SENSITIVE, type Sensitive } from './structures/sensitive.ts';

/**
 * What a TPM does for a remote party, done in software with only the receiving key's public area:
 * TPM2_MakeCredential (Part 1, 24: credential protection) and the outer wrapper of a duplication
 * blob for TPM2_Import (Part 1, 23.3.2). Both hide a random seed to the receiving key (RSA-OAEP or
 * ECDH + KDFe: Part 1, annexes B and C on secret sharing), derive a CFB key ("STORAGE", bound to an object's
 * name) and an HMAC key ("INTEGRITY") from it with KDFa, and MAC the ciphertext together with the
 * name, so only that TPM can open the blob, and only for that name.
 */

export interface MakeCredentialInput {
  /** The receiving TPM's key (usually its EK): a restricted decryption key with a symmetric definition. */
  ekPublic: TpmPublic;
  /** Name of the key (usually an AK) the credential is bound to; ActivateCredential checks it. */
  objectName: Uint8Array;
  /** At most the size of the EK's nameAlg digest (it travels as a TPM2B_DIGEST). */
  credential: Uint8Array;
}

export interface MakeCredentialResult {
  /** TPM2B_ID_OBJECT contents: TPM2B(integrityHMAC) ‖ encIdentity. */
  credentialBlob: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents: the seed, OAEP-encrypted or an ephemeral TPMS_ECC_POINT. */
  secret: Uint8Array;
}

export async function makeCredential(input: MakeCredentialInput): Promise<MakeCredentialResult> {
  const { ekPublic, objectName: name, credential } = input;
  const nameAlg = hashAlg(ekPublic.nameAlg);
  if (credential.length > nameAlg.size) {
    throw new SigilError('tpm.credential_too_large', `a credential for this key is at most ${nameAlg.size} bytes, not ${credential.length}`, {
      length: credential.length,
      max: nameAlg.size,
    });
  }
  protectionKeyBits(ekPublic); // refuse an unusable key before any work
  const { seed, encryptedSeed } = protectSeed(ekPublic, 'IDENTITY');
  const wrapped = outerWrap(ekPublic, seed, name, marshal(TPM2B_DIGEST, credential));
  return { credentialBlob: wrapped, secret: encryptedSeed };
}

export interface CreateImportBlobInput {
  /** The new parent on the receiving TPM (an SRK or other storage key). */
  parentPublic: TpmPublic;
  /** Public area of the object to import; fixedTPM and fixedParent must be clear. */
  objectPublic: TpmPublic;
  sensitive: Sensitive;
}

export interface ImportBlob {
  /** TPM2B_PRIVATE contents for TPM2_Import's `duplicate`. */
  duplicate: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents for TPM2_Import's `inSymSeed`. */
  inSymSeed: Uint8Array;
  objectPublic: TpmPublic;
}

/**
 * A duplication blob with an outer wrapper only: pass it to TPM2_Import with an empty
 * encryptionKey and symmetricAlg TPM_ALG_NULL.
 */
export async function createImportBlob(input: CreateImportBlobInput): Promise<ImportBlob> {
  const { parentPublic, objectPublic, sensitive } = input;
  const attributes = objectPublic.objectAttributes;
  if (attributes & (TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent)) {
    throw new SigilError('tpm.import_attributes_invalid', 'an object to import must have fixedTPM and fixedParent clear: only duplicable objects can be imported', { attributes });
  }
  if (attributes & TPMA_OBJECT.encryptedDuplication) {
    throw new SigilError('tpm.import_attributes_invalid', 'encryptedDuplication needs an inner wrapper, which createImportBlob does not make', { attributes });
  }
  if (sensitive.sensitiveType !== objectPublic.type) {
    throw new SigilError('tpm.import_attributes_invalid', 'the sensitive area type differs from the public area type', {
      sensitiveType: sensitive.sensitiveType,
      type: objectPublic.type,
    });
  }
  protectionKeyBits(parentPublic);
  const name = await objectName(objectPublic);
  const { seed, encryptedSeed } = protectSeed(parentPublic, 'DUPLICATE');
  const duplicate = outerWrap(parentPublic, seed, name, marshal(TPM2B_SENSITIVE, sensitive));
  return { duplicate, inSymSeed: encryptedSeed, objectPublic };
}

export interface SealToRemoteTpmInput {
  parentPublic: TpmPublic;
  /** At most 128 bytes (MAX_SYM_DATA). */
  secret: Uint8Array;
  /**
   * authPolicy of the sealed object. With a policy, userWithAuth is clear (only the policy opens
   * it) and adminWithPolicy set. Include PolicyCommandCode(TPM_CC_Unseal) to keep the policy from
   * also authorizing TPM2_Duplicate of the imported object.
   */
  policyDigest?: Uint8Array;
  /** Optional authValue; without a policy, Unseal then needs it (userWithAuth). */
  authValue?: Uint8Array;
  nameAlg?: number;
}

/**
 * Seal `secret` to a remote TPM's storage key: a KEYEDHASH sealed-data object, wrapped so only
 * that TPM can import it. fixedTPM and fixedParent are clear, as every duplicated object's must be.
 */
export async function sealToRemoteTpm(input: SealToRemoteTpmInput): Promise<ImportBlob> {
  const nameAlg = input.nameAlg ?? TPM_ALG.SHA256;
  const size = hashAlg(nameAlg).size;
  if (input.secret.length > 128) {
    throw new SigilError('tpm.seal_too_large', `a sealed secret is at most 128 bytes, not ${input.secret.length}`, { length: input.secret.length });
  }
  const policy = input.policyDigest ?? new Uint8Array(0);
  if (policy.length !== 0 && policy.length !== size) {
    throw new SigilError('tpm.policy_argument_invalid', `an authPolicy for nameAlg ${hashAlg(nameAlg).label} is ${size} bytes, not ${policy.length}`);
  }
  // The seed value hides the secret behind the public `unique` = H(seedValue ‖ secret); the TPM checks that binding on import.
  const seedValue = new Uint8Array(randomBytes(size));
  const objectPublic: KeyedHashPublic = {
    type: TPM_ALG.KEYEDHASH,
    nameAlg,
    objectAttributes: policy.length > 0 ? TPMA_OBJECT.adminWithPolicy : TPMA_OBJECT.userWithAuth,
    authPolicy: policy,
    scheme: { scheme: TPM_ALG.NULL },
    unique: hashBytes(nameAlg, seedValue, input.secret),
  };
  const sensitive: Sensitive = {
    sensitiveType: TPM_ALG.KEYEDHASH,
    authValue: input.authValue ?? new Uint8Array(0),
    seedValue,
    sensitive: input.secret,
  };
  return createImportBlob({ parentPublic: input.parentPublic, objectPublic, sensitive });
}

/** The CFB key size the receiving key's symmetric definition names (Part 1, 23 and 24: the protector's symmetric key size). */
function protectionKeyBits(receiver: TpmPublic): number {
  const symmetric = receiver.type === TPM_ALG.RSA || receiver.type === TPM_ALG.ECC ? receiver.symmetric : undefined;
  if (!symmetric || symmetric.algorithm !== TPM_ALG.AES || symmetric.mode !== TPM_ALG.CFB || !symmetric.keyBits) {
    throw new SigilError('tpm.protector_invalid', 'the receiving key must be an RSA or ECC storage key with an AES-CFB symmetric definition', {
      type: receiver.type,
    });
  }
  return symmetric.keyBits;
}

/**
 * Outer wrapper: encrypt with KDFa(seed, "STORAGE", name) in CFB from a zero IV, then prepend
 * TPM2B(HMAC(KDFa(seed, "INTEGRITY"), ciphertext ‖ name)). Both use the receiver's nameAlg.
 */
function outerWrap(receiver: TpmPublic, seed: Uint8Array, name: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const hash = receiver.nameAlg;
  const digestBits = hashAlg(hash).size * 8;
  const symKey = kdfa(hash, seed, 'STORAGE', name, new Uint8Array(0), protectionKeyBits(receiver));
  const encrypted = aesCfbEncrypt(symKey, new Uint8Array(16), plaintext);
  const hmacKey = kdfa(hash, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), digestBits);
  const integrity = hmacBytes(hash, hmacKey, encrypted, name);
  return concatBytes(marshal(TPM2B_DIGEST, integrity), encrypted);
}

const NODE_CURVES: Record<number, { name: string; size: number }> = {
  [TPM_ECC_CURVE.NIST_P256]: { name: 'prime256v1', size: 32 },
  [TPM_ECC_CURVE.NIST_P384]: { name: 'secp384r1', size: 48 },
  [TPM_ECC_CURVE.NIST_P521]: { name: 'secp521r1', size: 66 },
};

function leftPad(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length >= size) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes, size - bytes.length);
  return out;
}

/**
 * A fresh seed of the receiver's nameAlg digest size, and how it travels (Part 1, 23 and 24):
 * RSA: OAEP with the nameAlg hash and label ‖ NUL. ECC: the seed is KDFe(Z, label, ephemeral x,
 * receiver x) of an ECDH with an ephemeral key, and the ephemeral point (TPMS_ECC_POINT) travels.
 */
function protectSeed(receiver: TpmPublic, label: 'IDENTITY' | 'DUPLICATE'): { seed: Uint8Array; encryptedSeed: Uint8Array } {
  const hash = hashAlg(receiver.nameAlg);
  if (receiver.type === TPM_ALG.RSA) {
    const seed = new Uint8Array(randomBytes(hash.size));
    const key = tpmPublicToKeyObject(receiver);
    const encrypted = publicEncrypt(
      { key, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.node, oaepLabel: new TextEncoder().encode(`${label}\0`) },
      seed,
    );
    return { seed, encryptedSeed: new Uint8Array(encrypted) };
  }
  if (receiver.type === TPM_ALG.ECC) {
    const curve = NODE_CURVES[receiver.curveId];
    if (!curve) throw new SigilError('tpm.curve_unsupported', `ECC curve 0x${receiver.curveId.toString(16)} is not supported here`, { curveId: receiver.curveId });
    const receiverX = receiver.unique.x;
    const point = concatBytes(new Uint8Array([4]), leftPad(receiverX, curve.size), leftPad(receiver.unique.y, curve.size));
    const ephemeral = createECDH(curve.name);
    ephemeral.generateKeys();
    let z: Uint8Array;
    try {
      z = new Uint8Array(ephemeral.computeSecret(point));
    } catch (error) {
      throw new SigilError('tpm.protector_invalid', 'the receiving key is not a point on its curve', {}, { cause: error });
    }
    const ephemeralPoint = new Uint8Array(ephemeral.getPublicKey());
    const ephemeralX = ephemeralPoint.subarray(1, 1 + curve.size);
    const ephemeralY = ephemeralPoint.subarray(1 + curve.size);
    const seed = kdfe(receiver.nameAlg, z, label, ephemeralX, receiverX, hash.size * 8);
    const encryptedSeed = new Writer().sized16(ephemeralX).sized16(ephemeralY).finish();
    return { seed, encryptedSeed };
  }
  throw new SigilError('tpm.protector_invalid', 'the receiving key must be an RSA or ECC key', { type: receiver.type });
}
