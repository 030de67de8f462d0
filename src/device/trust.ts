import type * as x509 from '@peculiar/x509';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { SigilError, asSigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { TPMA_OBJECT } from '../tpm/constants.ts';
import { objectName } from '../tpm/names.ts';
import { keyObjectToTpmPublic } from '../tpm/public-key.ts';
import type { TpmPublic } from '../tpm/structures/public.ts';
import { certificatePem, parseCertificatePem, platformClaims, verifyChain } from './certificates.ts';
import { parseJsonObject, field, optionalField } from './json-input.ts';

/**
 * The vendor trust bundle: the public half of a keyset, shipped inside the (measured) OS image and
 * handed to brokers. Everything a device needs to check what the vendor signs, nothing secret.
 *
 * File format (JSON, "sigil.vendor-trust.v1"):
 *   { "format": "sigil.vendor-trust.v1", "vendor": "Acme",
 *     "rootCertificate": PEM, "manufacturingCaCertificate": PEM, "productCaCertificate": PEM,
 *     "policySigningCertificate": PEM, "productCertificates": [PEM, ...] }
 * The policy-signing key's TPM form (below) is derived from its certificate, never read from the
 * file, so the bundle cannot name one key in X.509 and another to the TPM.
 */
export const TRUST_FORMAT = 'sigil.vendor-trust.v1';

export interface VendorTrustDocument {
  format: typeof TRUST_FORMAT;
  vendor: string;
  rootCertificate: string;
  manufacturingCaCertificate: string;
  productCaCertificate: string;
  policySigningCertificate: string;
  productCertificates: string[];
}

export interface PolicySigningKey {
  certificate: x509.X509Certificate;
  publicKey: KeyObject;
  /** The key as TPM2_LoadExternal takes it: what PolicyAuthorize names. */
  tpmPublic: TpmPublic;
  /** nameAlg ‖ SHA-256(TPMT_PUBLIC): the keySign name every sealed secret's policy commits to. */
  name: Uint8Array;
}

/** A validated trust bundle: every certificate chains to the root, every claim is consistent. */
export interface VendorTrust {
  vendor: string;
  root: x509.X509Certificate;
  manufacturingCa: x509.X509Certificate;
  productCa: x509.X509Certificate;
  policySigning: PolicySigningKey;
  products: Map<string, x509.X509Certificate>;
}

/**
 * The vendor's policy-signing key as a TPM public area: ECC, SHA-256 name, userWithAuth | sign,
 * no scheme (VerifySignature takes the scheme from the signature). Fixed, because the name of this
 * exact area is what sealed objects commit to.
 */
export function policySigningTpmPublic(publicKey: KeyObject): TpmPublic {
  return keyObjectToTpmPublic(publicKey, { objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign });
}

export async function policySigningKey(certificate: x509.X509Certificate): Promise<PolicySigningKey> {
  const publicKey = createPublicKey({ key: Buffer.from(certificate.publicKey.rawData), format: 'der', type: 'spki' });
  const tpmPublic = policySigningTpmPublic(publicKey);
  return { certificate, publicKey, tpmPublic, name: await objectName(tpmPublic) };
}

/** A trust bundle's parts, parsed but not yet checked against each other. */
export interface ParsedVendorTrust {
  vendor: string;
  root: x509.X509Certificate;
  manufacturingCa: x509.X509Certificate;
  productCa: x509.X509Certificate;
  policySigningCertificate: x509.X509Certificate;
  productCertificates: x509.X509Certificate[];
}

const TRUST_CODE = 'device.trust_invalid';

/** Parse a trust bundle (JSON text, bytes or a parsed value): shape and certificate syntax only. */
export function parseVendorTrust(input: unknown): ParsedVendorTrust {
  const doc = parseJsonObject(input, TRUST_CODE, 'vendor trust bundle');
  if (doc.format !== TRUST_FORMAT) throw new SigilError(TRUST_CODE, `not a Sigil vendor trust bundle (format ${TRUST_FORMAT})`);
  const cert = (name: string) => parseCertificatePem(field(doc, name, 'string', TRUST_CODE), name, TRUST_CODE);
  const productPems = optionalField(doc, 'productCertificates', 'array', TRUST_CODE) ?? [];
  if (productPems.length > 1000) throw new SigilError(TRUST_CODE, 'the trust bundle lists more than 1000 product certificates');
  return {
    vendor: field(doc, 'vendor', 'string', TRUST_CODE),
    root: cert('rootCertificate'),
    manufacturingCa: cert('manufacturingCaCertificate'),
    productCa: cert('productCaCertificate'),
    policySigningCertificate: cert('policySigningCertificate'),
    productCertificates: productPems.map((pem, i) => parseCertificatePem(pem, `product certificate ${i}`, TRUST_CODE)),
  };
}

/**
 * Validate a parsed bundle: every CA and the policy-signing certificate issued by the
 * self-signed root, every product certificate by the product CA with a product ID in it (one
 * per product), and a policy key the TPM can load.
 */
export async function verifyVendorTrust(parsed: ParsedVendorTrust, at?: Date): Promise<VendorTrust> {
  const { root, manufacturingCa, productCa } = parsed;
  if (root.subject !== root.issuer) throw new SigilError(TRUST_CODE, 'the trust bundle root certificate is not self-signed');
  // One key per role: a bundle naming the product CA as the manufacturing CA (or the root as
  // either) would let one CA's certificates pass as the other's.
  const roleKeys = [root, manufacturingCa, productCa, parsed.policySigningCertificate].map((c) => toHex(new Uint8Array(c.publicKey.rawData)));
  if (new Set(roleKeys).size !== roleKeys.length) throw new SigilError(TRUST_CODE, 'the trust bundle uses one key for two roles (root, manufacturing CA, product CA, policy signing)');
  const chain = { roots: [root], at, code: 'device.trust', what: '' };
  await verifyChain(manufacturingCa, { ...chain, what: 'manufacturing CA certificate', issuer: root });
  await verifyChain(productCa, { ...chain, what: 'product CA certificate', issuer: root });
  await verifyChain(parsed.policySigningCertificate, { ...chain, what: 'policy-signing certificate', issuer: root });
  const products = new Map<string, x509.X509Certificate>();
  for (const product of parsed.productCertificates) {
    await verifyChain(product, { ...chain, intermediates: [productCa], issuer: productCa, what: `product certificate "${product.subject}"` });
    const { productId } = platformClaims(product);
    if (!productId) throw new SigilError(TRUST_CODE, `product certificate "${product.subject}" carries no product ID`);
    if (products.has(productId)) throw new SigilError(TRUST_CODE, `the trust bundle holds two certificates for product ${productId}`, { productId });
    products.set(productId, product);
  }
  let policySigning: PolicySigningKey;
  try {
    policySigning = await policySigningKey(parsed.policySigningCertificate);
  } catch (error) {
    throw asSigilError(error, TRUST_CODE, 'the policy-signing certificate does not hold a key the TPM can load');
  }
  return { vendor: parsed.vendor, root, manufacturingCa, productCa, policySigning, products };
}

/** Parse and validate a trust bundle (JSON text, bytes or an already parsed value). */
export async function loadVendorTrust(input: unknown, at?: Date): Promise<VendorTrust> {
  return verifyVendorTrust(parseVendorTrust(input), at);
}

export function vendorTrustDocument(parts: {
  vendor: string;
  root: x509.X509Certificate;
  manufacturingCa: x509.X509Certificate;
  productCa: x509.X509Certificate;
  policySigning: x509.X509Certificate;
  products: x509.X509Certificate[];
}): VendorTrustDocument {
  return {
    format: TRUST_FORMAT,
    vendor: parts.vendor,
    rootCertificate: certificatePem(parts.root),
    manufacturingCaCertificate: certificatePem(parts.manufacturingCa),
    productCaCertificate: certificatePem(parts.productCa),
    policySigningCertificate: certificatePem(parts.policySigning),
    productCertificates: parts.products.map(certificatePem),
  };
}

/** The product certificate for `productId`, or a clear refusal. */
export function productCertificate(trust: VendorTrust, productId: string): x509.X509Certificate {
  const cert = trust.products.get(productId);
  if (!cert) throw new SigilError('device.product_unknown', `the vendor trust bundle has no product certificate for product ${productId}`, { productId });
  return cert;
}

/**
 * Product binding (issue: MachineOS never checked it): the device certificate, the product
 * certificate and the signed artefact must all name the same product.
 */
export function assertProductBinding(binding: { device: string; artefact: string; what: string; trust: VendorTrust }): void {
  const productCert = productCertificate(binding.trust, binding.artefact);
  const certified = platformClaims(productCert).productId;
  if (binding.artefact !== binding.device || certified !== binding.device) {
    throw new SigilError(
      'device.product_mismatch',
      `the ${binding.what} is for product ${binding.artefact}, but this device is product ${binding.device}`,
      { device: binding.device, artefact: binding.artefact, productCertificate: certified },
    );
  }
}
