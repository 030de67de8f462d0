/**
 * A throw-away DCAP-shaped PKI for the paths real fixtures cannot reach (revoked certificates,
 * CRL mistakes, re-signed QE reports, other TCB statuses): root, PCK Platform CA, PCK leaf
 * carrying a real SGX extension, and a TCB signing certificate, all ECDSA P-256 with Intel's names.
 * Quotes are rebuilt around a real header+body, whose attestation-key signature stays valid.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { concatBytes, utf8 } from '../../../src/core/bytes.ts';
import { parsePemCertificates } from '../../../src/evidence/tdx/chain.ts';
import { SGX_EXTENSION_OID } from '../../../src/evidence/tdx/pck-extensions.ts';
import type { TdxQuote } from '../../../src/evidence/tdx/quote.ts';

const KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DN = (cn: string) => `CN=${cn}, O=Intel Corporation, L=Santa Clara, ST=CA, C=US`;
const VALIDITY = { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2040-01-01T00:00:00Z') };

export interface SyntheticPki {
  root: x509.X509Certificate;
  pckCa: x509.X509Certificate;
  leaf: x509.X509Certificate;
  signing: x509.X509Certificate;
  keys: { root: CryptoKeyPair; pckCa: CryptoKeyPair; leaf: CryptoKeyPair; signing: CryptoKeyPair };
  pckChainPem: string;
  signingChainPem: string;
}

const generate = () => crypto.subtle.generateKey(KEY, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;

export async function syntheticPki(options: { sgxExtensionFrom: TdxQuote; leafCn?: string; signingCn?: string }): Promise<SyntheticPki> {
  const realLeaf = parsePemCertificates(options.sgxExtensionFrom.pckCertChainPem, 'pck_chain')[0];
  const sgx = realLeaf.getExtension(SGX_EXTENSION_OID)!;
  const keys = { root: await generate(), pckCa: await generate(), leaf: await generate(), signing: await generate() };
  const ca = (pathLength: number) => [new x509.BasicConstraintsExtension(true, pathLength, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)];
  const root = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: DN('Intel SGX Root CA'), keys: keys.root, signingAlgorithm: SIGN, extensions: ca(1), ...VALIDITY });
  const issue = (serialNumber: string, cn: string, issuer: x509.X509Certificate, issuerKeys: CryptoKeyPair, subjectKeys: CryptoKeyPair, extensions: x509.Extension[]) =>
    x509.X509CertificateGenerator.create({ serialNumber, subject: DN(cn), issuer: issuer.subject, publicKey: subjectKeys.publicKey, signingKey: issuerKeys.privateKey, signingAlgorithm: SIGN, extensions, ...VALIDITY });
  const pckCa = await issue('02', 'Intel SGX PCK Platform CA', root, keys.root, keys.pckCa, ca(0));
  const leaf = await issue('03', options.leafCn ?? 'Intel SGX PCK Certificate', pckCa, keys.pckCa, keys.leaf, [new x509.Extension(SGX_EXTENSION_OID, false, sgx.value)]);
  const signing = await issue('04', options.signingCn ?? 'Intel SGX TCB Signing', root, keys.root, keys.signing, []);
  return {
    root,
    pckCa,
    leaf,
    signing,
    keys,
    pckChainPem: [leaf, pckCa, root].map((c) => c.toString('pem')).join('\n') + '\n',
    signingChainPem: [signing, root].map((c) => c.toString('pem')).join('\n') + '\n',
  };
}

export async function crl(issuer: x509.X509Certificate, signingKey: CryptoKey, revoked: x509.X509Certificate[], window = { thisUpdate: new Date('2025-07-01T00:00:00Z'), nextUpdate: new Date('2025-08-01T00:00:00Z') }): Promise<Uint8Array> {
  const list = await x509.X509CrlGenerator.create({
    issuer: issuer.subject,
    signingKey,
    signingAlgorithm: SIGN,
    ...window,
    entries: revoked.map((c) => ({ serialNumber: c.serialNumber, revocationDate: new Date('2025-06-01T00:00:00Z') })),
  });
  return new Uint8Array(list.rawData);
}

export async function signP256(key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign(SIGN, key, data as Uint8Array<ArrayBuffer>));
}

const u16le = (n: number) => new Uint8Array([n & 0xff, n >> 8]);
const u32le = (n: number) => new Uint8Array([n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24]);

/** The quote's header+body and attestation key, with a new PCK chain and a re-signed QE report. */
export async function rebuildQuote(quote: TdxQuote, pckChainPem: string, pckKey: CryptoKey, qeReportBytes = quote.qeReportBytes): Promise<Uint8Array> {
  const pem = utf8.encode(pckChainPem);
  const qeData = concatBytes(qeReportBytes, await signP256(pckKey, qeReportBytes), u16le(quote.qeAuthData.length), quote.qeAuthData, u16le(5), u32le(pem.length), pem);
  const sigData = concatBytes(quote.quoteSignature, quote.attestationKey, u16le(6), u32le(qeData.length), qeData);
  return concatBytes(quote.signedBytes, u32le(sigData.length), sigData);
}
