import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../core/bytes.ts';
import { digest } from '../core/hash.ts';
import { SigilError } from '../core/errors.ts';
import { fromBase64, toBase64, toHex } from '../core/hex.ts';
import { create } from '../tpm/commands/object.ts';
import { TPM_ALG, TPMA_OBJECT } from '../tpm/constants.ts';
import { marshal, unmarshal } from '../tpm/marshal/codec.ts';
import { HmacSession } from '../tpm/session/hmac.ts';
import { TPM2B_PRIVATE } from '../tpm/structures/basic.ts';
import { TPM2B_PUBLIC, type TpmPublic } from '../tpm/structures/public.ts';
import { sealedDataTemplate } from '../tpm/templates.ts';
import { storageKey } from '../tpm/tpm-keys.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { sealingPolicy } from './boot-policy.ts';
import { checkProductId } from './identifiers.ts';
import { field, hexField, parseJsonObject } from './json-input.ts';

/**
 * Device secrets (disk passphrase, service keys) sealed for boot-time unseal.
 *
 * The TPM seals one random 32-byte data key under the SRK with
 * authPolicy = PolicyAuthorize(vendor policy key, ref(product)) (boot-policy.ts); the secrets
 * themselves — any number, any size — are AES-256-GCM encrypted under that key in the same file.
 * A new release needs a new signed policy, never a reseal.
 *
 * File format (JSON, "sigil.sealed-secrets.v1"):
 *   { "format": "sigil.sealed-secrets.v1", "productId": "acme-gw",
 *     "signer": hex (policy key name), "authPolicy": hex,
 *     "public": hex TPM2B_PUBLIC, "private": hex TPM2B_PRIVATE, "parentName": hex (SRK name),
 *     "iv": hex (12), "ciphertext": hex, "tag": hex (16) }
 * Plaintext: JSON { "<name>": base64, ... }. AAD: "sigil.sealed-secrets.v1" ‖ 0 ‖ productId ‖ 0 ‖
 * SHA-256(TPM2B_PUBLIC), so the ciphertext cannot be moved under another sealed key or product.
 * Nothing in the file is secret.
 */
export const SEALED_SECRETS_FORMAT = 'sigil.sealed-secrets.v1';
const SECRET_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_SECRETS_BYTES = 1024 * 1024;

export interface SealedSecrets {
  productId: string;
  signer: Uint8Array;
  authPolicy: Uint8Array;
  publicArea: TpmPublic;
  publicBytes: Uint8Array;
  privateBlob: Uint8Array;
  parentName: Uint8Array;
  iv: Uint8Array;
  ciphertext: Uint8Array;
  tag: Uint8Array;
}

async function associatedData(productId: string, publicBytes: Uint8Array): Promise<Uint8Array> {
  const head = new TextEncoder().encode(`${SEALED_SECRETS_FORMAT}\0${productId}\0`);
  const out = new Uint8Array(head.length + 32);
  out.set(head);
  out.set(await digest('SHA-256', publicBytes), head.length);
  return out;
}

export function checkSecretName(name: string): string {
  if (!SECRET_NAME.test(name)) throw new SigilError('device.secret_name_invalid', `secret name "${name.slice(0, 70)}" must be 1-64 letters, digits, ".", "_" or "-"`);
  return name;
}

export interface SealSecretsOptions {
  productId: string;
  /** The vendor policy-signing key's TPM name (trust.policySigning.name). */
  signer: Uint8Array;
  secrets: Record<string, Uint8Array>;
}

/**
 * Seal on the device, under its SRK. The session is salted to the SRK and encrypts Create's
 * inSensitive, so the data key never crosses the TPM bus in clear.
 */
export async function sealSecrets(tpm: Tpm, options: SealSecretsOptions): Promise<Record<string, string>> {
  const productId = checkProductId(options.productId);
  const names = Object.keys(options.secrets);
  if (names.length === 0) throw new SigilError('device.secrets_empty', 'give at least one secret to seal');
  names.forEach(checkSecretName);
  const plaintext = new TextEncoder().encode(JSON.stringify(Object.fromEntries(names.map((n) => [n, toBase64(options.secrets[n])]))));
  if (plaintext.length > MAX_SECRETS_BYTES) throw new SigilError('device.secrets_too_large', `the secrets exceed ${MAX_SECRETS_BYTES} bytes`);
  const authPolicy = await sealingPolicy(options.signer, productId);
  const dataKey = new Uint8Array(randomBytes(32));
  try {
    const srk = await storageKey(tpm);
    let created;
    try {
      const session = await HmacSession.start(tpm.client, { salt: { handle: srk.handle, publicArea: srk.publicArea }, decrypt: true });
      try {
        created = await tpm.client.run(create({ handle: srk.handle, name: srk.name, session }, { inSensitive: { data: dataKey }, inPublic: sealedDataTemplate({ authPolicy }) }));
      } finally {
        await session.flush(tpm.client).catch(() => undefined);
      }
    } finally {
      if (srk.transient) await tpm.flush(srk.handle).catch(() => undefined);
    }
    const publicBytes = marshal(TPM2B_PUBLIC, created.outPublic);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    cipher.setAAD(await associatedData(productId, publicBytes));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      format: SEALED_SECRETS_FORMAT,
      productId,
      signer: toHex(options.signer),
      authPolicy: toHex(authPolicy),
      public: toHex(publicBytes),
      private: toHex(marshal(TPM2B_PRIVATE, created.outPrivate)),
      parentName: toHex(srk.name),
      iv: toHex(iv),
      ciphertext: toHex(ciphertext),
      tag: toHex(cipher.getAuthTag()),
    };
  } finally {
    dataKey.fill(0);
    plaintext.fill(0);
  }
}

export function parseSealedSecrets(input: unknown): SealedSecrets {
  const code = 'device.sealed_secrets_invalid';
  const doc = parseJsonObject(input, code, 'sealed secrets file');
  if (doc.format !== SEALED_SECRETS_FORMAT) throw new SigilError(code, `not a Sigil sealed secrets file (format ${SEALED_SECRETS_FORMAT})`);
  const productId = checkProductId(field(doc, 'productId', 'string', code), code);
  const publicBytes = hexField(doc, 'public', code, { max: 1024 });
  const publicArea = unmarshal(TPM2B_PUBLIC, publicBytes, code);
  const authPolicy = hexField(doc, 'authPolicy', code, { size: 32 });
  if (publicArea.type !== TPM_ALG.KEYEDHASH || publicArea.nameAlg !== TPM_ALG.SHA256 || !constantTimeEqual(publicArea.authPolicy, authPolicy)) {
    throw new SigilError(code, 'the sealed key is not a SHA-256 sealed-data object under the stated policy');
  }
  if (publicArea.objectAttributes & TPMA_OBJECT.userWithAuth) throw new SigilError(code, 'the sealed key could be opened without the signed policy (userWithAuth is set)');
  const privateBytes = hexField(doc, 'private', code, { max: 2048 + 2 });
  return {
    productId,
    signer: hexField(doc, 'signer', code, { size: 34 }),
    authPolicy,
    publicArea,
    publicBytes,
    privateBlob: unmarshal(TPM2B_PRIVATE, privateBytes, code),
    parentName: hexField(doc, 'parentName', code, { max: 66 }),
    iv: hexField(doc, 'iv', code, { size: 12 }),
    ciphertext: hexField(doc, 'ciphertext', code, { max: 2 * MAX_SECRETS_BYTES }),
    tag: hexField(doc, 'tag', code, { size: 16 }),
  };
}

/** Check the file's policy is PolicyAuthorize(trusted signer, ref(product)). */
export async function assertSealedUnder(sealed: SealedSecrets, signer: Uint8Array, productId: string): Promise<void> {
  if (!constantTimeEqual(sealed.signer, signer)) throw new SigilError('device.sealed_secrets_foreign', "the secrets were sealed for another vendor's policy key");
  if (sealed.productId !== productId) {
    throw new SigilError('device.product_mismatch', `the secrets were sealed for product ${sealed.productId}, this device is product ${productId}`, { sealed: sealed.productId, device: productId });
  }
  if (!constantTimeEqual(sealed.authPolicy, await sealingPolicy(signer, productId))) {
    throw new SigilError('device.sealed_secrets_invalid', 'the sealed key policy is not the signed-policy authorization for this product');
  }
}

/** Decrypt the secrets with the unsealed data key. */
export async function openSecrets(sealed: SealedSecrets, dataKey: Uint8Array): Promise<Map<string, Uint8Array>> {
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, sealed.iv);
    decipher.setAAD(await associatedData(sealed.productId, sealed.publicBytes));
    decipher.setAuthTag(sealed.tag);
    plaintext = Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch (error) {
    throw new SigilError('device.secrets_tampered', 'the sealed secrets do not decrypt: the file was altered', {}, { cause: error });
  }
  try {
    const doc = parseJsonObject(new Uint8Array(plaintext), 'device.secrets_tampered', 'decrypted secrets');
    const out = new Map<string, Uint8Array>();
    for (const name of Object.keys(doc)) out.set(checkSecretName(name), fromBase64(field(doc, name, 'string', 'device.secrets_tampered')));
    return out;
  } finally {
    plaintext.fill(0);
  }
}
