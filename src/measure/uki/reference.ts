import { digest, type HashName } from '../../core/hash.ts';
import { toHex } from '../../core/hex.ts';
import type { PcrBank, ReferenceValue } from '../reference-values/document.ts';
import type { UkiPrediction } from './predict.ts';

/**
 * A prediction as a reference-value document: plain JSON a verifier can compare a TPM quote or a
 * replayed event log against. Bank names are the TCG/tpm2-tools spellings (sha256), digests lower
 * hex. `events` keeps every predicted measurement, so a mismatch can be traced to one component.
 */

export const UKI_REFERENCE_TYPE = 'sigil.reference-values.uki/1';

export const BANK_LABELS: Record<HashName, string> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' };

export interface UkiReferenceDocument {
  type: typeof UKI_REFERENCE_TYPE;
  subject: { kind: 'uki'; name?: string; size: number; sha256: string };
  stub: UkiPrediction['stub'];
  cmdline?: string;
  sections: UkiPrediction['sections'];
  /** bank label → PCR index → hex value. */
  pcrs: Record<string, Record<string, string>>;
  events: { pcr: number; type: string; description: string; by: string; digests: Record<string, string> }[];
  unpredicted: UkiPrediction['unpredicted'];
  notes: string[];
  /** The same PCR values as `tpm-pcr` entries for a signed reference-value document. */
  referenceValues: ReferenceValue[];
}

/** One `tpm-pcr` reference value per predicted PCR and bank (src/measure/reference-values). */
export function ukiPcrReferenceValues(prediction: UkiPrediction, subject: { name: string; sha256: string }): ReferenceValue[] {
  const values: ReferenceValue[] = [];
  for (const bank of prediction.banks) {
    for (const [pcr, value] of Object.entries(prediction.pcrs[bank] ?? {})) {
      if (pcr === '12' && !prediction.events.some((e) => e.pcr === 12)) continue;
      values.push({
        kind: 'tpm-pcr',
        index: Number(pcr),
        bank: BANK_LABELS[bank] as PcrBank,
        value: toHex(value),
        label: `UKI ${subject.name} PCR ${pcr}`,
        sources: [{ name: subject.name, sha256: subject.sha256 }],
        parameters: { stubVersion: prediction.stub.version, ...(prediction.cmdline !== undefined ? { cmdline: prediction.cmdline } : {}) },
      });
    }
  }
  return values;
}

export async function ukiReferenceDocument(uki: Uint8Array, prediction: UkiPrediction, name?: string): Promise<UkiReferenceDocument> {
  const sha256 = toHex(await digest('SHA-256', uki));
  const pcrs: Record<string, Record<string, string>> = {};
  for (const bank of prediction.banks) {
    const values = prediction.pcrs[bank] ?? {};
    pcrs[BANK_LABELS[bank]] = Object.fromEntries(Object.entries(values).map(([pcr, value]) => [pcr, toHex(value)]));
  }
  return {
    type: UKI_REFERENCE_TYPE,
    subject: { kind: 'uki', ...(name ? { name } : {}), size: uki.length, sha256 },
    stub: prediction.stub,
    ...(prediction.cmdline !== undefined ? { cmdline: prediction.cmdline } : {}),
    sections: prediction.sections,
    pcrs,
    events: prediction.events.map((e) => ({
      pcr: e.pcr,
      type: e.type,
      description: e.description,
      by: e.by,
      digests: Object.fromEntries(Object.entries(e.digests).map(([bank, value]) => [BANK_LABELS[bank as HashName], toHex(value)])),
    })),
    unpredicted: prediction.unpredicted,
    notes: prediction.notes,
    referenceValues: ukiPcrReferenceValues(prediction, { name: name ?? 'uki.efi', sha256 }),
  };
}
