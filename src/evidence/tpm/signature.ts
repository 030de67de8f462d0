import { SigilError } from '../../core/errors.ts';
import { hashAlg } from '../../tpm/algorithms.ts';
import { TPM_ALG } from '../../tpm/constants.ts';
import { curveSize, publicAreaToJwk } from '../../tpm/jwk.ts';
import type { TpmPublic } from '../../tpm/structures/public.ts';
import type { TpmSignature } from '../../tpm/structures/signature.ts';

function leftPad(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length > size) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes, size - bytes.length);
  return out;
}

/**
 * Verify a TPMT_SIGNATURE over `message` with WebCrypto (isomorphic). RSASSA and ECDSA map
 * directly; for RSAPSS the TPM's salt length is the digest size on current TPMs and the largest
 * allowed on some older ones (Part 1, B.7), so both are tried.
 */
export async function verifyTpmSignature(publicArea: TpmPublic, message: Uint8Array, signature: TpmSignature, errorCode: string): Promise<void> {
  const fail = (why: string) => new SigilError(errorCode, `signature check failed: ${why}`);
  const data = message as Uint8Array<ArrayBuffer>;
  if ('sig' in signature) {
    if (publicArea.type !== TPM_ALG.RSA) throw fail('an RSA signature for a non-RSA key');
    if (await verifyRsa(publicArea, signature.sigAlg, signature.hashAlg, signature.sig, data)) return;
    throw fail(`${signature.sigAlg === TPM_ALG.RSASSA ? 'RSASSA' : 'RSAPSS'} signature does not verify`);
  }
  if ('r' in signature && signature.sigAlg === TPM_ALG.ECDSA) {
    if (publicArea.type !== TPM_ALG.ECC) throw fail('an ECDSA signature for a non-ECC key');
    const size = curveSize(publicArea.curveId);
    if (signature.r.length > size || signature.s.length > size) throw fail('ECDSA r or s is longer than the curve');
    const raw = new Uint8Array(size * 2);
    raw.set(leftPad(signature.r, size), 0);
    raw.set(leftPad(signature.s, size), size);
    const jwk = publicAreaToJwk(publicArea) as JsonWebKey;
    const key = await subtle().importKey('jwk', jwk, { name: 'ECDSA', namedCurve: jwk.crv! }, false, ['verify']);
    if (await subtle().verify({ name: 'ECDSA', hash: hashAlg(signature.hashAlg).name }, key, raw, data)) return;
    throw fail('ECDSA signature does not verify');
  }
  throw fail(`signature scheme 0x${signature.sigAlg.toString(16)} is not supported`);
}

function subtle(): SubtleCrypto {
  return globalThis.crypto.subtle;
}

async function verifyRsa(publicArea: TpmPublic & { type: typeof TPM_ALG.RSA }, sigAlg: number, hashId: number, sig: Uint8Array, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  const hash = hashAlg(hashId);
  const jwk = publicAreaToJwk(publicArea) as JsonWebKey;
  const signature = sig as Uint8Array<ArrayBuffer>;
  if (sigAlg === TPM_ALG.RSASSA) {
    const key = await subtle().importKey('jwk', jwk, { name: 'RSASSA-PKCS1-v1_5', hash: hash.name }, false, ['verify']);
    return subtle().verify('RSASSA-PKCS1-v1_5', key, signature, data);
  }
  const key = await subtle().importKey('jwk', jwk, { name: 'RSA-PSS', hash: hash.name }, false, ['verify']);
  for (const saltLength of [hash.size, publicArea.unique.length - hash.size - 2]) {
    if (await subtle().verify({ name: 'RSA-PSS', saltLength }, key, signature, data)) return true;
  }
  return false;
}
