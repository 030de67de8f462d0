import { utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { checkPemChain, crlNextUpdate, decodeIssuerChainHeader, signedJsonNextUpdate, toDer, type SignedJsonMember } from './formats.ts';
import { HttpCache, type CacheStore, type Freshness } from './http-cache.ts';
import { checkCa, checkFmspc, checkProduct, checkTcb, hwIdHex, type Collateral, type CollateralProvider, type IntelPckCa, type SnpProduct, type SnpSigningKey, type SnpTcbParts } from './provider.ts';

/**
 * Collateral from the vendors' services, through an HttpCache.
 *
 * AMD KDS (AMD pub. 57230 "Versioned Chip Endorsement Key (VCEK) Certificate and KDS Interface
 * Specification"):
 *   GET {kds}/vcek/v1/{product}/{hwid}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=   VCEK, DER (Turin: fmcSPL first)
 *   GET {kds}/vcek/v1/{product}/cert_chain                                 ASK + ARK, PEM
 *   GET {kds}/vcek/v1/{product}/crl                                        ARK CRL, DER
 *   GET {kds}/vlek/v1/{product}/cert_chain | /crl                          ASVK chain, its CRL
 *
 * Intel PCS API v4 ("Intel SGX and Intel TDX Provisioning Certification Service API"), and a
 * PCCS, which serves the same paths under its own base URL:
 *   GET {pcs}/tdx/certification/v4/tcb?fmspc=   TCB info JSON; header TCB-Info-Issuer-Chain
 *   GET {pcs}/tdx/certification/v4/qe/identity  QE identity JSON; header SGX-Enclave-Identity-Issuer-Chain
 *   GET {pcs}/sgx/certification/v4/pckcrl?ca=processor|platform&encoding=der; header SGX-PCK-CRL-Issuer-Chain
 *   Root CA CRL: PCS https://certificates.trustedservices.intel.com/IntelSGXRootCA.der,
 *                PCCS {pccs}/sgx/certification/v4/rootcacrl (hex text; decoded here)
 * Issuer-chain headers are URL-encoded PEM.
 */
export const AMD_KDS_URL = 'https://kdsintf.amd.com';
export const INTEL_PCS_URL = 'https://api.trustedservices.intel.com';
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

export interface OnlineCollateralOptions {
  fetch?: typeof globalThis.fetch;
  /** Shared cache; built from fetch/store/now when absent. */
  cache?: HttpCache;
  store?: CacheStore;
  now?: () => number;
  kdsUrl?: string;
  intel?: {
    /** 'pcs' (default) or 'pccs' (a caching service at baseUrl). */
    service?: 'pcs' | 'pccs';
    baseUrl?: string;
    /** PCS only; default Intel's distribution point. */
    rootCrlUrl?: string;
    /** TCB info / QE identity update channel (PCS `update=`), default unset (standard). */
    update?: 'standard' | 'early';
  };
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

export function kdsVcekUrl(kds: string, product: SnpProduct, chipId: Uint8Array, tcb: SnpTcbParts): string {
  checkTcb(tcb, checkProduct(product));
  const spl = `blSPL=${tcb.bootloader}&teeSPL=${tcb.tee}&snpSPL=${tcb.snp}&ucodeSPL=${tcb.microcode}`;
  return `${trimSlash(kds)}/vcek/v1/${product}/${hwIdHex(product, chipId)}?${product === 'Turin' ? `fmcSPL=${tcb.fmc}&` : ''}${spl}`;
}

export function kdsChainUrl(kds: string, product: SnpProduct, signingKey: SnpSigningKey = 'vcek'): string {
  return `${trimSlash(kds)}/${signingKey}/v1/${checkProduct(product)}/cert_chain`;
}

export function kdsCrlUrl(kds: string, product: SnpProduct, signingKey: SnpSigningKey = 'vcek'): string {
  return `${trimSlash(kds)}/${signingKey}/v1/${checkProduct(product)}/crl`;
}

export function pcsTcbInfoUrl(base: string, fmspc: string, update?: 'standard' | 'early'): string {
  return `${trimSlash(base)}/tdx/certification/v4/tcb?fmspc=${checkFmspc(fmspc).toUpperCase()}${update ? `&update=${update}` : ''}`;
}

export function pcsQeIdentityUrl(base: string, update?: 'standard' | 'early'): string {
  return `${trimSlash(base)}/tdx/certification/v4/qe/identity${update ? `?update=${update}` : ''}`;
}

export function pcsPckCrlUrl(base: string, ca: IntelPckCa): string {
  return `${trimSlash(base)}/sgx/certification/v4/pckcrl?ca=${checkCa(ca)}&encoding=der`;
}

export function pccsRootCrlUrl(base: string): string {
  return `${trimSlash(base)}/sgx/certification/v4/rootcacrl`;
}

const CODE = 'collateral.response_malformed';
const immutable: Freshness = () => 'immutable';
const crlFreshness =
  (what: string): Freshness =>
  (body) =>
    (crlNextUpdate(toDer(body, what, CODE), what, CODE) ?? new Date(0)).getTime();
const jsonFreshness =
  (member: SignedJsonMember, what: string): Freshness =>
  (body) =>
    signedJsonNextUpdate(utf8.decode(body), member, what, CODE).getTime();

function header(headers: Record<string, string>, names: string[]): string | undefined {
  for (const name of names) if (headers[name.toLowerCase()] !== undefined) return headers[name.toLowerCase()];
  return undefined;
}

export class OnlineCollateral implements CollateralProvider {
  readonly cache: HttpCache;
  private readonly kds: string;
  private readonly intelService: 'pcs' | 'pccs';
  private readonly intelBase: string;
  private readonly rootCrlUrl: string;
  private readonly update?: 'standard' | 'early';

  constructor(options: OnlineCollateralOptions = {}) {
    this.cache =
      options.cache ??
      new HttpCache({ ...(options.fetch ? { fetch: options.fetch } : {}), ...(options.store ? { store: options.store } : {}), ...(options.now ? { now: options.now } : {}) });
    this.kds = options.kdsUrl ?? AMD_KDS_URL;
    this.intelService = options.intel?.service ?? 'pcs';
    if (this.intelService === 'pccs' && !options.intel?.baseUrl) throw new SigilError('collateral.request_invalid', 'a PCCS needs its base URL');
    this.intelBase = options.intel?.baseUrl ?? INTEL_PCS_URL;
    this.rootCrlUrl = this.intelService === 'pccs' ? pccsRootCrlUrl(this.intelBase) : (options.intel?.rootCrlUrl ?? INTEL_ROOT_CA_CRL_URL);
    if (options.intel?.update) this.update = options.intel.update;
  }

  private async fetch<T>(url: string, freshness: Freshness, decode: (body: Uint8Array, headers: Record<string, string>) => { value: T; issuerChain?: string; freshUntil?: Date }): Promise<Collateral<T>> {
    const result = await this.cache.get(url, freshness);
    const decoded = decode(result.response.body, result.response.headers);
    const collateral: Collateral<T> = { value: decoded.value, source: result.source, stale: result.stale, location: url };
    if (decoded.issuerChain) collateral.issuerChain = decoded.issuerChain;
    if (decoded.freshUntil) collateral.freshUntil = decoded.freshUntil;
    return collateral;
  }

  private crl(url: string, what: string, chainHeaders: string[] = []): Promise<Collateral<Uint8Array>> {
    return this.fetch(url, crlFreshness(what), (body, headers) => {
      const der = toDer(body, what, CODE);
      const next = crlNextUpdate(der, what, CODE);
      const chain = header(headers, chainHeaders);
      return { value: der, ...(next ? { freshUntil: next } : {}), ...(chain ? { issuerChain: decodeIssuerChainHeader(chain, `${what} issuer chain`) } : {}) };
    });
  }

  private signedJson(url: string, member: SignedJsonMember, what: string, chainHeaders: string[]): Promise<Collateral<string>> {
    return this.fetch(url, jsonFreshness(member, what), (body, headers) => {
      const text = utf8.decode(body);
      const next = signedJsonNextUpdate(text, member, what, CODE);
      const chain = header(headers, chainHeaders);
      return { value: text, freshUntil: next, ...(chain ? { issuerChain: decodeIssuerChainHeader(chain, `${what} issuer chain`) } : {}) };
    });
  }

  getSnpVcek(product: SnpProduct, chipId: Uint8Array, tcb: SnpTcbParts): Promise<Collateral<Uint8Array>> {
    const what = `the ${product} VCEK`;
    return this.fetch(kdsVcekUrl(this.kds, product, chipId, tcb), immutable, (body) => ({ value: toDer(body, what, CODE) }));
  }

  getSnpChain(product: SnpProduct, signingKey: SnpSigningKey = 'vcek'): Promise<Collateral<string>> {
    const what = `the ${product} ${signingKey.toUpperCase()} chain`;
    return this.fetch(kdsChainUrl(this.kds, product, signingKey), immutable, (body) => ({ value: checkPemChain(utf8.decode(body), what, CODE) }));
  }

  getSnpCrl(product: SnpProduct, signingKey: SnpSigningKey = 'vcek'): Promise<Collateral<Uint8Array>> {
    return this.crl(kdsCrlUrl(this.kds, product, signingKey), `the ${product} ARK CRL`);
  }

  getTdxPckCrl(ca: IntelPckCa): Promise<Collateral<Uint8Array>> {
    return this.crl(pcsPckCrlUrl(this.intelBase, ca), `the PCK ${ca} CA CRL`, ['SGX-PCK-CRL-Issuer-Chain']);
  }

  getTdxTcbInfo(fmspc: string): Promise<Collateral<string>> {
    return this.signedJson(pcsTcbInfoUrl(this.intelBase, fmspc, this.update), 'tcbInfo', `TCB info for FMSPC ${fmspc}`, ['TCB-Info-Issuer-Chain', 'SGX-TCB-Info-Issuer-Chain']);
  }

  getTdxQeIdentity(): Promise<Collateral<string>> {
    return this.signedJson(pcsQeIdentityUrl(this.intelBase, this.update), 'enclaveIdentity', 'the TDX QE identity', ['SGX-Enclave-Identity-Issuer-Chain', 'Enclave-Identity-Issuer-Chain']);
  }

  getIntelRootCrl(): Promise<Collateral<Uint8Array>> {
    return this.crl(this.rootCrlUrl, 'the Intel SGX Root CA CRL');
  }
}
