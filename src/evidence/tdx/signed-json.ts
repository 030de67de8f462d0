import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
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
  const key = await importCertificateKey(signer, 'tdx.tcb_signing_chain_invalid');
  if (!(await verifyP256(key, signed.signature, utf8.encode(signed.body)))) {
    throw new SigilError(`tdx.${kind}_signature_invalid`, `the ${LABEL[kind]} signature does not verify with the TCB signing key`);
  }
}

function checkDates(kind: Kind, issueDate: Date, nextUpdate: Date, at: Date): void {
  const details = { issueDate: issueDate.toISOString(), nextUpdate: nextUpdate.toISOString(), at: at.toISOString() };
  if (at < issueDate) throw new SigilError(`tdx.${kind}_not_yet_valid`, `the ${LABEL[kind]} is issued after ${at.toISOString()}`, details);
  if (at > nextUpdate) throw new SigilError(`tdx.${kind}_expired`, `the ${LABEL[kind]} has expired (next update ${nextUpdate.toISOString()})`, details);
}

export async function verifyTcbInfo(collateral: TdxCollateral, context: CollateralContext): Promise<TcbInfo> {
  if (!collateral.tcbInfo) throw new SigilError('tdx.tcb_info_missing', 'the collateral has no TCB info');
  const info = parseTcbInfo(collateral.tcbInfo.body);
  checkDates('tcb_info', info.issueDate, info.nextUpdate, context.at);
  await verifySignature('tcb_info', collateral.tcbInfo, collateral.tcbInfoIssuerChain, context);
  return info;
}

export async function verifyQeIdentity(collateral: TdxCollateral, context: CollateralContext): Promise<QeIdentity> {
  if (!collateral.qeIdentity) throw new SigilError('tdx.qe_identity_missing', 'the collateral has no QE identity');
  const identity = parseQeIdentity(collateral.qeIdentity.body);
  checkDates('qe_identity', identity.issueDate, identity.nextUpdate, context.at);
  await verifySignature('qe_identity', collateral.qeIdentity, collateral.qeIdentityIssuerChain ?? collateral.tcbInfoIssuerChain, context);
  return identity;
}
