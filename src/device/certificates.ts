import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { SigilError, asSigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { certificateFromDer, certificateFromText } from '../core/x509-cache.ts';
import { explicit, sequence, utf8Name } from './der.ts';
import { OID, checkProductId, checkSerial } from './identifiers.ts';

/**
 * The vendor's certificates: issuing them (CA, product, policy-signing, device identity) with
 * @peculiar/x509 over WebCrypto keys, reading the product ID and serial back out, and validating a
 * chain to a given root. Where the product ID and serial live is fixed in identifiers.ts.
 */

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** IEEE 802.1AR: a device identity that should not expire carries GeneralizedTime 99991231235959Z. */
export const NO_EXPIRY = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

export type CertificateRole = 'root-ca' | 'manufacturing-ca' | 'product-ca' | 'product' | 'policy-signing' | 'device';

export interface IssueOptions {
  role: CertificateRole;
  /** The subject's common name. */
  commonName: string;
  vendor: string;
  /** The certified key (the subject's public key, or its private key). */
  subjectKey: KeyObject;
  /** The issuer's private key; the subject's own key for a self-signed root. */
  issuerKey: KeyObject;
  /** Absent for the self-signed root. */
  issuerCertificate?: x509.X509Certificate;
  productId?: string;
  serial?: string;
  notBefore?: Date;
  notAfter?: Date;
}

function curveHash(key: KeyObject): { namedCurve: string; hash: string } {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (curve === 'prime256v1') return { namedCurve: 'P-256', hash: 'SHA-256' };
  if (curve === 'secp384r1') return { namedCurve: 'P-384', hash: 'SHA-384' };
  throw new SigilError('keyset.key_unsupported', `vendor keys are ECDSA P-256 or P-384, not ${key.asymmetricKeyType} ${curve ?? ''}`.trim());
}

/** A node KeyObject as a WebCrypto ECDSA key (private → sign, public → verify). */
export function ecdsaCryptoKey(key: KeyObject): CryptoKey {
  const { namedCurve } = curveHash(key);
  return key.toCryptoKey({ name: 'ECDSA', namedCurve }, true, key.type === 'private' ? ['sign'] : ['verify']) as CryptoKey;
}

/** subjectAltName directoryName with the TCG platform attributes (identifiers.ts). */
function platformAltName(vendor: string, productId: string, serial?: string): x509.Extension {
  const attributes: [string, string][] = [
    [OID.platformManufacturer, vendor],
    [OID.platformModel, productId],
  ];
  if (serial !== undefined) attributes.push([OID.platformSerial, serial]);
  // GeneralNames ::= SEQUENCE OF GeneralName; directoryName [4] EXPLICIT Name.
  const value = sequence(explicit(4, utf8Name(attributes)));
  return new x509.Extension(OID.subjectAltName, false, value as Uint8Array<ArrayBuffer>);
}

const ROLE_USAGE: Record<CertificateRole, { ca?: number; usages: number; eku?: string[] }> = {
  'root-ca': { ca: 1, usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign },
  'manufacturing-ca': { ca: 0, usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign },
  'product-ca': { ca: 0, usages: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign },
  product: { usages: x509.KeyUsageFlags.digitalSignature, eku: [OID.codeSigning] },
  'policy-signing': { usages: x509.KeyUsageFlags.digitalSignature, eku: [OID.codeSigning] },
  device: { usages: x509.KeyUsageFlags.digitalSignature, eku: [OID.clientAuth] },
};

export async function issueCertificate(options: IssueOptions): Promise<x509.X509Certificate> {
  const usage = ROLE_USAGE[options.role];
  const subjectPublic = options.subjectKey.type === 'public' ? options.subjectKey : createPublicKey(options.subjectKey);
  const publicCryptoKey = ecdsaCryptoKey(subjectPublic);
  const { namedCurve, hash } = curveHash(options.issuerKey);
  const subject: x509.JsonNameParams = [{ CN: [options.commonName] }];
  if (options.serial !== undefined) subject.push({ [OID.serialNumber]: [{ printableString: checkSerial(options.serial) }] });
  subject.push({ O: [options.vendor] });
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(usage.ca !== undefined, usage.ca, true),
    new x509.KeyUsagesExtension(usage.usages, true),
    await x509.SubjectKeyIdentifierExtension.create(publicCryptoKey),
  ];
  if (usage.eku) extensions.push(new x509.ExtendedKeyUsageExtension(usage.eku, false));
  if (options.issuerCertificate) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(options.issuerCertificate, false));
  if (options.productId !== undefined) extensions.push(platformAltName(options.vendor, checkProductId(options.productId), options.serial));
  const notBefore = options.notBefore ?? new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = options.notAfter ?? NO_EXPIRY;
  // A positive 16-byte serial (RFC 5280 allows up to 20 octets).
  const serialBytes = new Uint8Array(randomBytes(16));
  serialBytes[0] &= 0x7f;
  const common = { serialNumber: toHex(serialBytes), notBefore, notAfter, extensions, signingAlgorithm: { name: 'ECDSA', hash, namedCurve } };
  const name = new x509.Name(subject);
  if (!options.issuerCertificate) {
    return x509.X509CertificateGenerator.create({ ...common, subject: name, issuer: name, publicKey: publicCryptoKey, signingKey: ecdsaCryptoKey(options.issuerKey) });
  }
  return x509.X509CertificateGenerator.create({
    ...common,
    subject: name,
    issuer: options.issuerCertificate.subjectName,
    publicKey: publicCryptoKey,
    signingKey: ecdsaCryptoKey(options.issuerKey),
  });
}

/**
 * The same few certificates (trust bundle, product and device certificates) are parsed again and
 * again — per command, per record — and @peculiar/x509 takes about 0.5 ms each: parsing goes
 * through the shared, bounded cache of core/x509-cache.ts. X509Certificate objects are never
 * modified after parsing.
 */
export function parseCertificatePem(text: unknown, what: string, code = 'x509.certificate_malformed'): x509.X509Certificate {
  if (typeof text !== 'string' || !text.includes('-----BEGIN CERTIFICATE-----')) throw new SigilError(code, `the ${what} is not a PEM certificate`, { what });
  try {
    return certificateFromText(text);
  } catch (error) {
    throw asSigilError(error, code, `the ${what} is not a valid X.509 certificate`);
  }
}

export function parseCertificateDer(der: Uint8Array, what: string, code = 'x509.certificate_malformed'): x509.X509Certificate {
  try {
    return certificateFromDer(der);
  } catch (error) {
    throw asSigilError(error, code, `the ${what} is not a valid DER X.509 certificate`);
  }
}

export function certificatePem(cert: x509.X509Certificate): string {
  return `${cert.toString('pem')}\n`;
}

export interface PlatformClaims {
  vendor?: string;
  productId?: string;
  serial?: string;
}

/**
 * The product ID (and serial, for device certificates) a certificate carries, read from the
 * subjectAltName directoryName and the subject serialNumber. Inconsistent or malformed values are
 * an error, never silently dropped.
 */
export function platformClaims(cert: x509.X509Certificate): PlatformClaims {
  const claims: PlatformClaims = {};
  try {
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    for (const name of san?.names.items ?? []) {
      if (name.type !== 'dn') continue;
      const dn = new x509.Name(name.value);
      const one = (oid: string) => {
        const values = dn.getField(oid);
        if (values.length > 1) throw new SigilError('x509.platform_claims_invalid', `the certificate names ${oid} more than once`, { oid });
        return values[0];
      };
      claims.vendor ??= one(OID.platformManufacturer);
      claims.productId ??= one(OID.platformModel);
      claims.serial ??= one(OID.platformSerial);
    }
    const subjectSerials = cert.subjectName.getField(OID.serialNumber);
    if (subjectSerials.length > 1) throw new SigilError('x509.platform_claims_invalid', 'the subject names serialNumber more than once');
    if (subjectSerials.length === 1 || claims.serial !== undefined) {
      if (subjectSerials[0] !== claims.serial) {
        throw new SigilError('x509.platform_claims_invalid', 'the subject serialNumber and the platformSerial differ', { subject: subjectSerials[0], platform: claims.serial });
      }
    }
  } catch (error) {
    throw asSigilError(error, 'x509.platform_claims_invalid', 'the certificate carries malformed product claims');
  }
  if (claims.productId !== undefined) checkProductId(claims.productId, 'x509.platform_claims_invalid');
  if (claims.serial !== undefined) checkSerial(claims.serial, 'x509.platform_claims_invalid');
  return claims;
}

export interface ChainOptions {
  /** Trust anchors (self-signed). */
  roots: x509.X509Certificate[];
  intermediates?: x509.X509Certificate[];
  /** The issuing CA the leaf must sit under directly (e.g. the manufacturing CA for device certificates). */
  issuer?: x509.X509Certificate;
  at?: Date;
  /** Error code prefix: `<prefix>_untrusted`, `<prefix>_invalid`. */
  code: string;
  what: string;
}

/**
 * Validate `leaf` up to one of `roots`: every signature and validity period at `at`, every issuer
 * a CA allowed to sign certificates, and (when given) the leaf issued by `issuer` exactly.
 */
export async function verifyChain(leaf: x509.X509Certificate, options: ChainOptions): Promise<x509.X509Certificate[]> {
  const at = options.at ?? new Date();
  const builder = new x509.X509ChainBuilder({ certificates: [...(options.intermediates ?? []), ...options.roots] });
  let chain: x509.X509Certificate[];
  try {
    chain = [...(await builder.build(leaf))];
  } catch (error) {
    throw asSigilError(error, `${options.code}_untrusted`, `the ${options.what} does not chain to the vendor's CA`);
  }
  const top = chain[chain.length - 1];
  if (chain.length < 2 || !options.roots.some((root) => root.equal(top))) {
    throw new SigilError(`${options.code}_untrusted`, `the ${options.what} does not chain to the vendor's CA`, { issuer: leaf.issuer, chainTop: top.subject });
  }
  const expectedIssuer = options.issuer;
  const subject = expectedIssuer?.subject;
  if (expectedIssuer && !chain[1].equal(expectedIssuer)) {
    throw new SigilError(`${options.code}_untrusted`, `the ${options.what} was not issued by ${subject}`, { issuer: leaf.issuer });
  }
  for (let i = 0; i < chain.length; i++) {
    const issuer = chain[i + 1] ?? chain[i];
    if (i + 1 < chain.length) {
      const constraints = issuer.getExtension(x509.BasicConstraintsExtension);
      const keyUsage = issuer.getExtension(x509.KeyUsagesExtension);
      if (!constraints?.ca || (keyUsage && !(keyUsage.usages & x509.KeyUsageFlags.keyCertSign))) {
        throw new SigilError(`${options.code}_invalid`, `"${issuer.subject}" is not a CA but issued "${chain[i].subject}"`);
      }
    }
    let ok = false;
    try {
      ok = await chain[i].verify({ publicKey: issuer.publicKey, date: at, signatureOnly: false });
    } catch (error) {
      throw asSigilError(error, `${options.code}_invalid`, `certificate "${chain[i].subject}" cannot be verified`);
    }
    if (!ok) throw new SigilError(`${options.code}_invalid`, `certificate "${chain[i].subject}" fails its signature or validity check`, { at: at.toISOString() });
  }
  return chain;
}

/** Whether a certificate certifies the same public key as `key`. */
export function certifiesKey(cert: x509.X509Certificate, key: KeyObject): boolean {
  const certified = createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: 'der', type: 'spki' });
  return certified.equals(key.type === 'public' ? key : createPublicKey(key));
}
