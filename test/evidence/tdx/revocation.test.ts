import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { fixture, fixtureTest, fixturesAvailable } from '../../support/fixtures.ts';
import { utf8 } from '../../../src/core/bytes.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { appraiseTdx, parseTdxQuote, verifyTdxQuote, type TdxCollateral, type TdxQuote, type TdxTrust } from '../../../src/evidence/tdx/index.ts';
import { AT, collateralDcapQvl, QUOTES } from './support.ts';
import { crl, rebuildQuote, signP256, syntheticPki, type SyntheticPki } from './synthetic-pki.ts';

/**
 * Revocation, CRL and collateral-signing paths on the dcap-qvl quote rebuilt under a synthetic
 * Intel-shaped PKI (the real chain cannot be revoked or re-signed here).
 */
let quote: TdxQuote;
let pki: SyntheticPki;
let rebuilt: Uint8Array;

before(async () => {
  if (!fixturesAvailable()) return;
  quote = parseTdxQuote(fixture(QUOTES.dcapqvl));
  pki = await syntheticPki({ sgxExtensionFrom: quote });
  rebuilt = await rebuildQuote(quote, pki.pckChainPem, pki.keys.leaf.privateKey);
});

const trust = (extra: Partial<TdxTrust> = {}): TdxTrust => ({ at: AT.dcapqvl, roots: [pki.root], ...extra });

async function rejects(promise: Promise<unknown>, code: string): Promise<SigilError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SigilError, String(error));
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

/** TCB info / QE identity re-signed by the synthetic TCB signing key, optionally edited first. */
async function collateral(edit: (tcbInfo: Record<string, any>) => void = () => {}, signingKey = pki.keys.signing.privateKey, chain = pki.signingChainPem): Promise<TdxCollateral> {
  const real = collateralDcapQvl();
  const info = JSON.parse(real.tcbInfo!.body);
  edit(info);
  const tcbBody = JSON.stringify(info);
  return {
    tcbInfo: { body: tcbBody, signature: await signP256(signingKey, utf8.encode(tcbBody)) },
    qeIdentity: { body: real.qeIdentity!.body, signature: await signP256(signingKey, utf8.encode(real.qeIdentity!.body)) },
    tcbInfoIssuerChain: chain,
  };
}

test('the rebuilt quote verifies under the synthetic root only', fixtureTest(), async () => {
  const { claims } = await verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: await collateral() }));
  assert.equal(claims.pck.fmspc, 'b0c06f000000');
  assert.equal(claims.tcb?.status, 'UpToDate');
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), { at: AT.dcapqvl }), 'tdx.pck_chain_untrusted');
});

test('a PCK certificate on the PCK CRL is revoked; its CA on the Root CA CRL likewise', fixtureTest(), async () => {
  const pckCrl = await crl(pki.pckCa, pki.keys.pckCa.privateKey, [pki.leaf]);
  const error = await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: { pckCrl } })), 'tdx.pck_revoked');
  assert.equal(error.details.serialNumber, pki.leaf.serialNumber);
  const rootCaCrl = await crl(pki.root, pki.keys.root.privateKey, [pki.pckCa]);
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: { rootCaCrl } })), 'tdx.pck_ca_revoked');
  // CRLs that revoke someone else leave the quote valid.
  const others = { pckCrl: await crl(pki.pckCa, pki.keys.pckCa.privateKey, [pki.pckCa]), rootCaCrl: await crl(pki.root, pki.keys.root.privateKey, [pki.leaf]) };
  const { claims } = await verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: others }));
  assert.deepEqual(claims.revocation, { rootCaCrl: true, pckCrl: true });
});

test('a CRL from the wrong issuer, with a bad signature, or out of date is refused', fixtureTest(), async () => {
  const wrongIssuer = await crl(pki.root, pki.keys.root.privateKey, []);
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: { pckCrl: wrongIssuer } })), 'tdx.pck_crl_issuer_mismatch');
  const forged = await crl(pki.pckCa, pki.keys.leaf.privateKey, []);
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: { pckCrl: forged } })), 'tdx.pck_crl_signature_invalid');
  const stale = await crl(pki.root, pki.keys.root.privateKey, [], { thisUpdate: new Date('2025-01-01T00:00:00Z'), nextUpdate: new Date('2025-02-01T00:00:00Z') });
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: { rootCaCrl: stale } })), 'tdx.root_ca_crl_expired');
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: { rootCaCrl: new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]) } })), 'tdx.root_ca_crl_malformed');
});

test('a QE report re-signed with other report data breaks the attestation-key binding', fixtureTest(), async () => {
  const qeReport = quote.qeReportBytes.slice();
  qeReport[320] ^= 0x01; // first byte of REPORTDATA
  const bytes = await rebuildQuote(quote, pki.pckChainPem, pki.keys.leaf.privateKey, qeReport);
  await rejects(verifyTdxQuote(parseTdxQuote(bytes), trust()), 'tdx.qe_report_binding_mismatch');
  const otherKey = await rebuildQuote(quote, pki.pckChainPem, pki.keys.pckCa.privateKey);
  await rejects(verifyTdxQuote(parseTdxQuote(otherKey), trust()), 'tdx.qe_report_signature_invalid');
});

test('a leaf that is not a PCK certificate, or a TCB signer that is not Intel SGX TCB Signing, is refused', fixtureTest(), async () => {
  const odd = await syntheticPki({ sgxExtensionFrom: quote, leafCn: 'Intel SGX Something', signingCn: 'Intel SGX Other' });
  const bytes = await rebuildQuote(quote, odd.pckChainPem, odd.keys.leaf.privateKey);
  await rejects(verifyTdxQuote(parseTdxQuote(bytes), { at: AT.dcapqvl, roots: [odd.root] }), 'tdx.pck_cert_invalid');
  // A signing chain from another root is untrusted; under the right root, the signer's name matters.
  const foreign = await collateral(() => {}, odd.keys.signing.privateKey, odd.signingChainPem);
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: foreign })), 'tdx.tcb_signing_chain_untrusted');
  const oddSigner = await syntheticPki({ sgxExtensionFrom: quote, signingCn: 'Intel SGX Other' });
  const signedByOdd = await collateral(() => {}, oddSigner.keys.signing.privateKey, oddSigner.signingChainPem);
  const underOdd = await rebuildQuote(quote, oddSigner.pckChainPem, oddSigner.keys.leaf.privateKey);
  await rejects(verifyTdxQuote(parseTdxQuote(underOdd), { at: AT.dcapqvl, roots: [oddSigner.root], collateral: signedByOdd }), 'tdx.tcb_signing_chain_invalid');
  const short = [pki.leaf, pki.root].map((c) => c.toString('pem')).join('\n');
  await rejects(verifyTdxQuote(parseTdxQuote(await rebuildQuote(quote, short, pki.keys.leaf.privateKey)), trust()), 'tdx.pck_chain_invalid');
});

test('TCB info signed by a revoked or wrong key is refused', fixtureTest(), async () => {
  const rootCaCrl = await crl(pki.root, pki.keys.root.privateKey, [pki.signing]);
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: { ...(await collateral()), rootCaCrl } })), 'tdx.tcb_signing_cert_revoked');
  const wrongKey = await collateral(() => {}, pki.keys.leaf.privateKey);
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: wrongKey })), 'tdx.qe_identity_signature_invalid');
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: { ...wrongKey, qeIdentity: undefined } })), 'tdx.tcb_info_signature_invalid');
  const noChain = { ...(await collateral()), tcbInfoIssuerChain: undefined };
  await rejects(verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: noChain })), 'tdx.tcb_signing_chain_missing');
});

test('end to end, each TCB level status reaches the claims and the appraisal', fixtureTest(), async () => {
  const cases: [string, 'pass' | 'warn' | 'fail'][] = [
    ['UpToDate', 'pass'],
    ['SWHardeningNeeded', 'fail'],
    ['ConfigurationNeeded', 'fail'],
    ['ConfigurationAndSWHardeningNeeded', 'fail'],
    ['OutOfDate', 'fail'],
    ['OutOfDateConfigurationNeeded', 'fail'],
    ['Revoked', 'fail'],
  ];
  for (const [status, result] of cases) {
    const signed = await collateral((info) => {
      info.tcbLevels[0].tcbStatus = status;
      info.tcbLevels[0].advisoryIDs = status === 'UpToDate' ? undefined : ['INTEL-SA-00615'];
    });
    const evidence = await verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: signed }));
    assert.equal(evidence.claims.tcb?.status, status);
    assert.deepEqual(evidence.claims.tcb?.advisoryIds, status === 'UpToDate' ? [] : ['INTEL-SA-00615']);
    const rule = appraiseTdx(evidence).trace.find((t) => t.rule === 'tdx.tcb_status');
    assert.equal(rule?.result, result, status);
    // Allowing the status turns a failure into a warning (UpToDate stays a pass).
    const lenient = appraiseTdx(evidence, { allowedTcbStatuses: ['UpToDate', status as never] }).trace.find((t) => t.rule === 'tdx.tcb_status');
    assert.equal(lenient?.result, status === 'UpToDate' ? 'pass' : 'warn', status);
  }
  const evidence = await verifyTdxQuote(parseTdxQuote(rebuilt), trust({ collateral: await collateral((info) => (info.tcbLevels[0].advisoryIDs = ['INTEL-SA-00615'])) }));
  const forbidden = appraiseTdx(evidence, { forbiddenAdvisoryIds: ['INTEL-SA-00615'] });
  assert.equal(forbidden.trace.find((t) => t.rule === 'tdx.advisories')?.result, 'fail');
  assert.equal(forbidden.status, 'contraindicated');
});
