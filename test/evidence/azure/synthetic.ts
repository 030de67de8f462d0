/**
 * Synthetic Azure SNP evidence for paths no real fixture covers (VMPL > 0, SHA-384 runtime-data
 * hash, user-data binding, missing AK, ECDSA AK): a private AMD-shaped PKI (test/evidence/snp/
 * synthetic.ts) signs an SNP report whose REPORT_DATA binds runtime data holding a WebCrypto RSA
 * AK; that AK signs a vTPM quote rebuilt from the real Milan quote. Never trusted by default.
 */
import { createHash } from 'node:crypto';
import { marshal, unmarshal } from '../../../src/tpm/marshal/codec.ts';
import { TPMS_ATTEST } from '../../../src/tpm/structures/attest.ts';
import { toHex, fromHex } from '../../../src/core/hex.ts';
import { encodeTcb } from '../../../src/evidence/snp/tcb.ts';
import { makeLeaf, makeReport, makeTestPki, type TestPki } from '../snp/synthetic.ts';
import { snpQuoteText } from './support.ts';

const subtle = globalThis.crypto.subtle;

export interface SyntheticOptions {
  vmpl?: number;
  hashType?: 1 | 2 | 3;
  userData?: Uint8Array;
  nonce?: Uint8Array;
  /** Replace the whole variable data (after the AK is made). */
  variableData?: (akJwk: JsonWebKey) => string;
  /** Bind the wrong bytes into REPORT_DATA. */
  reportDataOverride?: Uint8Array;
}

export interface Synthetic {
  hcl: Uint8Array;
  tpmQuote: { signature: string; message: string; pcrs: string[] };
  vcek: string;
  pki: TestPki;
}

const TCB = { bootloader: 3, tee: 0, snp: 8, microcode: 115 };
let pkiPromise: Promise<TestPki> | undefined;
let leafPromise: Promise<Awaited<ReturnType<typeof makeLeaf>>> | undefined;
let akPromise: Promise<CryptoKeyPair> | undefined;

export function hclBytes(reportType: number, hardwareReport: Uint8Array, variableData: Uint8Array, hashType = 1): Uint8Array {
  const out = new Uint8Array(0x4d4 + variableData.length + 64);
  const view = new DataView(out.buffer);
  out.set([0x48, 0x43, 0x4c, 0x41], 0); // "HCLA"
  view.setUint32(4, 2, true);
  view.setUint32(8, 0x4d4 + variableData.length, true);
  view.setUint32(12, 2, true);
  out.set(hardwareReport, 0x20);
  view.setUint32(0x4c0, 20 + variableData.length, true);
  view.setUint32(0x4c4, 1, true);
  view.setUint32(0x4c8, reportType, true);
  view.setUint32(0x4cc, hashType, true);
  view.setUint32(0x4d0, variableData.length, true);
  out.set(variableData, 0x4d4);
  return out;
}

export async function makeSynthetic(options: SyntheticOptions = {}): Promise<Synthetic> {
  pkiPromise ??= makeTestPki('Milan');
  const pki = await pkiPromise;
  const chipId = new Uint8Array(64).fill(7);
  leafPromise ??= makeLeaf(pki, { productName: 'Milan-B0', structVersion: 1, tcb: TCB, hwId: chipId });
  const leaf = await leafPromise;
  akPromise ??= subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) }, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
  const ak = await akPromise;
  const akJwk = await subtle.exportKey('jwk', ak.publicKey);
  const userData = options.userData ?? new Uint8Array(64);
  const json =
    options.variableData?.(akJwk) ??
    JSON.stringify({
      keys: [{ kid: 'HCLAkPub', key_ops: ['sign'], kty: 'RSA', e: akJwk.e, n: akJwk.n }],
      'vm-configuration': { 'console-enabled': false, 'secure-boot': true, 'tpm-enabled': true, vmUniqueId: 'SYNTHETIC' },
      'user-data': toHex(userData).toUpperCase(),
    });
  const variableData = new TextEncoder().encode(json);
  const hashType = options.hashType ?? 1;
  const digest = createHash(({ 1: 'sha256', 2: 'sha384', 3: 'sha512' } as const)[hashType]).update(variableData).digest();
  const reportData = new Uint8Array(64);
  reportData.set(options.reportDataOverride ?? digest);
  const tcb = encodeTcb(TCB, 'Milan');
  const report = await makeReport(
    { version: 3, policy: 0x30000n, vmpl: options.vmpl ?? 0, currentTcb: tcb, reportedTcb: tcb, committedTcb: tcb, launchTcb: tcb, reportData, chipId, cpuid: [0x19, 0x01, 0x01] },
    leaf.keys.privateKey,
  );
  // The real Milan vTPM quote, with this nonce and re-signed by the synthetic AK.
  const real = JSON.parse(snpQuoteText()) as { message: string; pcrs: string[] };
  const attest = unmarshal(TPMS_ATTEST, fromHex(real.message));
  if (options.nonce) attest.extraData = options.nonce;
  const message = marshal(TPMS_ATTEST, attest);
  const signature = new Uint8Array(await subtle.sign('RSASSA-PKCS1-v1_5', ak.privateKey, message as Uint8Array<ArrayBuffer>));
  return {
    hcl: hclBytes(2, report, variableData, hashType),
    tpmQuote: { signature: toHex(signature), message: toHex(message), pcrs: real.pcrs },
    vcek: leaf.cert.toString('pem'),
    pki,
  };
}
