import { concatBytes } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { littleToBigEndian } from './little-endian.ts';
import { SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384, type SnpReport } from './report.ts';

/**
 * The report signature: ECDSA P-384 with SHA-384 over bytes 0x000..0x29F (Firmware ABI 1.58,
 * table 141: R and S each 72 bytes, little-endian, zero-extended). WebCrypto wants the IEEE P1363
 * form: R then S, each 48 bytes big-endian.
 */
export function reportSignatureP1363(report: SnpReport): Uint8Array {
  const r = littleToBigEndian(report.signatureR, 48);
  const s = littleToBigEndian(report.signatureS, 48);
  if (!r || !s) throw new SigilError('snp.signature_invalid', 'the report signature R or S does not fit P-384 (high bytes are not zero)');
  return concatBytes(r, s);
}

/** Import a P-384 public key (SPKI DER) for report verification. */
export async function importReportKey(spki: Uint8Array): Promise<CryptoKey> {
  try {
    return await globalThis.crypto.subtle.importKey('spki', spki as Uint8Array<ArrayBuffer>, { name: 'ECDSA', namedCurve: 'P-384' }, false, ['verify']);
  } catch (error) {
    throw new SigilError('snp.endorsement_key_invalid', 'the endorsement key is not an ECDSA P-384 public key', { cause: String(error) }, { cause: error });
  }
}

/** Throws snp.signature_invalid unless `key` signed the report. */
export async function verifyReportSignature(report: SnpReport, key: CryptoKey): Promise<void> {
  if (report.signatureAlgo !== SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384) {
    throw new SigilError('snp.signature_algorithm_unsupported', `signature algorithm ${report.signatureAlgo} is not ECDSA P-384 with SHA-384 (1)`, { signatureAlgo: report.signatureAlgo });
  }
  const signature = reportSignatureP1363(report);
  const ok = await globalThis.crypto.subtle.verify(
    { name: 'ECDSA', hash: 'SHA-384' },
    key,
    signature as Uint8Array<ArrayBuffer>,
    report.signedBytes as Uint8Array<ArrayBuffer>,
  );
  if (!ok) throw new SigilError('snp.signature_invalid', 'the report signature does not verify with the endorsement key (VCEK/VLEK)');
}
