import { SigilError, isSigilError } from '../../core/errors.ts';
import { verifySignature, type SignatureCheck } from '../../core/signature.ts';
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
 * Verify a TPMT_SIGNATURE over `message` (core/signature.ts: node:crypto on Node, WebCrypto in
 * browsers). RSASSA and ECDSA map directly; for RSAPSS the TPM's salt length is the digest size
 * on current TPMs and the largest allowed on some older ones (Part 1, B.7), so both are tried.
 */
export async function verifyTpmSignature(publicArea: TpmPublic, message: Uint8Array, signature: TpmSignature, errorCode: string): Promise<void> {
  const fail = (why: string) => new SigilError(errorCode, `signature check failed: ${why}`);
  const check = async (params: Omit<SignatureCheck, 'data'>): Promise<boolean> => {
    try {
      return await verifySignature({ ...params, data: message });
    } catch (error) {
      if (isSigilError(error, 'core.public_key_invalid')) throw fail(error.message);
      throw error;
    }
  };
  if ('sig' in signature) {
    if (publicArea.type !== TPM_ALG.RSA) throw fail('an RSA signature for a non-RSA key');
    const hash = hashAlg(signature.hashAlg);
    const key = { rsaModulus: publicArea.unique, rsaExponent: publicArea.exponent === 0 ? 65537 : publicArea.exponent };
    if (signature.sigAlg === TPM_ALG.RSASSA) {
      if (await check({ alg: 'RSASSA-PKCS1-v1_5', hash: hash.name, key, signature: signature.sig })) return;
      throw fail('RSASSA signature does not verify');
    }
    for (const saltLength of [hash.size, publicArea.unique.length - hash.size - 2]) {
      if (await check({ alg: 'RSA-PSS', hash: hash.name, key, signature: signature.sig, saltLength })) return;
    }
    throw fail('RSAPSS signature does not verify');
  }
  if ('r' in signature && signature.sigAlg === TPM_ALG.ECDSA) {
    if (publicArea.type !== TPM_ALG.ECC) throw fail('an ECDSA signature for a non-ECC key');
    const size = curveSize(publicArea.curveId);
    if (signature.r.length > size || signature.s.length > size) throw fail('ECDSA r or s is longer than the curve');
    const raw = new Uint8Array(size * 2);
    raw.set(leftPad(signature.r, size), 0);
    raw.set(leftPad(signature.s, size), size);
    const jwk = publicAreaToJwk(publicArea) as JsonWebKey & { crv: 'P-256' | 'P-384' | 'P-521' };
    const { x, y } = publicArea.unique;
    if (x.length > size || y.length > size) throw fail('the ECC public key is longer than its curve');
    const point = new Uint8Array(size * 2);
    point.set(leftPad(x, size), 0);
    point.set(leftPad(y, size), size);
    if (await check({ alg: 'ECDSA', hash: hashAlg(signature.hashAlg).name, namedCurve: jwk.crv, key: { ecPoint: point }, signature: raw })) return;
    throw fail('ECDSA signature does not verify');
  }
  throw fail(`signature scheme 0x${signature.sigAlg.toString(16)} is not supported`);
}
