/**
 * The GCE COS 85 attestation (google/go-tpm-tools internal/test/attestations/gce-cos-85-nonce9009.pb)
 * as a Sigil TPM evidence bundle, built from the derived fixture files: three quotes (one per
 * bank), PCR values, AK public, AK certificate, and the event log.
 */
import { toBase64, toHex } from '../../../src/core/hex.ts';
import { fixture, fixtureText } from '../../support/fixtures.ts';

export const GCE_NONCE = new Uint8Array([0x90, 0x09]);
/** go-tpm-tools' test verifies "now"; every certificate is valid 2021-08-31 .. 2051-08-24. */
export const GCE_AT = new Date('2024-06-01T00:00:00Z');
export const GCE_AK_NAME = '000bf175bdb57297b2b289973f819863d6c9d09c236725676914f4248c9a2404c2a4';

export interface GceQuote {
  pcr_bank: string;
  tpms_attest_hex: string;
  tpmt_signature_hex: string;
  pcrs: Record<string, string>;
}

export function gceQuotes(): Record<string, GceQuote> {
  return JSON.parse(fixtureText('tpm/gotpmtools_gce_cos85_quotes_and_pcrs.json')).quotes;
}

export function gceBundle(options: { intermediateInBundle?: boolean; eventLog?: boolean } = {}): Record<string, unknown> {
  const quotes = gceQuotes();
  const pcrs: Record<string, Record<string, string>> = {};
  for (const [bank, q] of Object.entries(quotes)) pcrs[bank] = q.pcrs;
  return {
    kind: 'tpm',
    quotes: Object.values(quotes).map((q) => ({ quote: q.tpms_attest_hex, signature: q.tpmt_signature_hex })),
    pcrs,
    akPublic: toHex(fixture('tpm/gotpmtools_gce_cos85_ak_pub.tpmt_public.bin')),
    akCertificate: toBase64(fixture('tpm/gotpmtools_gce_cos85_ak_cert.der')),
    ...(options.intermediateInBundle === false ? {} : { akCertificateChain: [toBase64(fixture('tpm/gce_ek_intermediate_ca2.crt'))] }),
    ...(options.eventLog === false ? {} : { eventLog: toBase64(fixture('tpm/gotpmtools_gce_cos85_eventlog.bin')) }),
  };
}

export function gceRoot(): Uint8Array {
  return fixture('tpm/gce_ek_root_ca.cer');
}

export function gceIntermediate(): Uint8Array {
  return fixture('tpm/gce_ek_intermediate_ca2.crt');
}
