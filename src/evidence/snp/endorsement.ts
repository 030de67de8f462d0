import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { certificateFromDer } from '../../core/x509-cache.ts';
import { assertStrictSignedDer, derIa5String, derSmallInteger } from './der.ts';
import { productFromName, type SnpProduct } from './product.ts';
import type { TcbComponent } from './tcb.ts';

/**
 * VCEK and VLEK certificates (AMD "VCEK Certificate and KDS Interface Specification", pub. 57230,
 * tables 9-13). The AMD extensions:
 *   1.3.6.1.4.1.3704.1.1      structVersion  INTEGER (0: Milan/Genoa, 1: Turin and later)
 *   1.3.6.1.4.1.3704.1.2      productName    IA5String ("Milan-B0", "Genoa", "Turin" ...)
 *   1.3.6.1.4.1.3704.1.3.1    blSPL          INTEGER
 *   1.3.6.1.4.1.3704.1.3.2    teeSPL         INTEGER
 *   1.3.6.1.4.1.3704.1.3.3    snpSPL         INTEGER
 *   1.3.6.1.4.1.3704.1.3.4-7  spl_4..spl_7   INTEGER (reserved)
 *   1.3.6.1.4.1.3704.1.3.8    ucodeSPL       INTEGER
 *   1.3.6.1.4.1.3704.1.3.9    fmcSPL         INTEGER (structVersion 1)
 *   1.3.6.1.4.1.3704.1.4      hwID           raw bytes, not DER: the chip's CHIP_ID (64 bytes,
 *                                            structVersion 0) or its first 8 bytes (structVersion 1). VCEK only.
 *   1.3.6.1.4.1.3704.1.5      cspId          IA5String, the cloud provider a VLEK was issued to.
 * Every AMD VCEK/VLEK has serial number 0, which this code accepts.
 */
export const AMD_OID = {
  structVersion: '1.3.6.1.4.1.3704.1.1',
  productName: '1.3.6.1.4.1.3704.1.2',
  blSpl: '1.3.6.1.4.1.3704.1.3.1',
  teeSpl: '1.3.6.1.4.1.3704.1.3.2',
  snpSpl: '1.3.6.1.4.1.3704.1.3.3',
  ucodeSpl: '1.3.6.1.4.1.3704.1.3.8',
  fmcSpl: '1.3.6.1.4.1.3704.1.3.9',
  hwId: '1.3.6.1.4.1.3704.1.4',
  cspId: '1.3.6.1.4.1.3704.1.5',
} as const;

export type EndorsementKind = 'vcek' | 'vlek';

export interface EndorsementInfo {
  kind: EndorsementKind;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** The productName extension as written ("Milan-B0"). */
  productName?: string;
  /** The product from productName, else from the issuer's name ("SEV-Genoa", "SEV-VLEK-Milan"). */
  product?: SnpProduct;
  structVersion?: number;
  /** The TCB the key was derived for, per component. */
  tcb: Partial<Record<TcbComponent, number>>;
  /** VCEK only: the chip the key belongs to. */
  hwId?: Uint8Array;
  /** VLEK only: the cloud provider it was issued to. */
  cspId?: string;
}

function certificateError(error: unknown, what: string): SigilError {
  return asSigilError(error, 'snp.certificate_malformed', `the ${what} is not a valid X.509 certificate`);
}

/**
 * Parsed once per distinct DER (core/x509-cache.ts): ASN.1 parsing would otherwise dominate
 * verification time. The strictness check runs on every call, since the shared cache may hold
 * the same bytes parsed for a less strict caller.
 */
export function parseCertificate(der: Uint8Array, what = 'certificate'): x509.X509Certificate {
  try {
    assertStrictSignedDer(der, 'certificate');
    return certificateFromDer(der);
  } catch (error) {
    throw certificateError(error, what);
  }
}

/** PEM text (any number of certificates) or DER bytes → certificates, in the order given. */
export function parseCertificates(input: Uint8Array | string, what = 'certificate'): x509.X509Certificate[] {
  if (typeof input !== 'string') {
    const text = input.length > 0 && input[0] === 0x2d ? new TextDecoder().decode(input) : undefined; // "-----BEGIN"
    if (text === undefined) return [parseCertificate(input, what)];
    input = text;
  }
  const blocks = [...input.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  if (blocks.length === 0) throw new SigilError('snp.certificate_malformed', `no PEM certificate found in the ${what}`);
  return blocks.map((m) => parseCertificate(decodeBase64(m[1], what), what));
}

function decodeBase64(text: string, what: string): Uint8Array {
  try {
    return fromBase64(text);
  } catch (error) {
    throw new SigilError('snp.certificate_malformed', `the ${what} is not valid base64 PEM`, {}, { cause: error });
  }
}

export function commonName(name: string): string {
  const match = /(?:^|,\s*)CN=([^,]+)/.exec(name);
  return match ? match[1].trim() : '';
}

const derInteger = (value: ArrayBuffer, oid: string) => derSmallInteger(new Uint8Array(value), `extension ${oid}`);
const derIa5 = (value: ArrayBuffer, oid: string) => derIa5String(new Uint8Array(value), `extension ${oid}`);

/** Read the AMD extensions of a VCEK or VLEK; the kind comes from the subject CN. */
export function describeEndorsement(cert: x509.X509Certificate): EndorsementInfo {
  try {
    return describe(cert);
  } catch (error) {
    throw asSigilError(error, 'snp.certificate_malformed', 'the endorsement certificate could not be read');
  }
}

function describe(cert: x509.X509Certificate): EndorsementInfo {
  const cn = commonName(cert.subject);
  const kind: EndorsementKind | undefined = cn === 'SEV-VCEK' ? 'vcek' : cn === 'SEV-VLEK' ? 'vlek' : undefined;
  if (!kind) throw new SigilError('snp.endorsement_key_invalid', `"${cn}" is not a VCEK or VLEK certificate (CN SEV-VCEK or SEV-VLEK)`, { subject: cert.subject });
  const ext = new Map(cert.extensions.map((e) => [e.type, e.value]));
  const info: EndorsementInfo = { kind, subject: cert.subject, issuer: cert.issuer, notBefore: cert.notBefore, notAfter: cert.notAfter, tcb: {} };
  try {
    const get = (oid: string) => ext.get(oid);
    const structVersion = get(AMD_OID.structVersion);
    if (structVersion) info.structVersion = derInteger(structVersion, AMD_OID.structVersion);
    const productName = get(AMD_OID.productName);
    if (productName) info.productName = derIa5(productName, AMD_OID.productName);
    const spls: [TcbComponent, string][] = [['bootloader', AMD_OID.blSpl], ['tee', AMD_OID.teeSpl], ['snp', AMD_OID.snpSpl], ['microcode', AMD_OID.ucodeSpl], ['fmc', AMD_OID.fmcSpl]];
    for (const [component, oid] of spls) {
      const value = get(oid);
      if (value) info.tcb[component] = derInteger(value, oid);
    }
    const hwId = get(AMD_OID.hwId);
    if (hwId) info.hwId = new Uint8Array(hwId.slice(0));
    const cspId = get(AMD_OID.cspId);
    if (cspId) info.cspId = derIa5(cspId, AMD_OID.cspId);
  } catch (error) {
    throw asSigilError(error, 'snp.certificate_malformed', 'an AMD extension of the endorsement certificate is malformed');
  }
  // The issuer names the product too: "SEV-Milan" (ASK) or "SEV-VLEK-Milan" (ASVK).
  const issuerProduct = productFromName(commonName(cert.issuer).replace(/^SEV-(VLEK-)?/, ''));
  const namedProduct = info.productName ? productFromName(info.productName) : undefined;
  if (namedProduct && issuerProduct && namedProduct !== issuerProduct) {
    throw new SigilError('snp.product_mismatch', `the ${kind.toUpperCase()} names product ${namedProduct} but its issuer is for ${issuerProduct}`, { productName: info.productName, issuer: cert.issuer });
  }
  info.product = namedProduct ?? issuerProduct;
  return info;
}
