import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { bytesEqual, utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { contentId } from '../../core/x509-cache.ts';
import { commonName, parsePemCertificates, verifyChain } from './chain.ts';
import type { SignedJson, TdxCollateral } from './collateral.ts';
import { assertNotRevoked } from './crl.ts';
import { importCertificateKey, verifyP256 } from './ecdsa.ts';
import { parseQeIdentity, type QeIdentity } from './qe-identity.ts';
import { parseTcbInfo, type TcbInfo } from './tcb-info.ts';

/**
 * TCB Info and QE identity: each is trusted only when its issuer chain (the "Intel SGX TCB
 * Signing" certificate ← Intel SGX Root CA) verifies at `at`, the signing certificate is not on
 * the Root CA CRL (when one is given), its ECDSA signature covers the exact JSON text, and `at`
 * lies within issueDate..nextUpdate.
 */
export interface CollateralContext {
  at: Date;
  roots: x509.X509Certificate[];
  rootCaCrl?: x509.X509Crl;
}

type Kind = 'tcb_info' | 'qe_identity';
const LABEL: Record<Kind, string> = { tcb_info: 'TCB info', qe_identity: 'QE identity' };

async function verifySignature(kind: Kind, signed: SignedJson, issuerChain: string | undefined, context: CollateralContext): Promise<void> {
  if (!issuerChain) throw new SigilError('tdx.tcb_signing_chain_missing', `no issuer chain was given for the ${LABEL[kind]}`);
  const chain = await verifyChain(parsePemCertificates(issuerChain, 'tcb_signing_chain'), { chain: 'tcb_signing_chain', at: context.at, roots: context.roots });
  const signer = chain[0];
  if (commonName(signer) !== 'Intel SGX TCB Signing') {
    throw new SigilError('tdx.tcb_signing_chain_invalid', `the ${LABEL[kind]} is signed by "${signer.subject}", not by Intel SGX TCB Signing`);
  }
  if (context.rootCaCrl) assertNotRevoked(context.rootCaCrl, signer, 'tdx.tcb_signing_cert_revoked', 'TCB signing certificate');
  if (!(await signatureValid(signed, signer))) {
    throw new SigilError(`tdx.${kind}_signature_invalid`, `the ${LABEL[kind]} signature does not verify with the TCB signing key`);
  }
}

/**
 * Signature results by the exact signed text, then signer certificate and signature: the same
 * TCB info and QE identity sign off every quote of a platform until Intel's next update, so a
 * verifier serving many quotes checks each once. Content-keyed and bounded; dates are not cached.
 */
const signatureResults = new Map<string, { signer: number; signature: Uint8Array; result: Promise<boolean> }[]>();
const SIGNED_BODIES = 64;

function signatureValid(signed: SignedJson, signer: x509.X509Certificate): Promise<boolean> {
  let entries = signatureResults.get(signed.body);
  if (!entries) {
    if (signatureResults.size >= SIGNED_BODIES) signatureResults.delete(signatureResults.keys().next().value!);
    signatureResults.set(signed.body, (entries = []));
  }
  const id = contentId(signer);
  const known = entries.find((e) => e.signer === id && bytesEqual(e.signature, signed.signature));
  if (known) return known.result;
  const entry = {
    signer: id,
    signature: signed.signature.slice(),
    result: (async () => verifyP256(await importCertificateKey(signer, 'tdx.tcb_signing_chain_invalid'), signed.signature, utf8.encode(signed.body)))(),
  };
  if (entries.length >= 8) entries.shift();
  entries.push(entry);
  // A thrown error (a bad signing key) is reported, not remembered.
  entry.result.catch(() => {
    const index = entries.indexOf(entry);
    if (index >= 0) entries.splice(index, 1);
  });
  return entry.result;
}

function checkDates(kind: Kind, issueDate: Date, nextUpdate: Date, at: Date): void {
  const details = () => ({ issueDate: issueDate.toISOString(), nextUpdate: nextUpdate.toISOString(), at: at.toISOString() });
  if (at < issueDate) throw new SigilError(`tdx.${kind}_not_yet_valid`, `the ${LABEL[kind]} is issued after ${at.toISOString()}`, details());
  if (at > nextUpdate) throw new SigilError(`tdx.${kind}_expired`, `the ${LABEL[kind]} has expired (next update ${nextUpdate.toISOString()})`, details());
}

/**
 * Parsed TCB info and QE identity by their exact text, for verifyTdxQuote only: the objects are
 * shared between calls, so they never leave this module's callers (claims copy what they take).
 * The exported verifyTcbInfo / verifyQeIdentity parse afresh and hand out objects of their own.
 */
function sharedParse<T>(parse: (text: string) => T): (text: string) => T {
  const parsed = new Map<string, T>();
  return (text) => {
    let value = parsed.get(text);
    if (value === undefined) {
      value = parse(text);
      if (parsed.size >= SIGNED_BODIES) parsed.delete(parsed.keys().next().value!);
      parsed.set(text, value);
    }
    return value;
  };
}

const sharedTcbInfo = sharedParse(parseTcbInfo);
const sharedQeIdentity = sharedParse(parseQeIdentity);

async function tcbInfoWith(parse: (text: string) => TcbInfo, collateral: TdxCollateral, context: CollateralContext): Promise<TcbInfo> {
  if (!collateral.tcbInfo) throw new SigilError('tdx.tcb_info_missing', 'the collateral has no TCB info');
  const info = parse(collateral.tcbInfo.body);
  checkDates('tcb_info', info.issueDate, info.nextUpdate, context.at);
  await verifySignature('tcb_info', collateral.tcbInfo, collateral.tcbInfoIssuerChain, context);
  return info;
}

async function qeIdentityWith(parse: (text: string) => QeIdentity, collateral: TdxCollateral, context: CollateralContext): Promise<QeIdentity> {
  if (!collateral.qeIdentity) throw new SigilError('tdx.qe_identity_missing', 'the collateral has no QE identity');
  const identity = parse(collateral.qeIdentity.body);
  checkDates('qe_identity', identity.issueDate, identity.nextUpdate, context.at);
  await verifySignature('qe_identity', collateral.qeIdentity, collateral.qeIdentityIssuerChain ?? collateral.tcbInfoIssuerChain, context);
  return identity;
}

export function verifyTcbInfo(collateral: TdxCollateral, context: CollateralContext): Promise<TcbInfo> {
  return tcbInfoWith(parseTcbInfo, collateral, context);
}

export function verifyQeIdentity(collateral: TdxCollateral, context: CollateralContext): Promise<QeIdentity> {
  return qeIdentityWith(parseQeIdentity, collateral, context);
}

/** verifyTcbInfo with the parse shared between calls (read-only; for verifyTdxQuote). */
export function verifyTcbInfoShared(collateral: TdxCollateral, context: CollateralContext): Promise<TcbInfo> {
  return tcbInfoWith(sharedTcbInfo, collateral, context);
}

/** verifyQeIdentity with the parse shared between calls (read-only; for verifyTdxQuote). */
export function verifyQeIdentityShared(collateral: TdxCollateral, context: CollateralContext): Promise<QeIdentity> {
  return qeIdentityWith(sharedQeIdentity, collateral, context);
}
