import { concatBytes } from '../../core/bytes.ts';
import { SigilError, isSigilError } from '../../core/errors.ts';
import { assertPublicKey, verifySignature } from '../../core/signature.ts';
import { littleToBigEndian } from './little-endian.ts';
import { SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384, type SnpReport } from './report.ts';

/**
 * The report signature: ECDSA P-384 with SHA-384 over bytes 0x000..0x29F (Firmware ABI 1.58,
 * table 141: R and S each 72 bytes, little-endian, zero-extended). WebCrypto wants the IEEE P1363
 * form: R then S, each 48 bytes big-endian. Checked through core/signature.ts (node:crypto on
 * Node, WebCrypto in browsers; the key imported once per VCEK/VLEK).
 */
export function reportSignatureP1363(report: SnpReport): Uint8Array {
  const r = littleToBigEndian(report.signatureR, 48);
  const s = littleToBigEndian(report.signatureS, 48);
  if (!r || !s) throw new SigilError('snp.signature_invalid', 'the report signature R or S does not fit P-384 (high bytes are not zero)');
  return concatBytes(r, s);
}

/** A report-verification key: the VCEK's or VLEK's SubjectPublicKeyInfo, checked to be P-384. */
export interface ReportKey {
  readonly spki: Uint8Array;
}

const P384 = { alg: 'ECDSA', hash: 'SHA-384', namedCurve: 'P-384' } as const;

function keyError(error: unknown): unknown {
  if (!isSigilError(error, 'core.public_key_invalid')) return error;
  return new SigilError('snp.endorsement_key_invalid', 'the endorsement key is not an ECDSA P-384 public key', { cause: error.message }, { cause: error });
}

/** Check a P-384 public key (SPKI DER) for report verification (the imported key is cached). */
export async function reportKeyFromSpki(spki: Uint8Array): Promise<ReportKey> {
  try {
    await assertPublicKey({ ...P384, key: { spki } });
  } catch (error) {
    throw keyError(error);
  }
  return { spki };
}

/** A WebCrypto key for report verification (the same check, for callers that hold CryptoKeys). */
export async function importReportKey(spki: Uint8Array): Promise<CryptoKey> {
  try {
    return await globalThis.crypto.subtle.importKey('spki', spki as Uint8Array<ArrayBuffer>, { name: 'ECDSA', namedCurve: 'P-384' }, false, ['verify']);
  } catch (error) {
    throw new SigilError('snp.endorsement_key_invalid', 'the endorsement key is not an ECDSA P-384 public key', { cause: String(error) }, { cause: error });
  }
}

/** Throws snp.signature_invalid unless `key` signed the report. */
export async function verifyReportSignature(report: SnpReport, key: ReportKey | CryptoKey): Promise<void> {
  if (report.signatureAlgo !== SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384) {
    throw new SigilError('snp.signature_algorithm_unsupported', `signature algorithm ${report.signatureAlgo} is not ECDSA P-384 with SHA-384 (1)`, { signatureAlgo: report.signatureAlgo });
  }
  const signature = reportSignatureP1363(report);
  let ok: boolean;
  if ('spki' in key) {
    try {
      ok = await verifySignature({ ...P384, key: { spki: key.spki }, signature, data: report.signedBytes });
    } catch (error) {
      throw keyError(error);
    }
  } else {
    ok = await globalThis.crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, key, signature as Uint8Array<ArrayBuffer>, report.signedBytes as Uint8Array<ArrayBuffer>);
  }
  if (!ok) throw new SigilError('snp.signature_invalid', 'the report signature does not verify with the endorsement key (VCEK/VLEK)');
}
