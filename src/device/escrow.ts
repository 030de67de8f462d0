import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { SigilError } from '../core/errors.ts';
import { fromBase64, toBase64, toHex } from '../core/hex.ts';
import { field, hexField, type Json } from './json-input.ts';

/**
 * Escrow: data only the vendor can read, inside a file anyone may hold (the provisioning record
 * carries a device's TPM hierarchy authorizations this way). ECIES over P-256, the same
 * construction as JWE "ECDH-ES" with A256GCM, spelled out in JSON:
 *
 *   { "alg": "ECDH-ES-P256+HKDF-SHA256+A256GCM",
 *     "epk": base64 SPKI DER of a fresh ephemeral P-256 key,
 *     "iv": hex (12 bytes), "ciphertext": hex, "tag": hex (16 bytes) }
 *
 * key = HKDF-SHA256(ikm = ECDH(ephemeral, vendor escrow key), salt = empty,
 *       info = "sigil escrow v1" ‖ 0x00 ‖ context), 32 bytes; AES-256-GCM with AAD = context.
 * The context (e.g. "serial ‖ product ‖ EK name") binds a blob to the device it came from: moved
 * into another device's record, it no longer opens.
 */
export const ESCROW_ALG = 'ECDH-ES-P256+HKDF-SHA256+A256GCM';

export interface EscrowBlob {
  alg: typeof ESCROW_ALG;
  epk: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

function deriveKey(shared: Uint8Array, context: Uint8Array): Buffer {
  const info = Buffer.concat([Buffer.from('sigil escrow v1\0'), context]);
  return Buffer.from(hkdfSync('sha256', shared, new Uint8Array(0), info, 32));
}

/** The public escrow key, checked to be P-256. */
export function checkEscrowKey(recipient: KeyObject): KeyObject {
  const publicKey = recipient.type === 'public' ? recipient : createPublicKey(recipient);
  if (publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new SigilError('device.escrow_key_invalid', 'the escrow key must be an ECDH P-256 key');
  return publicKey;
}

export function escrowEncrypt(recipient: KeyObject, plaintext: Uint8Array, context: Uint8Array): EscrowBlob {
  const publicKey = checkEscrowKey(recipient);
  const ephemeral = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey });
  const key = deriveKey(shared, context);
  shared.fill(0);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(context);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  key.fill(0);
  return {
    alg: ESCROW_ALG,
    epk: toBase64(new Uint8Array(ephemeral.publicKey.export({ type: 'spki', format: 'der' }))),
    iv: toHex(iv),
    ciphertext: toHex(ciphertext),
    tag: toHex(cipher.getAuthTag()),
  };
}

/** Check the shape of an escrow blob read from a file. */
export function parseEscrowBlob(value: Json, code: string): EscrowBlob {
  if (value.alg !== ESCROW_ALG) throw new SigilError(code, `escrow algorithm must be ${ESCROW_ALG}`);
  const epk = field(value, 'epk', 'string', code);
  if (!/^[A-Za-z0-9+/=]{1,400}$/.test(epk)) throw new SigilError(code, 'escrow field "epk" is not base64');
  hexField(value, 'iv', code, { size: 12 });
  hexField(value, 'tag', code, { size: 16 });
  hexField(value, 'ciphertext', code, { max: 4096 });
  return { alg: ESCROW_ALG, epk, iv: value.iv as string, ciphertext: value.ciphertext as string, tag: value.tag as string };
}

export function escrowDecrypt(recipient: KeyObject, blob: EscrowBlob, context: Uint8Array): Uint8Array {
  if (recipient.type !== 'private') throw new SigilError('device.escrow_key_invalid', 'opening an escrow blob needs the vendor escrow private key');
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(fromBase64(blob.epk)), format: 'der', type: 'spki' });
  } catch (error) {
    throw new SigilError('device.escrow_invalid', 'the escrow blob carries no valid ephemeral key', {}, { cause: error });
  }
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey: recipient, publicKey });
  } catch (error) {
    throw new SigilError('device.escrow_invalid', 'the escrow blob was made for another key type', {}, { cause: error });
  }
  const key = deriveKey(shared, context);
  shared.fill(0);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(blob.iv, 'hex'));
    decipher.setAAD(context);
    decipher.setAuthTag(Buffer.from(blob.tag, 'hex'));
    return new Uint8Array(Buffer.concat([decipher.update(Buffer.from(blob.ciphertext, 'hex')), decipher.final()]));
  } catch (error) {
    throw new SigilError('device.escrow_open_failed', 'the escrow blob does not open with this key for this device (wrong key, another device, or altered)', {}, { cause: error });
  } finally {
    key.fill(0);
  }
}
