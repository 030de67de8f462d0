import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64, fromHex, toHex } from '../../core/hex.ts';
import { QUIRKS, type QuirkId } from '../../eventlog/quirks.ts';
import { TPMA_OBJECT } from '../../tpm/constants.ts';
import { unmarshal } from '../../tpm/marshal/codec.ts';
import { objectName } from '../../tpm/names.ts';
import { TPMT_PUBLIC, type TpmPublic } from '../../tpm/structures/public.ts';
import type { EvidenceKindEntry, TrustContext } from '../registry.ts';
import { verified, type Verified } from '../verifier.ts';
import { appraiseTpm, checkTpmPolicy, type TpmAppraisalPolicy } from './appraise.ts';
import type { TpmBundleClaims } from './bundle-claims.ts';
import { verifyTpmBundle } from './bundle-verify.ts';
import { parseTpmBundle, type TpmBundle } from './bundle.ts';

/**
 * TPM evidence for the broker: the TPM evidence bundle (bundle.ts) — quotes, PCR values, and
 * optionally the firmware event log and the IMA log — verified in full (bundle-verify.ts: every
 * quote's signature and PCR digest, event-log replay against the quoted PCRs, boot state, IMA).
 * Wire format (JSON):
 *
 *   { "quote": b64url TPMS_ATTEST, "signature": b64url TPMT_SIGNATURE,   or "quotes": [{quote, signature}]
 *     "pcrs": { "sha256": { "0": hex, "7": hex, ... }, ... },
 *     "eventLog"?: base64 TCG event log (binary_bios_measurements),
 *     "imaLog"?: base64 IMA list, "imaTemplateHash"?: "sha1" | "sha256",
 *     "akPublic"?: hex TPMT_PUBLIC (must then be the enrolled AK) }
 *
 * quote and signature may also be hex, as `sigil tpm quote --json` prints them.
 *
 * The AK is never trusted from the evidence: it is the enrolled device's (trust.device), whose
 * AK was proven by EK certificate + credential activation, an AK certificate, or pinned by an
 * admin. verify() pins exactly that AK's name. Every known event-log quirk is enabled while
 * verifying, so the facts come through; each one applied is in the claims, and the appraisal
 * warns about it, or refuses it when the policy lists the quirks it accepts (`allowedQuirks`).
 */
export interface TpmEvidence {
  /** The parsed bundle; its akPublic is the evidence's own when it carried one. */
  bundle: TpmBundle;
  /** Whether the evidence named an AK (else the enrolled AK is used). */
  carriesAk: boolean;
}

export interface TpmClaims extends TpmBundleClaims {
  /** The enrolled device the AK belongs to. */
  device: string;
}

/** An AK must be a restricted signing key the TPM made and cannot export (TCG EK/AK profile). */
export const AK_REQUIRED_ATTRIBUTES = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;

export function checkAkPublic(akPublic: TpmPublic): void {
  const attributes = akPublic.objectAttributes;
  if ((attributes & AK_REQUIRED_ATTRIBUTES) !== AK_REQUIRED_ATTRIBUTES || attributes & TPMA_OBJECT.decrypt) {
    throw new SigilError('tpm.ak_attributes_invalid', 'the AK must be a restricted, fixed, TPM-generated signing key', { attributes });
  }
}

const ALL_QUIRKS: readonly QuirkId[] = QUIRKS.map((q) => q.id);
const CODE = 'tpm.evidence_malformed';
const HEX = /^([0-9a-f]{2})+$/;

/**
 * The bundle parser wants an AK public area; broker evidence normally has none (the AK is the
 * enrolled one, known only at verify). This well-formed ECC P-256 signing template with an empty
 * point stands in while parsing and is never verified against: verify() replaces it.
 */
const ENROLLED_AK_PLACEHOLDER = [
  '0023', // type TPM_ALG_ECC
  '000b', // nameAlg SHA-256
  '00050072', // fixedTPM | fixedParent | sensitiveDataOrigin | userWithAuth | restricted | sign
  '0000', // authPolicy: empty
  '0010', // symmetric: NULL
  '0018000b', // scheme: ECDSA with SHA-256
  '0003', // curve NIST P-256
  '0010', // kdf: NULL
  '00000000', // unique: empty x and y
].join('');

/** base64url (the broker's format) or lowercase hex (the bundle's) → hex for the bundle parser. */
function binaryField(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0) throw new SigilError(CODE, `TPM evidence needs "${what}" (base64url)`);
  return HEX.test(value) ? value : toHex(fromBase64(value));
}

export function parseTpmEvidence(body: unknown): TpmEvidence {
  try {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new SigilError(CODE, 'TPM evidence must be a JSON object');
    const input = body as Record<string, unknown>;
    if (typeof input.pcrs !== 'object' || input.pcrs === null) throw new SigilError(CODE, 'TPM evidence needs "pcrs": bank → index → hex');
    const normalized: Record<string, unknown> = { ...input, akPublic: input.akPublic ?? ENROLLED_AK_PLACEHOLDER };
    if (input.quote !== undefined || input.signature !== undefined) {
      normalized.quote = binaryField(input.quote, 'quote');
      normalized.signature = binaryField(input.signature, 'signature');
    }
    if (Array.isArray(input.quotes)) {
      normalized.quotes = input.quotes.map((q: unknown, i) => {
        const pair = (typeof q === 'object' && q !== null ? q : {}) as Record<string, unknown>;
        return { quote: binaryField(pair.quote, `quotes[${i}].quote`), signature: binaryField(pair.signature, `quotes[${i}].signature`) };
      });
    }
    return { bundle: parseTpmBundle(normalized, { quirks: ALL_QUIRKS }), carriesAk: input.akPublic !== undefined };
  } catch (error) {
    throw asSigilError(error, CODE, 'the TPM evidence could not be parsed');
  }
}

/** Enrolled AKs by their stored hex: the same few devices attest again and again. */
const enrolledAks = new Map<string, Promise<{ akPublic: TpmPublic; name: string }>>();
const ENROLLED_AK_CACHE = 10_000;

function enrolledAk(hex: string): Promise<{ akPublic: TpmPublic; name: string }> {
  let entry = enrolledAks.get(hex);
  if (!entry) {
    entry = (async () => {
      const akPublic = unmarshal(TPMT_PUBLIC, fromHex(hex), 'tpm.device_material_invalid');
      checkAkPublic(akPublic);
      return { akPublic, name: toHex(await objectName(akPublic)) };
    })();
    if (enrolledAks.size >= ENROLLED_AK_CACHE) enrolledAks.delete(enrolledAks.keys().next().value!);
    enrolledAks.set(hex, entry);
    entry.catch(() => enrolledAks.delete(hex));
  }
  return entry;
}

export async function verifyTpmEvidence(evidence: TpmEvidence, trust: TrustContext): Promise<Verified<TpmClaims>> {
  const device = trust.device;
  if (!device?.material.akPublic) throw new SigilError('tpm.device_not_enrolled', 'TPM evidence is only trusted from an enrolled device (no AK on record)');
  const enrolled = await enrolledAk(device.material.akPublic);
  // An AK carried in the evidence must be the enrolled one: only that name is pinned.
  const bundle: TpmBundle = evidence.carriesAk ? evidence.bundle : { ...evidence.bundle, akPublic: enrolled.akPublic };
  const result = await verifyTpmBundle(bundle, { pinnedAkNames: [enrolled.name], quirks: ALL_QUIRKS }, trust.at);
  const nonces = new Set(result.claims.quotes.map((q) => q.nonce));
  if (nonces.size !== 1) throw new SigilError('tpm.quotes_inconsistent', 'the quotes carry different qualifying data', { nonces: [...nonces] });
  return verified('tpm', { ...result.claims, device: device.id }, result.verifiedAt);
}

export const tpmEvidenceKind: EvidenceKindEntry<TpmEvidence, TpmClaims, TpmAppraisalPolicy> = {
  description: 'TPM 2.0 quotes from an enrolled attestation key, with the firmware event log and IMA log when given',
  needsEnrolment: true,
  parse: parseTpmEvidence,
  verify: verifyTpmEvidence,
  bindingData: (v) => fromHex(v.claims.quotes[0].nonce),
  checkPolicy: checkTpmPolicy,
  appraise: appraiseTpm,
  summary: (v) => {
    const log = v.claims.eventLog;
    return {
      device: v.claims.device,
      akName: v.claims.ak.name,
      pcrs: v.claims.pcrs,
      ...(log
        ? {
            eventLog: {
              verifiedPcrs: log.verifiedPcrs,
              secureBoot: log.bootState.secureBoot ?? null,
              efiApplications: log.bootState.efiApplications.map((a) => a.digest),
              kernelCmdline: log.bootState.kernelCmdline?.text ?? log.bootState.kernelCmdline?.digest ?? null,
            },
          }
        : {}),
      ...(v.claims.ima ? { ima: { verifiedEntries: v.claims.ima.verifiedEntries, totalEntries: v.claims.ima.totalEntries } } : {}),
      ...(v.claims.quirks.length ? { quirks: [...new Set(v.claims.quirks.map((q) => q.id))] } : {}),
    };
  },
};
