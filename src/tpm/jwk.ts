import { SigilError } from '../core/errors.ts';
import { toBase64 } from '../core/hex.ts';
import { TPM_ALG, TPM_ECC_CURVE } from './constants.ts';
import type { TpmPublic } from './structures/public.ts';

/**
 * A TPM public area as a JSON Web Key, so isomorphic code can import it into WebCrypto and Node
 * code into a KeyObject (`crypto.createPublicKey({ key: jwk, format: 'jwk' })`).
 */
export type PublicJwk = { kty: 'RSA'; n: string; e: string } | { kty: 'EC'; crv: 'P-256' | 'P-384' | 'P-521'; x: string; y: string };

const CURVES: Record<number, { crv: 'P-256' | 'P-384' | 'P-521'; size: number }> = {
  [TPM_ECC_CURVE.NIST_P256]: { crv: 'P-256', size: 32 },
  [TPM_ECC_CURVE.NIST_P384]: { crv: 'P-384', size: 48 },
  [TPM_ECC_CURVE.NIST_P521]: { crv: 'P-521', size: 66 },
};

export function base64url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function leftPad(bytes: Uint8Array, size: number): Uint8Array {
  if (bytes.length >= size) return bytes;
  const out = new Uint8Array(size);
  out.set(bytes, size - bytes.length);
  return out;
}

export function curveSize(curveId: number): number {
  const curve = CURVES[curveId];
  if (!curve) throw new SigilError('tpm.curve_unsupported', `ECC curve 0x${curveId.toString(16)} is not supported`, { curveId });
  return curve.size;
}

export function publicAreaToJwk(publicArea: TpmPublic): PublicJwk {
  if (publicArea.type === TPM_ALG.RSA) {
    const exponent = publicArea.exponent === 0 ? 65537 : publicArea.exponent;
    const e = new Uint8Array([exponent >>> 24, (exponent >>> 16) & 0xff, (exponent >>> 8) & 0xff, exponent & 0xff]);
    let start = 0;
    while (start < 3 && e[start] === 0) start++;
    return { kty: 'RSA', n: base64url(publicArea.unique), e: base64url(e.subarray(start)) };
  }
  if (publicArea.type === TPM_ALG.ECC) {
    const curve = CURVES[publicArea.curveId];
    if (!curve) throw new SigilError('tpm.curve_unsupported', `ECC curve 0x${publicArea.curveId.toString(16)} is not supported`);
    return { kty: 'EC', crv: curve.crv, x: base64url(leftPad(publicArea.unique.x, curve.size)), y: base64url(leftPad(publicArea.unique.y, curve.size)) };
  }
  throw new SigilError('tpm.key_type_unsupported', 'only RSA and ECC public areas are keys', { type: publicArea.type });
}
