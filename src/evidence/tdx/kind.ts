import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64, fromHex } from '../../core/hex.ts';
import type { CollateralProvider } from '../collateral/provider.ts';
import { tdxCollateralFor } from '../collateral/resolve.ts';
import type { EvidenceKindEntry, TrustContext } from '../registry.ts';
import type { Verified } from '../verifier.ts';
import { appraiseTdx, type TdxPolicy } from './appraise.ts';
import type { TdxClaims } from './claims.ts';
import { parseTdxQuote, type TdxQuote } from './quote.ts';
import { TCB_STATUSES } from './tcb-status.ts';
import { verifyTdxQuote } from './verify.ts';

/**
 * The 'tdx' evidence kind for the broker (registry.ts). Wire format (JSON):
 *
 *   { "quote": base64/base64url raw DCAP quote, "eventLog"?: base64 CCEL (the log area) }
 *
 * Intel collateral comes from a CollateralProvider when one is configured; without it the quote
 * is verified but its TCB is not evaluated (and the default policy then fails "tdx.tcb_status").
 * A tenant bundle with purpose "tdx-root" replaces the embedded Intel SGX Root CA (private PKIs).
 * bindingData is REPORTDATA (64 bytes).
 */
export interface TdxEvidence {
  quote: TdxQuote;
  eventLog?: Uint8Array;
}

export function parseTdxEvidence(body: unknown): TdxEvidence {
  try {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new SigilError('tdx.evidence_malformed', 'TDX evidence must be a JSON object');
    const { quote, eventLog } = body as Record<string, unknown>;
    if (typeof quote !== 'string' || quote.length === 0) throw new SigilError('tdx.evidence_malformed', 'TDX evidence needs "quote" (base64)');
    if (eventLog !== undefined && typeof eventLog !== 'string') throw new SigilError('tdx.evidence_malformed', '"eventLog" must be base64');
    return { quote: parseTdxQuote(fromBase64(quote)), ...(eventLog ? { eventLog: fromBase64(eventLog) } : {}) };
  } catch (error) {
    throw asSigilError(error, 'tdx.evidence_malformed', 'the TDX evidence could not be parsed');
  }
}

const HEX_FIELDS: Record<string, number> = { mrTd: 48, mrSeam: 48, mrConfigId: 48, mrOwner: 48, mrOwnerConfig: 48, mrServiceTd: 48, xfam: 8, tdAttributes: 8 };

function invalid(message: string): never {
  throw new SigilError('tdx.policy_invalid', message);
}

function hexValue(value: unknown, bytes: number, what: string): void {
  if (typeof value !== 'string' || !new RegExp(`^[0-9a-fA-F]{${bytes * 2}}$`).test(value)) invalid(`${what} must be ${bytes} bytes of hex`);
}

/** Validate reference values when an administrator stores them (fail early, fail closed). */
export function checkTdxPolicy(value: unknown): TdxPolicy {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) invalid('a TDX policy must be an object');
  const policy = value as Record<string, unknown>;
  for (const [field, bytes] of Object.entries(HEX_FIELDS)) {
    if (policy[field] === undefined) continue;
    if (!Array.isArray(policy[field])) invalid(`${field} must be a list of accepted values`);
    for (const v of policy[field] as unknown[]) hexValue(v, bytes, field);
  }
  if (policy.rtmr !== undefined) {
    if (typeof policy.rtmr !== 'object' || policy.rtmr === null) invalid('rtmr must map 0-3 to lists of values');
    for (const [index, values] of Object.entries(policy.rtmr as Record<string, unknown>)) {
      if (!/^[0-3]$/.test(index) || !Array.isArray(values)) invalid(`rtmr.${index} is not an RTMR index with a list of values`);
      for (const v of values as unknown[]) hexValue(v, 48, `rtmr.${index}`);
    }
  }
  if (policy.reportData !== undefined) hexValue(policy.reportData, 64, 'reportData');
  if (policy.minimumTeeTcbSvn !== undefined) hexValue(policy.minimumTeeTcbSvn, 16, 'minimumTeeTcbSvn');
  if (policy.qeVendorId !== undefined) hexValue(policy.qeVendorId, 16, 'qeVendorId');
  if (policy.allowedTcbStatuses !== undefined) {
    const statuses = policy.allowedTcbStatuses;
    if (!Array.isArray(statuses) || statuses.some((s) => !(TCB_STATUSES as readonly unknown[]).includes(s))) invalid(`allowedTcbStatuses must be a list of ${TCB_STATUSES.join(', ')}`);
  }
  if (policy.forbiddenAdvisoryIds !== undefined && (!Array.isArray(policy.forbiddenAdvisoryIds) || policy.forbiddenAdvisoryIds.some((s) => typeof s !== 'string'))) {
    invalid('forbiddenAdvisoryIds must be a list of strings');
  }
  for (const flag of ['allowDebug', 'requireTcbEvaluation', 'requireQeIdentity', 'requireEventLog']) {
    if (policy[flag] !== undefined && typeof policy[flag] !== 'boolean') invalid(`${flag} must be true or false`);
  }
  return policy as TdxPolicy;
}

function tenantRoots(trust: TrustContext): x509.X509Certificate[] | undefined {
  const pems = trust.collateral.filter((c) => c.purpose === 'tdx-root').map((c) => c.pem);
  if (pems.length === 0) return undefined;
  try {
    return pems.flatMap((pem) => [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => new x509.X509Certificate(m[0])));
  } catch (error) {
    throw new SigilError('tdx.trust_invalid', 'a configured "tdx-root" certificate cannot be parsed', {}, { cause: error });
  }
}

export function createTdxKind(options: { collateral?: CollateralProvider } = {}): EvidenceKindEntry<TdxEvidence, TdxClaims, TdxPolicy> {
  return {
    description: 'Intel TDX DCAP quote (v4/v5), with optional CCEL event log',
    needsEnrolment: false,
    parse: parseTdxEvidence,
    async verify(evidence, trust) {
      const collateral = options.collateral ? (await tdxCollateralFor(evidence.quote, options.collateral)).value : undefined;
      const roots = tenantRoots(trust);
      return verifyTdxQuote(evidence.quote, { at: trust.at, ...(collateral ? { collateral } : {}), ...(roots ? { roots } : {}), ...(evidence.eventLog ? { eventLog: evidence.eventLog } : {}) });
    },
    bindingData: (verified: Verified<TdxClaims>) => fromHex(verified.claims.reportData),
    checkPolicy: checkTdxPolicy,
    appraise: appraiseTdx,
    summary: (v) => ({
      mrTd: v.claims.mrTd,
      rtmrs: v.claims.rtmrs,
      tcbStatus: v.claims.tcb?.status,
      advisoryIds: v.claims.tcb?.advisoryIds,
      fmspc: v.claims.pck.fmspc,
      debug: v.claims.tdAttributeFlags.debug,
    }),
  };
}

export const tdxEvidenceKind = createTdxKind();
