import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import type { SnpProduct } from '../snp/product.ts';

/**
 * Where verifiers get the vendor material that does not travel with the evidence: AMD VCEKs,
 * ASK/ARK chains and CRLs (KDS), Intel TCB info, QE identity and CRLs (PCS / PCCS). One
 * interface, three sources: an offline bundle (bundle.ts), the vendors' services with an HTTP
 * cache (online.ts), and any chain of those (firstOf).
 *
 * A provider only fetches; it never decides trust. Everything it returns is verified by the
 * evidence verifiers (signatures, chains to the pinned roots, dates) like any other input.
 */
export type { SnpProduct };
export type SnpSigningKey = 'vcek' | 'vlek';
export type IntelPckCa = 'processor' | 'platform';

/** The REPORTED_TCB a VCEK is requested for (KDS query parameters); fmc is Turin-only. */
export interface SnpTcbParts {
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  fmc?: number;
  /** REPORTED_TCB as 16 hex digits, most significant first (TcbVersion.hex); names bundle files. */
  hex: string;
}

export interface Collateral<T> {
  value: T;
  /** PEM issuer chain the service sent with it (Intel's *-Issuer-Chain response headers). */
  issuerChain?: string;
  source: 'bundle' | 'network' | 'cache';
  /** True when fetching failed and an expired cached copy was served (stale-if-error). */
  stale: boolean;
  /** When this copy stops being fresh (a CRL's or TCB info's nextUpdate), when known. */
  freshUntil?: Date;
  /** The URL or bundle file name it came from. */
  location: string;
}

export interface CollateralProvider {
  /** The VCEK (DER) of chip `chipId` (the report's CHIP_ID, 64 bytes) at `tcb`. */
  getSnpVcek(product: SnpProduct, chipId: Uint8Array, tcb: SnpTcbParts): Promise<Collateral<Uint8Array>>;
  /** PEM: ASK (or ASVK for VLEKs) then ARK. */
  getSnpChain(product: SnpProduct, signingKey?: SnpSigningKey): Promise<Collateral<string>>;
  /** DER CRL of the ARK (revokes ASKs / ASVKs). */
  getSnpCrl(product: SnpProduct, signingKey?: SnpSigningKey): Promise<Collateral<Uint8Array>>;
  /** DER CRL of the PCK Platform or Processor CA, with its issuer chain. */
  getTdxPckCrl(ca: IntelPckCa): Promise<Collateral<Uint8Array>>;
  /** The PCS response body {"tcbInfo": …, "signature": …} (exact text), with its issuer chain. */
  getTdxTcbInfo(fmspc: string): Promise<Collateral<string>>;
  /** The PCS response body {"enclaveIdentity": …, "signature": …} (exact text), with its issuer chain. */
  getTdxQeIdentity(): Promise<Collateral<string>>;
  /** DER CRL of the Intel SGX Root CA. */
  getIntelRootCrl(): Promise<Collateral<Uint8Array>>;
}

export function notFound(what: string, location: string): SigilError {
  return new SigilError('collateral.not_found', `${what} is not available (${location})`, { location });
}

/** FMSPC: 6 bytes as 12 hex digits; returned lowercase. */
export function checkFmspc(fmspc: string): string {
  if (typeof fmspc !== 'string' || !/^[0-9a-fA-F]{12}$/.test(fmspc)) throw new SigilError('collateral.request_invalid', `"${String(fmspc)}" is not an FMSPC (12 hex digits)`);
  return fmspc.toLowerCase();
}

export function checkCa(ca: string): IntelPckCa {
  if (ca !== 'processor' && ca !== 'platform') throw new SigilError('collateral.request_invalid', `"${String(ca)}" is not a PCK CA (processor or platform)`);
  return ca;
}

export function checkProduct(product: string): SnpProduct {
  if (product !== 'Milan' && product !== 'Genoa' && product !== 'Turin') throw new SigilError('collateral.request_invalid', `"${String(product)}" is not an SEV-SNP product (Milan, Genoa, Turin)`);
  return product;
}

/**
 * The hardware ID KDS keys VCEKs by: all 64 bytes of CHIP_ID, except Turin and later, whose
 * VCEK hwID is CHIP_ID's first 8 bytes (AMD KDS spec 57230 rev 1.00+, "Turin").
 */
export function hwIdHex(product: SnpProduct, chipId: Uint8Array): string {
  if (!(chipId instanceof Uint8Array) || (chipId.length !== 64 && chipId.length !== 8)) throw new SigilError('collateral.request_invalid', 'CHIP_ID must be 64 bytes (or an 8-byte Turin hwID)');
  const id = product === 'Turin' ? chipId.subarray(0, 8) : chipId;
  if (id.length !== (product === 'Turin' ? 8 : 64)) throw new SigilError('collateral.request_invalid', `a ${product} CHIP_ID is ${product === 'Turin' ? 8 : 64} bytes`);
  if (id.every((b) => b === 0)) throw new SigilError('collateral.request_invalid', 'CHIP_ID is all zero (MASK_CHIP_ID): no VCEK can be looked up');
  return toHex(id);
}

export function checkTcb(tcb: SnpTcbParts, product: SnpProduct): SnpTcbParts {
  const spl = (v: number | undefined, name: string) => {
    if (v === undefined || !Number.isInteger(v) || v < 0 || v > 255) throw new SigilError('collateral.request_invalid', `TCB ${name} SPL ${String(v)} is not 0-255`);
  };
  spl(tcb.bootloader, 'bootloader');
  spl(tcb.tee, 'tee');
  spl(tcb.snp, 'snp');
  spl(tcb.microcode, 'microcode');
  if (product === 'Turin') spl(tcb.fmc, 'fmc');
  if (typeof tcb.hex !== 'string' || !/^[0-9a-f]{16}$/.test(tcb.hex)) throw new SigilError('collateral.request_invalid', 'TCB hex must be 16 lowercase hex digits');
  return tcb;
}

/**
 * A provider that asks each in turn and returns the first answer: e.g. an offline bundle first,
 * then the network. Only "not found" moves on; other errors (a damaged bundle) are raised.
 */
export function firstOf(...providers: CollateralProvider[]): CollateralProvider {
  const ask = async <T>(call: (p: CollateralProvider) => Promise<Collateral<T>>): Promise<Collateral<T>> => {
    let last: unknown;
    for (const provider of providers) {
      try {
        return await call(provider);
      } catch (error) {
        if (!(error instanceof SigilError && error.code === 'collateral.not_found')) throw error;
        last = error;
      }
    }
    throw last ?? notFound('collateral', 'no provider');
  };
  return {
    getSnpVcek: (product, chipId, tcb) => ask((p) => p.getSnpVcek(product, chipId, tcb)),
    getSnpChain: (product, key) => ask((p) => p.getSnpChain(product, key)),
    getSnpCrl: (product, key) => ask((p) => p.getSnpCrl(product, key)),
    getTdxPckCrl: (ca) => ask((p) => p.getTdxPckCrl(ca)),
    getTdxTcbInfo: (fmspc) => ask((p) => p.getTdxTcbInfo(fmspc)),
    getTdxQeIdentity: () => ask((p) => p.getTdxQeIdentity()),
    getIntelRootCrl: () => ask((p) => p.getIntelRootCrl()),
  };
}
