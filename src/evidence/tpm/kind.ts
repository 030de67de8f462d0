import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64, fromHex, toHex } from '../../core/hex.ts';
import { hashAlgFromLabel } from '../../tpm/algorithms.ts';
import { TPMA_OBJECT } from '../../tpm/constants.ts';
import { unmarshal } from '../../tpm/marshal/codec.ts';
import { objectName } from '../../tpm/names.ts';
import { TPMT_PUBLIC, type TpmPublic } from '../../tpm/structures/public.ts';
import type { EvidenceKindEntry, TrustContext } from '../registry.ts';
import { verified, type Verified } from '../verifier.ts';
import { appraiseTpm, checkTpmPolicy, type TpmAppraisalPolicy } from './appraise.ts';
import { parseQuote, verifyQuote, type ParsedQuote } from './quote.ts';

/**
 * TPM quote evidence for the broker. Wire format (JSON, every binary field base64url or hex):
 *
 *   { "quote": b64url TPMS_ATTEST, "signature": b64url TPMT_SIGNATURE,
 *     "pcrs": { "sha256": { "0": hex, "7": hex, ... }, ... } }
 *
 * The AK is never taken from the evidence: it is the enrolled device's (trust.device), whose AK
 * was proven by EK certificate + credential activation, an AK certificate, or pinned by an admin.
 */
export interface TpmEvidence {
  quote: ParsedQuote;
  pcrValues: Map<number, Map<number, Uint8Array>>;
}

export interface TpmClaims {
  device: string;
  akName: string;
  pcrs: Record<string, Record<number, string>>;
  extraData: string;
  clock: string;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: string;
}

/** An AK must be a restricted signing key the TPM made and cannot export (TCG EK/AK profile). */
export const AK_REQUIRED_ATTRIBUTES = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;

export function checkAkPublic(akPublic: TpmPublic): void {
  const attributes = akPublic.objectAttributes;
  if ((attributes & AK_REQUIRED_ATTRIBUTES) !== AK_REQUIRED_ATTRIBUTES || attributes & TPMA_OBJECT.decrypt) {
    throw new SigilError('tpm.ak_attributes_invalid', 'the AK must be a restricted, fixed, TPM-generated signing key', { attributes });
  }
}

function bytesField(body: Record<string, unknown>, name: string): Uint8Array {
  const value = body[name];
  if (typeof value !== 'string' || value.length === 0) throw new SigilError('tpm.evidence_malformed', `TPM evidence needs "${name}" (base64url)`);
  return fromBase64(value);
}

export function parseTpmEvidence(body: unknown): TpmEvidence {
  try {
    if (typeof body !== 'object' || body === null) throw new SigilError('tpm.evidence_malformed', 'TPM evidence must be a JSON object');
    const input = body as Record<string, unknown>;
    const quote = parseQuote(bytesField(input, 'quote'), bytesField(input, 'signature'));
    const pcrValues = new Map<number, Map<number, Uint8Array>>();
    const pcrs = input.pcrs;
    if (typeof pcrs !== 'object' || pcrs === null) throw new SigilError('tpm.evidence_malformed', 'TPM evidence needs "pcrs": bank → index → hex');
    for (const [bank, values] of Object.entries(pcrs as Record<string, unknown>)) {
      const alg = hashAlgFromLabel(bank);
      const map = new Map<number, Uint8Array>();
      if (typeof values !== 'object' || values === null) throw new SigilError('tpm.evidence_malformed', `PCR bank "${bank}" must map index → hex`);
      for (const [index, value] of Object.entries(values as Record<string, unknown>)) {
        if (!/^\d{1,2}$/.test(index) || typeof value !== 'string') throw new SigilError('tpm.evidence_malformed', `PCR ${bank}:${index} is not index → hex`);
        map.set(Number(index), fromHex(value));
      }
      pcrValues.set(alg, map);
    }
    return { quote, pcrValues };
  } catch (error) {
    throw asSigilError(error, 'tpm.evidence_malformed', 'the TPM evidence could not be parsed');
  }
}

export async function verifyTpmEvidence(evidence: TpmEvidence, trust: TrustContext): Promise<Verified<TpmClaims>> {
  const device = trust.device;
  if (!device?.material.akPublic) throw new SigilError('tpm.device_not_enrolled', 'TPM evidence is only trusted from an enrolled device (no AK on record)');
  const akPublic = unmarshal(TPMT_PUBLIC, fromHex(device.material.akPublic), 'tpm.device_material_invalid');
  checkAkPublic(akPublic);
  // The nonce binding is the broker's to check (registry.ts): give verifyQuote the quote's own
  // extraData so it checks signature and PCR digest, and report extraData as the binding data.
  const extraData = evidence.quote.attest.extraData;
  const checked = await verifyQuote(evidence.quote, { akPublic, nonce: extraData, pcrValues: evidence.pcrValues });
  return verified(
    'tpm',
    {
      device: device.id,
      akName: toHex(await objectName(akPublic)),
      pcrs: checked.pcrs,
      extraData: toHex(extraData),
      clock: checked.clock.toString(),
      resetCount: checked.resetCount,
      restartCount: checked.restartCount,
      safe: checked.safe,
      firmwareVersion: checked.firmwareVersion.toString(16),
    },
    trust.at,
  );
}

export const tpmEvidenceKind: EvidenceKindEntry<TpmEvidence, TpmClaims, TpmAppraisalPolicy> = {
  description: 'TPM 2.0 quote from an enrolled attestation key',
  needsEnrolment: true,
  parse: parseTpmEvidence,
  verify: verifyTpmEvidence,
  bindingData: (v) => fromHex(v.claims.extraData),
  checkPolicy: checkTpmPolicy,
  appraise: appraiseTpm,
  summary: (v) => ({ device: v.claims.device, akName: v.claims.akName, pcrs: v.claims.pcrs }),
};
