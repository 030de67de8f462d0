/**
 * A private AMD-shaped PKI and report signer for tests of paths no real fixture covers (Turin and
 * report v5, CRLs, masked chip IDs, reported < committed TCB). Same formats as AMD's: RSASSA-PSS
 * SHA-384 (salt 48) ARK/ASK/ASVK, ECDSA P-384 VCEK/VLEK with the AMD extensions, reports signed
 * over bytes 0..0x29F with R and S stored little-endian in 72-byte fields. Never trusted by
 * default: verification must be given these authorities explicitly.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { toHex } from '../../../src/core/hex.ts';
import type { SnpProduct } from '../../../src/evidence/snp/product.ts';
import type { AmdAuthority } from '../../../src/evidence/snp/roots.ts';
import { AMD_OID } from '../../../src/evidence/snp/endorsement.ts';

const subtle = globalThis.crypto.subtle;
const PSS = { name: 'RSA-PSS', hash: 'SHA-384', saltLength: 48 } as const;
const name = (cn: string) => `OU=Engineering, C=US, L=Santa Clara, ST=CA, O=Advanced Micro Devices, CN=${cn}`;

export interface TestPki {
  product: SnpProduct;
  authorities: Record<SnpProduct, AmdAuthority>;
  ark: x509.X509Certificate;
  ask: x509.X509Certificate;
  asvk: x509.X509Certificate;
  arkKeys: CryptoKeyPair;
  askKeys: CryptoKeyPair;
}

async function rsaKeys(): Promise<CryptoKeyPair> {
  return subtle.generateKey({ ...PSS, modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

const caExtensions = () => [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)];

export async function makeTestPki(product: SnpProduct): Promise<TestPki> {
  const arkKeys = await rsaKeys();
  const askKeys = await rsaKeys();
  const asvkKeys = await rsaKeys();
  const validity = { notBefore: new Date('2023-01-01T00:00:00Z'), notAfter: new Date('2048-01-01T00:00:00Z') };
  const ark = await x509.X509CertificateGenerator.create({
    serialNumber: '030000', subject: name(`ARK-${product}`), issuer: name(`ARK-${product}`), ...validity,
    publicKey: arkKeys.publicKey, signingKey: arkKeys.privateKey, signingAlgorithm: PSS, extensions: caExtensions(),
  });
  const issue = (cn: string, serial: string, keys: CryptoKeyPair) =>
    x509.X509CertificateGenerator.create({
      serialNumber: serial, subject: name(cn), issuer: ark.subject, ...validity,
      publicKey: keys.publicKey, signingKey: arkKeys.privateKey, signingAlgorithm: PSS, extensions: caExtensions(),
    });
  const ask = await issue(`SEV-${product}`, '030001', askKeys);
  const asvk = await issue(`SEV-VLEK-${product}`, '030101', asvkKeys);
  const authority: AmdAuthority = {
    ark: ark.toString('pem'),
    arkSha256: toHex(new Uint8Array(await subtle.digest('SHA-256', ark.rawData))),
    ask: ask.toString('pem'),
    asvk: asvk.toString('pem'),
  };
  return { product, authorities: { Milan: authority, Genoa: authority, Turin: authority }, ark, ask, asvk, arkKeys, askKeys };
}

function derInteger(n: number): Uint8Array {
  const bytes = n >= 0x80 ? [0, n] : [n];
  return new Uint8Array([0x02, bytes.length, ...bytes]);
}

function derIa5(text: string): Uint8Array {
  return new Uint8Array([0x16, text.length, ...Array.from(text, (ch) => ch.charCodeAt(0))]);
}

export interface LeafOptions {
  kind?: 'vcek' | 'vlek';
  productName: string;
  structVersion: number;
  tcb: { bootloader: number; tee: number; snp: number; microcode: number; fmc?: number };
  hwId?: Uint8Array;
  notBefore?: Date;
  notAfter?: Date;
}

/** A VCEK (or VLEK) signed by the test ASK (ASVK signing is not needed by the tests). */
export async function makeLeaf(pki: TestPki, options: LeafOptions): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = (await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const ext = (oid: string, value: Uint8Array) => new x509.Extension(oid, false, value as Uint8Array<ArrayBuffer>);
  const extensions = [
    ext(AMD_OID.structVersion, derInteger(options.structVersion)),
    ext(AMD_OID.productName, derIa5(options.productName)),
    ext(AMD_OID.blSpl, derInteger(options.tcb.bootloader)),
    ext(AMD_OID.teeSpl, derInteger(options.tcb.tee)),
    ext(AMD_OID.snpSpl, derInteger(options.tcb.snp)),
    ext(AMD_OID.ucodeSpl, derInteger(options.tcb.microcode)),
  ];
  if (options.tcb.fmc !== undefined) extensions.push(ext(AMD_OID.fmcSpl, derInteger(options.tcb.fmc)));
  if (options.hwId) extensions.push(ext(AMD_OID.hwId, options.hwId));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '00',
    subject: name(options.kind === 'vlek' ? 'SEV-VLEK' : 'SEV-VCEK'),
    issuer: pki.ask.subject,
    notBefore: options.notBefore ?? new Date('2024-01-01T00:00:00Z'),
    notAfter: options.notAfter ?? new Date('2031-01-01T00:00:00Z'),
    publicKey: keys.publicKey,
    signingKey: pki.askKeys.privateKey,
    signingAlgorithm: PSS,
    extensions,
  });
  return { cert, keys };
}

export interface ReportFields {
  version: number;
  policy: bigint;
  vmpl?: number;
  currentTcb: bigint;
  reportedTcb: bigint;
  committedTcb: bigint;
  launchTcb: bigint;
  platformInfo?: bigint;
  keyInfo?: number;
  reportData?: Uint8Array;
  measurement?: Uint8Array;
  chipId?: Uint8Array;
  cpuid?: [number, number, number];
  launchMitVector?: bigint;
  currentMitVector?: bigint;
  current?: [number, number, number];
}

/** Lay out and sign a report (offsets as in src/evidence/snp/report.ts). */
export async function makeReport(fields: ReportFields, signingKey: CryptoKey): Promise<Uint8Array> {
  const bytes = new Uint8Array(0x4a0);
  const view = new DataView(bytes.buffer);
  view.setUint32(0x00, fields.version, true);
  view.setBigUint64(0x08, fields.policy, true);
  view.setUint32(0x30, fields.vmpl ?? 0, true);
  view.setUint32(0x34, 1, true);
  view.setBigUint64(0x38, fields.currentTcb, true);
  view.setBigUint64(0x40, fields.platformInfo ?? 0n, true);
  view.setUint32(0x48, fields.keyInfo ?? 0, true);
  if (fields.reportData) bytes.set(fields.reportData, 0x50);
  if (fields.measurement) bytes.set(fields.measurement, 0x90);
  view.setBigUint64(0x180, fields.reportedTcb, true);
  if (fields.cpuid) bytes.set(fields.cpuid, 0x188);
  if (fields.chipId) bytes.set(fields.chipId, 0x1a0);
  view.setBigUint64(0x1e0, fields.committedTcb, true);
  const [major, minor, build] = fields.current ?? [1, 58, 1];
  bytes.set([build, minor, major, 0, build, minor, major, 0], 0x1e8);
  view.setBigUint64(0x1f0, fields.launchTcb, true);
  view.setBigUint64(0x1f8, fields.launchMitVector ?? 0n, true);
  view.setBigUint64(0x200, fields.currentMitVector ?? 0n, true);
  const signature = new Uint8Array(await subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, signingKey, bytes.subarray(0, 0x2a0)));
  // P1363 (R || S, 48 bytes big-endian each) → 72-byte little-endian fields.
  bytes.set(signature.subarray(0, 48).reverse(), 0x2a0);
  bytes.set(signature.subarray(48, 96).reverse(), 0x2a0 + 72);
  return bytes;
}

export async function makeCrl(pki: TestPki, options: { revoked?: string[]; thisUpdate?: Date; nextUpdate?: Date; signer?: CryptoKey }): Promise<Uint8Array> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: pki.ark.subject,
    thisUpdate: options.thisUpdate ?? new Date('2025-01-01T00:00:00Z'),
    nextUpdate: options.nextUpdate ?? new Date('2026-01-01T00:00:00Z'),
    signingAlgorithm: PSS,
    signingKey: options.signer ?? pki.arkKeys.privateKey,
    entries: (options.revoked ?? []).map((serialNumber) => ({ serialNumber, revocationDate: new Date('2024-06-01T00:00:00Z') })),
  });
  return new Uint8Array(crl.rawData);
}
