import { SigilError } from '../core/errors.ts';
import { utf8 } from '../core/bytes.ts';
import { parseAzureSnpEvidence, parseAzureTdxEvidence, verifyAzureSnp, verifyAzureTdx } from './azure/index.ts';
import { snpCollateralFor, tdxCollateralFor } from './collateral/resolve.ts';
import type { CollateralProvider } from './collateral/provider.ts';
import { parseSnpReport, SNP_REPORT_SIZE, verifySnp } from './snp/index.ts';
import { parseTdxQuote, verifyTdxQuote } from './tdx/index.ts';
import { parseTpmBundle } from './tpm/bundle.ts';
import { verifyTpmBundle } from './tpm/bundle-verify.ts';
import type { AkTrust } from './tpm/ak-trust.ts';
import type { EvidenceKind, Verified } from './verifier.ts';

/**
 * Verify one piece of evidence of any kind, told apart by its shape: a 1184-byte SNP report, a
 * DCAP quote (version 4/5, TEE type 0x81), or JSON (a TPM bundle, or Azure HCL evidence). What
 * the CLI (`sigil verify`) and the benchmark use; the broker goes through the kind registry.
 */
export interface VerifyAnyOptions {
  kind?: EvidenceKind | 'auto';
  at: Date;
  /** The nonce the verifier issued, when the evidence must carry it (TPM quotes, Azure vTPM). */
  nonce?: Uint8Array;
  collateral?: CollateralProvider;
  /** SNP: VCEK/VLEK and chain given directly (DER or PEM). */
  vcek?: Uint8Array | string;
  chain?: Uint8Array | string;
  crls?: (Uint8Array | string)[];
  /** TPM: how the AK is trusted. */
  akTrust?: AkTrust;
}

export interface VerifiedEvidence {
  kind: EvidenceKind;
  verified: Verified<unknown>;
  /** Which collateral was used (file names or URLs), and whether any of it was stale. */
  collateral?: { locations: string[]; stale: boolean };
}

const TDX_TEE_TYPE = 0x81;

export function detectKind(bytes: Uint8Array): EvidenceKind {
  const first = bytes.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first === 0x7b) {
    const json = parseJson(bytes);
    if ('td_quote' in json) return 'azure-tdx';
    if ('hcl_report' in json || 'report' in json) return 'azure-snp';
    if ('quote' in json || 'quotes' in json) return 'tpm';
    throw new SigilError('evidence.kind_unknown', 'JSON evidence that is neither a TPM bundle nor Azure evidence');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length === SNP_REPORT_SIZE && view.getUint32(0, true) >= 2 && view.getUint32(0, true) <= 5) return 'snp';
  if (bytes.length >= 48 && [4, 5].includes(view.getUint16(0, true)) && view.getUint32(4, true) === TDX_TEE_TYPE) return 'tdx';
  throw new SigilError('evidence.kind_unknown', 'the evidence is not an SNP report, a TDX quote, a TPM bundle or Azure evidence: give --kind');
}

function parseJson(bytes: Uint8Array): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not an object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new SigilError('evidence.json_invalid', 'the evidence is not a JSON object', {}, { cause: error });
  }
}

export async function verifyAnyEvidence(bytes: Uint8Array, options: VerifyAnyOptions): Promise<VerifiedEvidence> {
  const kind = !options.kind || options.kind === 'auto' ? detectKind(bytes) : options.kind;
  switch (kind) {
    case 'snp': {
      const report = parseSnpReport(bytes);
      let { vcek, chain, crls } = options;
      let collateral: VerifiedEvidence['collateral'];
      if (options.collateral) {
        const resolved = await snpCollateralFor(report, options.collateral, { fetchVcek: vcek === undefined });
        vcek ??= resolved.value.vcek;
        chain ??= resolved.value.chain;
        crls = [...(crls ?? []), ...resolved.value.crls];
        collateral = { locations: resolved.locations, stale: resolved.stale };
      }
      const verified = await verifySnp(report, { at: options.at, ...(vcek ? { endorsementKey: vcek } : {}), ...(chain ? { chain } : {}), ...(crls ? { crls } : {}) });
      return { kind, verified, ...(collateral ? { collateral } : {}) };
    }
    case 'tdx': {
      const quote = parseTdxQuote(bytes);
      const resolved = options.collateral ? await tdxCollateralFor(quote, options.collateral) : undefined;
      const verified = await verifyTdxQuote(quote, { at: options.at, ...(resolved ? { collateral: resolved.value } : {}) });
      return { kind, verified, ...(resolved ? { collateral: { locations: resolved.locations, stale: resolved.stale } } : {}) };
    }
    case 'tpm': {
      const bundle = parseTpmBundle(bytes);
      const verified = await verifyTpmBundle(bundle, { ...(options.akTrust ?? {}), ...(options.nonce ? { nonce: options.nonce } : {}) }, options.at);
      return { kind, verified };
    }
    case 'azure-snp': {
      const evidence = parseAzureSnpEvidence(parseJson(bytes));
      const verified = await verifyAzureSnp(evidence, {
        at: options.at,
        ...(options.nonce ? { nonce: options.nonce } : {}),
        ...(options.vcek ? { vcek: options.vcek } : {}),
        ...(options.chain ? { chain: options.chain } : {}),
        ...(options.crls ? { crls: options.crls } : {}),
      });
      return { kind, verified };
    }
    case 'azure-tdx': {
      const evidence = parseAzureTdxEvidence(parseJson(bytes));
      const resolved = options.collateral ? await tdxCollateralFor(evidence.tdQuote, options.collateral) : undefined;
      const verified = await verifyAzureTdx(evidence, { at: options.at, ...(options.nonce ? { nonce: options.nonce } : {}), ...(resolved ? { collateral: resolved.value } : {}) });
      return { kind, verified };
    }
  }
}
