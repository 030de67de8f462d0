import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64, fromHex } from '../../core/hex.ts';
import type { CollateralProvider } from '../collateral/provider.ts';
import { snpCollateralFor } from '../collateral/resolve.ts';
import type { EvidenceKindEntry, TrustContext } from '../registry.ts';
import type { Verified } from '../verifier.ts';
import { appraiseSnp, type SnpAppraisalPolicy } from './appraise.ts';
import { describeEndorsement, parseCertificates } from './endorsement.ts';
import { assertProduct, productFromCpuid, SNP_PRODUCTS, type SnpProduct } from './product.ts';
import { parseSnpReport, type SnpReport } from './report.ts';
import { verifySnp, type SnpClaims } from './verify.ts';

/**
 * The 'snp' evidence kind for the broker (registry.ts). Wire format (JSON):
 *
 *   { "report": base64/base64url raw attestation report (1184 bytes, configfs-tsm outblob),
 *     "vcek"?: PEM or base64 DER, "vlek"?: PEM or base64 DER,
 *     "certificates"?: PEM bundle (ASK/ASVK, ARK: the extended report's certificate table),
 *     "product"?: "Milan" | "Genoa" | "Turin" (needed only for version-2 reports without a VCEK) }
 *
 * Nothing is enrolled: the report chains to AMD's pinned ARK. Material that does not travel with
 * the report comes from a CollateralProvider (offline bundle and/or AMD KDS: chain, CRL, the
 * VCEK for the report's chip and TCB) and from the tenant's CA bundles: "snp-chain" (PEM
 * ASK/ASVK chains) and "snp-crl" (PEM CRLs). bindingData is REPORT_DATA (64 bytes).
 */
export interface SnpEvidence {
  report: SnpReport;
  endorsementKey?: string | Uint8Array;
  certificates?: string;
  product?: SnpProduct;
}

const CODE = 'snp.evidence_malformed';

function certificateField(value: unknown, what: string): string | Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0) throw new SigilError(CODE, `"${what}" must be PEM or base64 DER`);
  return value.includes('-----BEGIN') ? value : fromBase64(value);
}

export function parseSnpEvidence(body: unknown): SnpEvidence {
  try {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new SigilError(CODE, 'SNP evidence must be a JSON object');
    const input = body as Record<string, unknown>;
    for (const key of Object.keys(input)) if (!['report', 'vcek', 'vlek', 'certificates', 'product'].includes(key)) throw new SigilError(CODE, `SNP evidence has an unknown field "${key}"`);
    if (typeof input.report !== 'string' || input.report.length === 0) throw new SigilError(CODE, 'SNP evidence needs "report" (base64)');
    if (input.vcek !== undefined && input.vlek !== undefined) throw new SigilError(CODE, 'give "vcek" or "vlek", not both');
    if (input.certificates !== undefined && (typeof input.certificates !== 'string' || !input.certificates.includes('-----BEGIN CERTIFICATE-----'))) {
      throw new SigilError(CODE, '"certificates" must be a PEM bundle');
    }
    const evidence: SnpEvidence = { report: parseSnpReport(fromBase64(input.report)) };
    const endorsementKey = certificateField(input.vcek ?? input.vlek, input.vcek !== undefined ? 'vcek' : 'vlek');
    if (endorsementKey !== undefined) evidence.endorsementKey = endorsementKey;
    if (input.certificates !== undefined) evidence.certificates = input.certificates as string;
    if (input.product !== undefined) evidence.product = assertProduct(String(input.product));
    return evidence;
  } catch (error) {
    throw asSigilError(error, CODE, 'the SNP evidence could not be parsed');
  }
}

function pems(trust: TrustContext, purpose: string): string[] {
  return trust.collateral.filter((c) => c.purpose === purpose).map((c) => c.pem);
}

/** The product from the report's CPUID, the evidence, the endorsement certificate or the broker's default. */
function productOf(evidence: SnpEvidence, fallback: SnpProduct | undefined): SnpProduct | undefined {
  if (evidence.report.cpuid) return productFromCpuid(evidence.report.cpuid);
  if (evidence.product) return evidence.product;
  if (evidence.endorsementKey !== undefined) {
    const [leaf] = parseCertificates(evidence.endorsementKey, 'endorsement key certificate');
    const product = leaf ? describeEndorsement(leaf).product : undefined;
    if (product) return product;
  }
  return fallback;
}

export interface SnpKindOptions {
  collateral?: CollateralProvider;
  /** The product to assume when neither the report (v2) nor its evidence names one. */
  snpProduct?: SnpProduct;
}

/** Verify with the evidence's own certificates, the tenant's bundles and the provider's collateral. */
async function verifySnpEvidence(evidence: SnpEvidence, trust: TrustContext, options: SnpKindOptions): Promise<Verified<SnpClaims>> {
  const crls: (string | Uint8Array)[] = pems(trust, 'snp-crl');
  const chain: string[] = [...pems(trust, 'snp-chain'), ...(evidence.certificates ? [evidence.certificates] : [])];
  let endorsementKey = evidence.endorsementKey;
  const product = productOf(evidence, options.snpProduct);
  if (options.collateral && evidence.report.keyInfo.signingKey !== 'none') {
    try {
      const resolved = await snpCollateralFor(evidence.report, options.collateral, { fetchVcek: endorsementKey === undefined, ...(product ? { product } : {}) });
      chain.push(resolved.value.chain);
      crls.push(...resolved.value.crls);
      endorsementKey ??= resolved.value.vcek;
    } catch (error) {
      // With the key in hand, a provider without this product's chain is no failure: the
      // embedded AMD intermediates verify it (only the CRL is then unchecked, as the claims say).
      const absent = error instanceof SigilError && (error.code === 'collateral.not_found' || error.code === 'collateral.product_unknown');
      if (!absent || endorsementKey === undefined) throw error;
    }
  }
  return verifySnp(evidence.report, {
    at: trust.at,
    ...(endorsementKey !== undefined ? { endorsementKey } : {}),
    ...(chain.length ? { chain: chain.join('\n') } : {}),
    crls,
    ...(product && !evidence.report.cpuid ? { product } : {}),
  });
}

const HEX_FIELDS: Record<string, number> = { reportData: 64, hostData: 32, familyId: 16, imageId: 16 };
const HEX_LISTS: Record<string, number> = { measurements: 48, idKeyDigests: 48, authorKeyDigests: 48, chipIds: 64 };
const BOOLEANS = ['requireIdBlock', 'requireAuthorKey', 'requireReportedTcbCommitted', 'requireCrlChecked'];
const NUMBERS = ['minimumGuestSvn', 'minimumReportVersion'];
const GUEST_POLICY = ['allowDebug', 'allowMigrationAgent', 'allowSmt', 'requireSingleSocket', 'allowCxl', 'requireMemAes256Xts', 'requireRaplDisabled', 'requireCiphertextHiding', 'requirePageSwapDisabled', 'minimumAbi'];
const PLATFORM = ['allowSmt', 'requireTsme', 'requireEcc', 'requireRaplDisabled', 'requireCiphertextHiding', 'requireAliasCheckComplete'];
/** TCB_VERSION components across products (tcb.ts); Turin adds fmc. */
const TCB_COMPONENTS = ['bootloader', 'tee', 'snp', 'microcode', 'fmc'] as const;
const KNOWN = new Set([...Object.keys(HEX_FIELDS), ...Object.keys(HEX_LISTS), ...BOOLEANS, ...NUMBERS, 'minimumTcb', 'minimumLaunchTcb', 'vmpl', 'minimumFirmware', 'guestPolicy', 'platform', 'products', 'signingKeys']);

function invalid(message: string): never {
  throw new SigilError('snp.policy_invalid', `SNP reference values: ${message}`);
}

function hex(value: unknown, bytes: number, what: string): void {
  if (typeof value !== 'string' || !/^(0x)?([0-9a-fA-F]{2})+$/.test(value) || value.replace(/^0x/, '').length > bytes * 2) invalid(`${what} must be at most ${bytes} bytes of hex`);
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(`${what} must be an object`);
  return value as Record<string, unknown>;
}

function nonNegative(value: unknown, what: string): void {
  if (!Number.isInteger(value) || (value as number) < 0) invalid(`${what} must be a whole number ≥ 0`);
}

/** Validate SNP reference values when an administrator stores them (fail early, fail closed). */
export function checkSnpPolicy(value: unknown): SnpAppraisalPolicy {
  if (value === undefined || value === null) return {};
  const policy = object(value, 'the policy');
  for (const key of Object.keys(policy)) if (!KNOWN.has(key)) invalid(`unknown field "${key}"`);
  for (const [field, bytes] of Object.entries(HEX_FIELDS)) if (policy[field] !== undefined) hex(policy[field], bytes, field);
  for (const [field, bytes] of Object.entries(HEX_LISTS)) {
    if (policy[field] === undefined) continue;
    if (!Array.isArray(policy[field]) || policy[field].length === 0) invalid(`${field} must be a non-empty list of accepted values`);
    for (const v of policy[field] as unknown[]) hex(v, bytes, field);
  }
  for (const flag of BOOLEANS) if (policy[flag] !== undefined && typeof policy[flag] !== 'boolean') invalid(`${flag} must be true or false`);
  for (const field of NUMBERS) if (policy[field] !== undefined) nonNegative(policy[field], field);
  for (const field of ['minimumTcb', 'minimumLaunchTcb']) {
    if (policy[field] === undefined) continue;
    for (const [component, floor] of Object.entries(object(policy[field], field))) {
      if (!(TCB_COMPONENTS as readonly string[]).includes(component)) invalid(`${field}.${component} is not a TCB component (${TCB_COMPONENTS.join(', ')})`);
      nonNegative(floor, `${field}.${component}`);
    }
  }
  if (policy.vmpl !== undefined) for (const v of Array.isArray(policy.vmpl) ? policy.vmpl : [policy.vmpl]) if (!Number.isInteger(v) || v < 0 || v > 3) invalid('vmpl must be 0-3 or a list of them');
  if (policy.minimumFirmware !== undefined) {
    const firmware = object(policy.minimumFirmware, 'minimumFirmware');
    for (const key of Object.keys(firmware)) if (!['major', 'minor', 'build'].includes(key)) invalid(`minimumFirmware.${key} is unknown`);
    nonNegative(firmware.major, 'minimumFirmware.major');
    nonNegative(firmware.minor, 'minimumFirmware.minor');
    if (firmware.build !== undefined) nonNegative(firmware.build, 'minimumFirmware.build');
  }
  for (const [field, known] of [['guestPolicy', GUEST_POLICY], ['platform', PLATFORM]] as const) {
    if (policy[field] === undefined) continue;
    for (const [key, v] of Object.entries(object(policy[field], field))) {
      if (!known.includes(key)) invalid(`${field}.${key} is unknown`);
      if (key === 'minimumAbi') {
        const abi = object(v, `${field}.minimumAbi`);
        nonNegative(abi.major, 'minimumAbi.major');
        nonNegative(abi.minor, 'minimumAbi.minor');
      } else if (typeof v !== 'boolean') invalid(`${field}.${key} must be true or false`);
    }
  }
  if (policy.products !== undefined && (!Array.isArray(policy.products) || policy.products.some((p) => !SNP_PRODUCTS.includes(p)))) invalid(`products must be a list of ${SNP_PRODUCTS.join(', ')}`);
  if (policy.signingKeys !== undefined && (!Array.isArray(policy.signingKeys) || policy.signingKeys.some((k) => k !== 'vcek' && k !== 'vlek'))) invalid('signingKeys must be a list of vcek, vlek');
  return policy as SnpAppraisalPolicy;
}

export function createSnpKind(options: SnpKindOptions = {}): EvidenceKindEntry<SnpEvidence, SnpClaims, SnpAppraisalPolicy> {
  return {
    description: 'AMD SEV-SNP attestation report (VCEK or VLEK)',
    needsEnrolment: false,
    collateralPurposes: ['snp-chain', 'snp-crl'],
    parse: parseSnpEvidence,
    verify: (evidence, trust) => verifySnpEvidence(evidence, trust, options),
    bindingData: (verified: Verified<SnpClaims>) => fromHex(verified.claims.reportData),
    checkPolicy: checkSnpPolicy,
    appraise: appraiseSnp,
    summary: (v) => ({
      product: v.claims.product,
      signingKey: v.claims.signingKey,
      measurement: v.claims.measurement,
      hostData: v.claims.hostData,
      reportedTcb: v.claims.reportedTcb.hex,
      vmpl: v.claims.vmpl,
      debug: v.claims.policy.debug,
      crlChecked: v.claims.endorsement.crlChecked,
    }),
  };
}

export const snpEvidenceKind = createSnpKind();
