import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SigilError } from '../../core/errors.ts';
import { productFromCpuid, type SnpProduct } from '../snp/product.ts';
import type { SnpReport } from '../snp/report.ts';
import { decodeTcb } from '../snp/tcb.ts';
import { signedJsonFromPcsResponse, type TdxCollateral } from '../tdx/collateral.ts';
import { parsePckExtensions } from '../tdx/pck-extensions.ts';
import type { TdxQuote } from '../tdx/quote.ts';
import type { Collateral, CollateralProvider } from './provider.ts';

/**
 * What a report or quote needs from a provider, fetched and shaped for the verifiers' trust
 * inputs. CRLs and Intel collateral are optional (verification without them is reported as
 * "not checked" in the claims); a missing AMD chain, or a VCEK asked for, is an error.
 */
export interface Resolved<T> {
  value: T;
  /** Any part was served stale (stale-if-error). */
  stale: boolean;
  /** Where each part came from. */
  locations: string[];
}

async function optional<T>(fetch: () => Promise<Collateral<T>>): Promise<Collateral<T> | undefined> {
  try {
    return await fetch();
  } catch (error) {
    if (error instanceof SigilError && error.code === 'collateral.not_found') return undefined;
    throw error;
  }
}

export interface SnpResolved {
  product: SnpProduct;
  vcek?: Uint8Array;
  chain: string;
  crls: Uint8Array[];
}

/**
 * The chain and CRL for a report's signing key and, when `fetchVcek` (and the report names its
 * chip), its VCEK. The product comes from the report's CPUID (v3+) or `product`.
 */
export async function snpCollateralFor(report: SnpReport, provider: CollateralProvider, options: { product?: SnpProduct; fetchVcek?: boolean } = {}): Promise<Resolved<SnpResolved>> {
  const product = options.product ?? (report.cpuid ? productFromCpuid(report.cpuid) : undefined);
  if (!product) throw new SigilError('collateral.product_unknown', 'the SNP product cannot be told from this report: pass it');
  const signingKey = report.keyInfo.signingKey === 'vlek' ? 'vlek' : 'vcek';
  const parts: Collateral<unknown>[] = [];
  const chain = await provider.getSnpChain(product, signingKey);
  parts.push(chain);
  const crl = await optional(() => provider.getSnpCrl(product, signingKey));
  if (crl) parts.push(crl);
  const value: SnpResolved = { product, chain: chain.value, crls: crl ? [crl.value] : [] };
  if (options.fetchVcek && signingKey === 'vcek') {
    const vcek = await provider.getSnpVcek(product, report.chipId, decodeTcb(report.reportedTcb, product));
    parts.push(vcek);
    value.vcek = vcek.value;
  }
  return { value, stale: parts.some((p) => p.stale), locations: parts.map((p) => p.location) };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*?-----END CERTIFICATE-----/g;

/** FMSPC and PCK CA of a quote's PCK certificate (parsed, not verified: the verifier does that). */
export function pckIdentity(quote: TdxQuote): { fmspc: string; ca: 'processor' | 'platform' } {
  const first = quote.pckCertChainPem.match(PEM_CERT)?.[0];
  if (!first) throw new SigilError('collateral.request_invalid', 'the quote carries no PCK certificate');
  let leaf: x509.X509Certificate;
  try {
    leaf = new x509.X509Certificate(first);
  } catch (error) {
    throw new SigilError('collateral.request_invalid', 'the PCK certificate cannot be parsed', {}, { cause: error });
  }
  const issuer = leaf.issuer;
  const ca = /Intel SGX PCK Platform CA/.test(issuer) ? 'platform' : /Intel SGX PCK Processor CA/.test(issuer) ? 'processor' : undefined;
  if (!ca) throw new SigilError('collateral.request_invalid', `the PCK certificate's issuer "${issuer}" is not an Intel PCK CA`);
  return { fmspc: parsePckExtensions(leaf).fmspc, ca };
}

/**
 * TCB info (by the PCK's FMSPC), QE identity, PCK CRL and Root CA CRL for a quote; each that the
 * provider does not have is left out (the TDX appraisal then refuses an unevaluated TCB).
 */
export async function tdxCollateralFor(quote: TdxQuote, provider: CollateralProvider): Promise<Resolved<TdxCollateral>> {
  const { fmspc, ca } = pckIdentity(quote);
  const [tcbInfo, qeIdentity, pckCrl, rootCrl] = await Promise.all([
    optional(() => provider.getTdxTcbInfo(fmspc)),
    optional(() => provider.getTdxQeIdentity()),
    optional(() => provider.getTdxPckCrl(ca)),
    optional(() => provider.getIntelRootCrl()),
  ]);
  const value: TdxCollateral = {};
  if (tcbInfo) {
    value.tcbInfo = signedJsonFromPcsResponse(tcbInfo.value, 'tcbInfo');
    if (tcbInfo.issuerChain) value.tcbInfoIssuerChain = tcbInfo.issuerChain;
  }
  if (qeIdentity) {
    value.qeIdentity = signedJsonFromPcsResponse(qeIdentity.value, 'enclaveIdentity');
    if (qeIdentity.issuerChain) value.qeIdentityIssuerChain = qeIdentity.issuerChain;
  }
  if (pckCrl) value.pckCrl = pckCrl.value;
  if (rootCrl) value.rootCaCrl = rootCrl.value;
  const parts = [tcbInfo, qeIdentity, pckCrl, rootCrl].filter((p): p is Collateral<string> | Collateral<Uint8Array> => p !== undefined);
  return { value, stale: parts.some((p) => p.stale), locations: parts.map((p) => p.location) };
}
