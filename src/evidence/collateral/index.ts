/**
 * Collateral for SNP and TDX verification: one CollateralProvider interface; an offline bundle
 * (bundle.ts; naming scheme in README.md), AMD KDS and Intel PCS/PCCS fetchers over an HTTP cache
 * (online.ts, http-cache.ts), and helpers that fetch what a report or quote needs (resolve.ts).
 * Isomorphic except node-files.ts (directory bundles and a directory cache store), which reaches
 * Node's fs at call time only.
 */
export {
  firstOf,
  hwIdHex,
  type Collateral,
  type CollateralProvider,
  type IntelPckCa,
  type SnpProduct,
  type SnpSigningKey,
  type SnpTcbParts,
} from './provider.ts';
export { OfflineBundle, memorySource, jsonBundleSource, checkBundleName, type BundleSource } from './bundle.ts';
export { HttpCache, type CacheStore, type CachedResponse, type CacheResult, type Freshness, type HttpCacheOptions } from './http-cache.ts';
export {
  OnlineCollateral,
  AMD_KDS_URL,
  INTEL_PCS_URL,
  INTEL_ROOT_CA_CRL_URL,
  kdsVcekUrl,
  kdsChainUrl,
  kdsCrlUrl,
  pcsTcbInfoUrl,
  pcsQeIdentityUrl,
  pcsPckCrlUrl,
  pccsRootCrlUrl,
  type OnlineCollateralOptions,
} from './online.ts';
export { toDer, crlNextUpdate, signedJsonNextUpdate, decodeIssuerChainHeader } from './formats.ts';
export { snpCollateralFor, tdxCollateralFor, pckIdentity, type Resolved, type SnpResolved } from './resolve.ts';
export { directorySource, openCollateralBundle, directoryCacheStore } from './node-files.ts';
