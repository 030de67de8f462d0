import { utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { base64url } from '../../tpm/jwk.ts';

/**
 * A credential-activation record: the verifier's own statement that it ran the TPM 2.0
 * MakeCredential / ActivateCredential protocol (Part 1, 24) for an attestation key and an
 * endorsement key, and that the TPM holding the EK recovered the secret. That proves the AK lives
 * in the same TPM as the EK, so an EK certificate chain then vouches for the AK.
 *
 *   {
 *     "version": 1,
 *     "ekCertificateSha256": "<hex SHA-256 of the EK certificate DER>",
 *     "akName": "<hex TPM name of the AK: nameAlg || H(TPMT_PUBLIC)>",
 *     "activatedAt": "<ISO 8601 time the secret came back>",
 *     "verifier": "<free-form id of the verifier key that signed>",
 *     "signature": "<base64url ECDSA P-256 SHA-256 signature, IEEE P1363 r||s>"
 *   }
 *
 * The signature covers UTF-8("sigil-tpm-activation-v1\n" + JSON of the first five fields in the
 * order above). A record from the verifier's own store (trust.activationRecords) needs no
 * signature; a record carried inside evidence must be signed by a key in trust.activationKeys.
 */
export interface ActivationRecord {
  version: 1;
  ekCertificateSha256: string;
  akName: string;
  activatedAt: string;
  verifier: string;
  signature?: string;
}

const DOMAIN = 'sigil-tpm-activation-v1\n';
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;

function fail(message: string): never {
  throw new SigilError('tpm.activation_record_invalid', message);
}

export function parseActivationRecord(value: unknown): ActivationRecord {
  if (typeof value !== 'object' || value === null) fail('the activation record is not an object');
  const v = value as Record<string, unknown>;
  if (v.version !== 1) fail('the activation record version is not 1');
  for (const key of ['ekCertificateSha256', 'akName', 'activatedAt', 'verifier'] as const) {
    if (typeof v[key] !== 'string') fail(`the activation record has no string "${key}"`);
  }
  if (!/^[0-9a-f]{64}$/.test(v.ekCertificateSha256 as string)) fail('ekCertificateSha256 is not 64 lowercase hex digits');
  if (!/^[0-9a-f]{4}([0-9a-f]{2}){20,64}$/.test(v.akName as string)) fail('akName is not a hex TPM name');
  if (Number.isNaN(Date.parse(v.activatedAt as string))) fail('activatedAt is not a date');
  if (v.signature !== undefined && typeof v.signature !== 'string') fail('signature is not a string');
  return {
    version: 1,
    ekCertificateSha256: v.ekCertificateSha256 as string,
    akName: v.akName as string,
    activatedAt: v.activatedAt as string,
    verifier: v.verifier as string,
    signature: v.signature as string | undefined,
  };
}

function signedBytes(record: ActivationRecord): Uint8Array {
  const { version, ekCertificateSha256, akName, activatedAt, verifier } = record;
  return utf8.encode(DOMAIN + JSON.stringify({ version, ekCertificateSha256, akName, activatedAt, verifier }));
}

/** Sign a record with the verifier's ECDSA P-256 private key (done right after ActivateCredential). */
export async function signActivationRecord(record: Omit<ActivationRecord, 'signature'>, privateKey: CryptoKey): Promise<ActivationRecord> {
  const unsigned = { ...record, version: 1 as const };
  const signature = await globalThis.crypto.subtle.sign(SIGNING, privateKey, signedBytes(unsigned) as Uint8Array<ArrayBuffer>);
  return { ...unsigned, signature: base64url(new Uint8Array(signature)) };
}

export async function activationKey(key: CryptoKey | JsonWebKey): Promise<CryptoKey> {
  if (key instanceof CryptoKey) return key;
  return globalThis.crypto.subtle.importKey('jwk', key, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
}

/** True when one of `keys` signed the record. */
export async function activationSignatureValid(record: ActivationRecord, keys: (CryptoKey | JsonWebKey)[]): Promise<boolean> {
  if (!record.signature) return false;
  let signature: Uint8Array;
  try {
    signature = fromBase64(record.signature);
  } catch {
    return false;
  }
  for (const key of keys) {
    const cryptoKey = await activationKey(key);
    if (await globalThis.crypto.subtle.verify(SIGNING, cryptoKey, signature as Uint8Array<ArrayBuffer>, signedBytes(record) as Uint8Array<ArrayBuffer>)) return true;
  }
  return false;
}
