import { compactDecrypt, exportJWK, generateKeyPair, type CryptoKey as JoseKey } from 'jose';
import type { RuntimeJwk } from '../policy/binding.ts';

/**
 * The attested workload's runtime key: generated fresh for a session, its public half bound into
 * the evidence (SHA-256(nonce ‖ thumbprint)), its private half the only way to open a released
 * secret (a JWE). EC P-256 by default (ECDH-ES+A256KW); RSA-OAEP-256 with an RSA key.
 */
export interface RuntimeKey {
  publicJwk: RuntimeJwk;
  privateKey: JoseKey;
}

export async function generateRuntimeKey(type: 'ec' | 'rsa' = 'ec'): Promise<RuntimeKey> {
  const { publicKey, privateKey } = type === 'ec' ? await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true }) : await generateKeyPair('RSA-OAEP-256', { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(publicKey);
  const publicJwk: RuntimeJwk = jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv!, x: jwk.x!, y: jwk.y! } : { kty: 'RSA', n: jwk.n!, e: jwk.e! };
  return { publicJwk, privateKey };
}

export async function openReleasedSecret(jwe: string, key: RuntimeKey): Promise<Uint8Array> {
  const { plaintext } = await compactDecrypt(jwe, key.privateKey, { keyManagementAlgorithms: ['ECDH-ES+A256KW', 'RSA-OAEP-256'], contentEncryptionAlgorithms: ['A256GCM'] });
  return plaintext;
}
