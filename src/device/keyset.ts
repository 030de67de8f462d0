import type * as x509 from '@peculiar/x509';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { certificatePem, issueCertificate, parseCertificatePem, platformClaims } from './certificates.ts';
import { checkProductId } from './identifiers.ts';
import { field, parseJsonObject } from './json-input.ts';
import { readKeyFile, writeKeyFile, writePrivateFile } from './key-files.ts';
import { policySigningKey, vendorTrustDocument, type PolicySigningKey, type VendorTrustDocument } from './trust.ts';

/**
 * A vendor keyset: one folder (mode 0700) holding the vendor's CA hierarchy and signing keys.
 *
 *   keyset.json                 index (public facts only; format "sigil.keyset.v1")
 *   root-ca.key / .crt          self-signed vendor root, ECDSA P-384; signs only the CAs below
 *   manufacturing-ca.key / .crt device identity CA (P-256): issues device certificates at provisioning
 *   product-ca.key / .crt       product CA (P-256): issues one certificate per product
 *   products/<id>.key / .crt    product signing keys: sign release manifests of that product
 *   policy-signing.key / .crt   boot-policy key (P-256) for TPM2_PolicyAuthorize; certificate from the root
 *   escrow.key / escrow.pub     ECDH P-256 key the TPM hierarchy authorizations are encrypted to
 *
 * Keys are PKCS#8 PEM files of mode 0600 (key-files.ts), encrypted when a passphrase is given;
 * certificates are PEM. A sealed bundle (issue 5 item 7) can use this keyset as it is: the product
 * key signs the bundle, the trust bundle's product certificate verifies it, and devices are named
 * by the provisioning records' storage keys.
 */
export const KEYSET_FORMAT = 'sigil.keyset.v1';

type KeyRole = 'root-ca' | 'manufacturing-ca' | 'product-ca' | 'policy-signing' | 'escrow';

const FILES: Record<KeyRole, { key: string; certificate?: string }> = {
  'root-ca': { key: 'root-ca.key', certificate: 'root-ca.crt' },
  'manufacturing-ca': { key: 'manufacturing-ca.key', certificate: 'manufacturing-ca.crt' },
  'product-ca': { key: 'product-ca.key', certificate: 'product-ca.crt' },
  'policy-signing': { key: 'policy-signing.key', certificate: 'policy-signing.crt' },
  escrow: { key: 'escrow.key' },
};

export interface CreateKeysetOptions {
  dir: string;
  vendor: string;
  products?: string[];
  /** Encrypt every private key under this passphrase (scrypt + AES-256-CBC PKCS#8). */
  passphrase?: string;
}

function newKey(curve: 'P-256' | 'P-384'): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: curve }).privateKey;
}

function writeCertificate(path: string, cert: x509.X509Certificate): void {
  writePrivateFile(path, certificatePem(cert), { exclusive: true });
}

export async function createKeyset(options: CreateKeysetOptions): Promise<Keyset> {
  if (typeof options.vendor !== 'string' || options.vendor.trim().length === 0 || options.vendor.length > 64) {
    throw new SigilError('keyset.vendor_invalid', 'the vendor name must be 1-64 characters');
  }
  const products = [...new Set((options.products ?? []).map((p) => checkProductId(p)))];
  if (existsSync(join(options.dir, 'keyset.json'))) throw new SigilError('keyset.file_exists', `${options.dir} already holds a keyset`, { dir: options.dir });
  mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const vendor = options.vendor;
  const rootKey = newKey('P-384');
  const root = await issueCertificate({ role: 'root-ca', commonName: `${vendor} Sigil root CA`, vendor, subjectKey: rootKey, issuerKey: rootKey });
  const issued: Partial<Record<KeyRole, { key: KeyObject; cert?: x509.X509Certificate }>> = { 'root-ca': { key: rootKey, cert: root } };
  for (const [role, commonName] of [
    ['manufacturing-ca', `${vendor} manufacturing CA`],
    ['product-ca', `${vendor} product CA`],
    ['policy-signing', `${vendor} boot policy signing`],
  ] as const) {
    const key = newKey('P-256');
    issued[role] = { key, cert: await issueCertificate({ role, commonName, vendor, subjectKey: key, issuerKey: rootKey, issuerCertificate: root }) };
  }
  issued.escrow = { key: newKey('P-256') };
  for (const role of Object.keys(FILES) as KeyRole[]) {
    const entry = issued[role]!;
    writeKeyFile(join(options.dir, FILES[role].key), entry.key, options.passphrase);
    if (entry.cert) writeCertificate(join(options.dir, FILES[role].certificate!), entry.cert);
  }
  writePrivateFile(join(options.dir, 'escrow.pub'), createPublicKey(issued.escrow!.key).export({ type: 'spki', format: 'pem' }).toString(), { exclusive: true });
  const policy = await policySigningKey(issued['policy-signing']!.cert!);
  writePrivateFile(
    join(options.dir, 'keyset.json'),
    `${JSON.stringify({ format: KEYSET_FORMAT, vendor, created: new Date().toISOString(), encrypted: options.passphrase !== undefined, policySigningKeyName: toHex(policy.name) }, null, 2)}\n`,
    { exclusive: true },
  );
  const keyset = await Keyset.open(options.dir, options.passphrase);
  for (const product of products) await keyset.addProduct(product);
  return keyset;
}

/** An opened keyset: certificates loaded, private keys read (and decrypted) only when asked for. */
export class Keyset {
  readonly dir: string;
  readonly vendor: string;
  readonly encrypted: boolean;
  private readonly passphrase: string | undefined;
  private readonly certificates = new Map<string, x509.X509Certificate>();

  private constructor(dir: string, vendor: string, encrypted: boolean, passphrase: string | undefined) {
    this.dir = dir;
    this.vendor = vendor;
    this.encrypted = encrypted;
    this.passphrase = passphrase;
  }

  static async open(dir: string, passphrase?: string): Promise<Keyset> {
    let text: string;
    try {
      text = readFileSync(join(dir, 'keyset.json'), 'utf8');
    } catch (error) {
      throw new SigilError('keyset.not_found', `${dir} holds no Sigil keyset (keyset.json)`, { dir }, { cause: error });
    }
    const index = parseJsonObject(text, 'keyset.invalid', 'keyset index');
    if (index.format !== KEYSET_FORMAT) throw new SigilError('keyset.invalid', `not a Sigil keyset (format ${KEYSET_FORMAT})`);
    // An encrypted keyset opens without its passphrase: certificates and the trust bundle are
    // public; only reading a private key asks for it (keyset.passphrase_required).
    const encrypted = index.encrypted === true;
    return new Keyset(dir, field(index, 'vendor', 'string', 'keyset.invalid'), encrypted, passphrase);
  }

  private certificateAt(relative: string, what: string): x509.X509Certificate {
    let cert = this.certificates.get(relative);
    if (!cert) {
      let text: string;
      try {
        text = readFileSync(join(this.dir, relative), 'utf8');
      } catch (error) {
        throw new SigilError('keyset.file_missing', `the keyset has no ${what} (${relative})`, { file: relative }, { cause: error });
      }
      cert = parseCertificatePem(text, what, 'keyset.invalid');
      this.certificates.set(relative, cert);
    }
    return cert;
  }

  certificate(role: Exclude<KeyRole, 'escrow'>): x509.X509Certificate {
    return this.certificateAt(FILES[role].certificate!, `${role} certificate`);
  }

  privateKey(role: KeyRole): KeyObject {
    return readKeyFile(join(this.dir, FILES[role].key), this.encrypted ? this.passphrase : undefined);
  }

  escrowPublicKey(): KeyObject {
    try {
      return createPublicKey(readFileSync(join(this.dir, 'escrow.pub'), 'utf8'));
    } catch (error) {
      throw new SigilError('keyset.file_missing', 'the keyset has no usable escrow.pub', {}, { cause: error });
    }
  }

  products(): string[] {
    const dir = join(this.dir, 'products');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((f) => f.endsWith('.crt')).map((f) => f.slice(0, -4)).sort();
  }

  productCertificate(productId: string): x509.X509Certificate {
    checkProductId(productId);
    if (!existsSync(join(this.dir, 'products', `${productId}.crt`))) {
      throw new SigilError('device.product_unknown', `the keyset has no product ${productId}`, { productId });
    }
    return this.certificateAt(join('products', `${productId}.crt`), `product certificate for ${productId}`);
  }

  productKey(productId: string): KeyObject {
    this.productCertificate(productId);
    return readKeyFile(join(this.dir, 'products', `${productId}.key`), this.encrypted ? this.passphrase : undefined);
  }

  /** Issue a product certificate (product ID in it) and its signing key. */
  async addProduct(productId: string): Promise<x509.X509Certificate> {
    checkProductId(productId);
    if (existsSync(join(this.dir, 'products', `${productId}.crt`))) {
      throw new SigilError('keyset.file_exists', `product ${productId} already exists in this keyset`, { productId });
    }
    const key = newKey('P-256');
    const cert = await issueCertificate({
      role: 'product',
      commonName: `${this.vendor} ${productId} release signing`,
      vendor: this.vendor,
      productId,
      subjectKey: key,
      issuerKey: this.privateKey('product-ca'),
      issuerCertificate: this.certificate('product-ca'),
    });
    if (platformClaims(cert).productId !== productId) throw new SigilError('keyset.invalid', 'the product certificate lost its product ID');
    writeKeyFile(join(this.dir, 'products', `${productId}.key`), key, this.encrypted ? this.passphrase : undefined);
    writeCertificate(join(this.dir, 'products', `${productId}.crt`), cert);
    return cert;
  }

  /** The policy-signing key as the TPM names it. */
  policySigningKey(): Promise<PolicySigningKey> {
    return policySigningKey(this.certificate('policy-signing'));
  }

  /** The public trust bundle for devices and brokers (trust.ts). */
  trustDocument(): VendorTrustDocument {
    return vendorTrustDocument({
      vendor: this.vendor,
      root: this.certificate('root-ca'),
      manufacturingCa: this.certificate('manufacturing-ca'),
      productCa: this.certificate('product-ca'),
      policySigning: this.certificate('policy-signing'),
      products: this.products().map((p) => this.productCertificate(p)),
    });
  }
}
