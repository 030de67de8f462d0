import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { bytesEqual, concatBytes } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { digest, digestSync, hasDigestSync } from '../../core/hash.ts';
import { toHex } from '../../core/hex.ts';
import { verified, type Verified } from '../verifier.ts';
import { parseCcel, replayRtmrs } from './ccel.ts';
import { commonName, parsePemCertificates, verifyChain } from './chain.ts';
import { eventLogClaims, quoteClaims, type TdxClaims } from './claims.ts';
import type { TdxCollateral } from './collateral.ts';
import { assertNotRevoked, checkCrl, parseCrl } from './crl.ts';
import { importCertificateKey, importRawP256, verifyP256 } from './ecdsa.ts';
import { parsePckExtensions } from './pck-extensions.ts';
import { evaluateQeIdentity, type QeIdentityResult } from './qe-identity.ts';
import type { TdxQuote } from './quote.ts';
import { intelSgxRootCa } from './roots.ts';
import { verifyQeIdentityShared, verifyTcbInfoShared, type CollateralContext } from './signed-json.ts';
import { evaluateTcb, type TcbEvaluation } from './tcb-evaluation.ts';

/**
 * Verify a parsed TDX quote (Intel QVL order, "4.1.2.4.x" steps in QuoteVerifier.cpp):
 *
 *   PCK chain to the pinned root at `at` → CRLs (when supplied) → QE report signed by the PCK key
 *   → QE report data = SHA-256(attestation key || QE auth data) → quote signature by the
 *   attestation key → TCB info and QE identity (when supplied): signatures, dates, FMSPC/PCE-ID,
 *   TDX module identity, TCB level → CCEL replay against RTMR0-3 (when supplied).
 *
 * Any failure throws a SigilError naming the check; success returns the claims.
 */
export interface TdxTrust {
  /** The time at which certificates, CRLs and collateral must be valid. */
  at: Date;
  collateral?: TdxCollateral;
  /** Trust anchors replacing the embedded Intel SGX Root CA (tests, private PKIs). */
  roots?: x509.X509Certificate[];
  /** A CCEL event log to replay against the quote's RTMRs. */
  eventLog?: Uint8Array;
}

export async function verifyTdxQuote(quote: TdxQuote, trust: TdxTrust): Promise<Verified<TdxClaims>> {
  const at = trust.at;
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new SigilError('tdx.trust_invalid', 'the verification time is not a valid Date');
  const roots = trust.roots ?? [await intelSgxRootCa()];
  const collateral = trust.collateral ?? {};

  // PCK certificate chain (4.1.2.4.4, chain validation).
  const chain = await verifyChain(parsePemCertificates(quote.pckCertChainPem, 'pck_chain'), { chain: 'pck_chain', at, roots });
  if (chain.length !== 3) throw new SigilError('tdx.pck_chain_invalid', `the PCK chain has ${chain.length} certificates, expected leaf, PCK CA and root`);
  const [leaf, pckCa, root] = chain;
  if (!commonName(leaf).includes('SGX PCK Certificate')) throw new SigilError('tdx.pck_cert_invalid', `"${leaf.subject}" is not an SGX PCK certificate`);
  const caName = commonName(pckCa);
  const ca = caName === 'Intel SGX PCK Platform CA' ? 'platform' : caName === 'Intel SGX PCK Processor CA' ? 'processor' : undefined;
  if (!ca) throw new SigilError('tdx.pck_chain_invalid', `"${pckCa.subject}" is not an Intel SGX PCK CA`);

  // Revocation (4.1.2.4.6-7), each CRL only when supplied.
  let rootCaCrl: x509.X509Crl | undefined;
  if (collateral.rootCaCrl !== undefined) {
    rootCaCrl = parseCrl(collateral.rootCaCrl, 'root_ca_crl');
    await checkCrl(rootCaCrl, { name: 'root_ca_crl', issuer: root, at });
    assertNotRevoked(rootCaCrl, pckCa, 'tdx.pck_ca_revoked', 'PCK CA certificate');
  }
  if (collateral.pckCrl !== undefined) {
    const pckCrl = parseCrl(collateral.pckCrl, 'pck_crl');
    await checkCrl(pckCrl, { name: 'pck_crl', issuer: pckCa, at });
    assertNotRevoked(pckCrl, leaf, 'tdx.pck_revoked', 'PCK certificate');
  }

  // QE report signed by the PCK key (4.1.2.4.12).
  const pckKey = await importCertificateKey(leaf, 'tdx.pck_cert_invalid');
  if (!(await verifyP256(pckKey, quote.qeReportSignature, quote.qeReportBytes))) {
    throw new SigilError('tdx.qe_report_signature_invalid', 'the QE report signature does not verify with the PCK certificate key');
  }
  // The QE report binds the attestation key (4.1.2.4.13).
  const binding = hasDigestSync ? digestSync('SHA-256', quote.attestationKey, quote.qeAuthData) : await digest('SHA-256', concatBytes(quote.attestationKey, quote.qeAuthData));
  if (!bytesEqual(binding, quote.qeReport.reportData.subarray(0, 32))) {
    throw new SigilError('tdx.qe_report_binding_mismatch', 'the QE report data is not SHA-256(attestation key || QE auth data)', {
      expected: toHex(binding),
      actual: toHex(quote.qeReport.reportData.subarray(0, 32)),
    });
  }
  // The attestation key signs header and body (4.1.2.4.16).
  const attestationKey = await importRawP256(quote.attestationKey, 'tdx.attestation_key_invalid');
  if (!(await verifyP256(attestationKey, quote.quoteSignature, quote.signedBytes))) {
    throw new SigilError('tdx.quote_signature_invalid', 'the quote signature does not verify with the attestation key');
  }

  const pck = parsePckExtensions(leaf);
  const context: CollateralContext = { at, roots, rootCaCrl };
  let qeIdentity: QeIdentityResult | undefined;
  if (collateral.qeIdentity) qeIdentity = evaluateQeIdentity(quote.qeReport, await verifyQeIdentityShared(collateral, context));
  let tcb: TcbEvaluation | undefined;
  if (collateral.tcbInfo) tcb = evaluateTcb({ tcbInfo: await verifyTcbInfoShared(collateral, context), pck, body: quote.body, qeIdentity });

  // quoteClaims returns a fresh object: completed in place rather than copied by a spread.
  const claims = quoteClaims(quote) as TdxClaims;
  claims.pck = { ...pck, ca, subject: leaf.subject, serialNumber: leaf.serialNumber, notAfter: leaf.notAfter.toISOString() };
  claims.revocation = { rootCaCrl: rootCaCrl !== undefined, pckCrl: collateral.pckCrl !== undefined };
  if (tcb) claims.tcb = tcb;
  if (qeIdentity) claims.qeIdentity = qeIdentity;

  if (trust.eventLog) {
    const log = parseCcel(trust.eventLog);
    const replayed = await replayRtmrs(log);
    for (let i = 0; i < 4; i++) {
      if (!bytesEqual(replayed[i], quote.body.rtmrs[i])) {
        throw new SigilError('tdx.rtmr_mismatch', `the CCEL replays RTMR${i} to a value the quote does not hold`, {
          index: i,
          quoted: toHex(quote.body.rtmrs[i]),
          replayed: toHex(replayed[i]),
        });
      }
    }
    claims.eventLog = eventLogClaims(log.events);
  }
  return verified('tdx', claims, at);
}
