import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { toBase64, toHex } from '../../../src/core/hex.ts';
import type { Collateral, CollateralProvider } from '../../../src/evidence/collateral/provider.ts';
import { checkTdxPolicy, createTdxKind, parseTdxEvidence, tdxEvidenceKind } from '../../../src/evidence/tdx/kind.ts';
import { AT, QUOTES } from './support.ts';

/** The broker-facing 'tdx' kind: wire parsing, collateral through a provider, binding, policy checks. */

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => error instanceof SigilError && error.code === code);
}

const have = <T>(value: T, location: string, issuerChain?: string): Promise<Collateral<T>> =>
  Promise.resolve({ value, stale: false, source: 'bundle', location, ...(issuerChain ? { issuerChain } : {}) });

/** Serves the dcap-qvl sample's collateral, as an offline bundle would. */
function qvlProvider(): CollateralProvider {
  const json = JSON.parse(fixtureText('tdx/dcapqvl_tdx_quote_v4_collateral.json'));
  const bytes = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((b: string) => parseInt(b, 16)));
  const unavailable = () => Promise.reject(new SigilError('collateral.not_found', 'not in this test provider'));
  return {
    getSnpVcek: unavailable,
    getSnpChain: unavailable,
    getSnpCrl: unavailable,
    getTdxPckCrl: (ca) => (ca === 'platform' ? have(bytes(json.pck_crl), 'pck_crl') : unavailable()),
    getTdxTcbInfo: (fmspc) => (fmspc === 'b0c06f000000' ? have(`{"tcbInfo":${json.tcb_info},"signature":"${json.tcb_info_signature}"}`, 'tcbinfo', json.tcb_info_issuer_chain) : unavailable()),
    getTdxQeIdentity: () => have(`{"enclaveIdentity":${json.qe_identity},"signature":"${json.qe_identity_signature}"}`, 'qe', json.qe_identity_issuer_chain),
    getIntelRootCrl: () => have(bytes(json.root_ca_crl), 'root_crl'),
  };
}

test('tdx kind: parse → verify with provider collateral → binding data → appraise', fixtureTest(), async () => {
  const kind = createTdxKind({ collateral: qvlProvider() });
  const evidence = kind.parse({ quote: toBase64(fixture(QUOTES.dcapqvl)) });
  const verified = await kind.verify(evidence, { at: AT.dcapqvl, collateral: [] });
  assert.equal(verified.claims.tcb?.status, 'UpToDate');
  assert.equal(verified.claims.qeIdentity?.status, 'UpToDate');
  assert.deepEqual(verified.claims.revocation, { rootCaCrl: true, pckCrl: true });
  assert.equal(toHex(kind.bindingData(verified)), verified.claims.reportData);
  const policy = kind.checkPolicy({ mrTd: [verified.claims.mrTd], allowedTcbStatuses: ['UpToDate'] });
  const appraisal = await kind.appraise(verified, policy);
  assert.equal(appraisal.trace.find((t) => t.rule === 'tdx.mr_td')?.result, 'pass');
  assert.equal(appraisal.trace.find((t) => t.rule === 'tdx.tcb_status')?.result, 'pass');
  assert.equal(kind.summary?.(verified).tcbStatus, 'UpToDate');
});

test('tdx kind: without a provider the TCB is unevaluated; the CCEL travels in the body', fixtureTest(), async () => {
  const evidence = parseTdxEvidence({ quote: toBase64(fixture(QUOTES.cos113)), eventLog: toBase64(fixture('tdx/gotdxguest_cos113_ccel_data.bin')) });
  const verified = await tdxEvidenceKind.verify(evidence, { at: AT.cos113, collateral: [] });
  assert.equal(verified.claims.tcb, undefined);
  assert.equal(verified.claims.eventLog?.events.length, 43);
  const appraisal = await tdxEvidenceKind.appraise(verified, {});
  assert.equal(appraisal.trace.find((t) => t.rule === 'tdx.tcb_status')?.result, 'fail');
  // A tenant "tdx-root" that is not Intel's makes the genuine chain untrusted.
  const other = { name: 'private', purpose: 'tdx-root', pem: fixtureText('tdx/intel_sgx_tcb_signing_chain_2025.pem').split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n' };
  await assert.rejects(tdxEvidenceKind.verify(evidence, { at: AT.cos113, collateral: [other] }), (e: unknown) => e instanceof SigilError && e.code === 'tdx.pck_chain_untrusted');
});

test('tdx kind: malformed bodies and policies are refused with typed errors', () => {
  throwsCode(() => parseTdxEvidence(null), 'tdx.evidence_malformed');
  throwsCode(() => parseTdxEvidence({ quote: 7 }), 'tdx.evidence_malformed');
  throwsCode(() => parseTdxEvidence({ quote: 'AAAA' }), 'tdx.quote_truncated');
  assert.deepEqual(checkTdxPolicy(undefined), {});
  throwsCode(() => checkTdxPolicy({ mrTd: 'ab' }), 'tdx.policy_invalid');
  throwsCode(() => checkTdxPolicy({ mrTd: ['ab'] }), 'tdx.policy_invalid');
  throwsCode(() => checkTdxPolicy({ rtmr: { 4: ['00'.repeat(48)] } }), 'tdx.policy_invalid');
  throwsCode(() => checkTdxPolicy({ allowedTcbStatuses: ['Fine'] }), 'tdx.policy_invalid');
  throwsCode(() => checkTdxPolicy({ allowDebug: 'yes' }), 'tdx.policy_invalid');
  throwsCode(() => checkTdxPolicy({ reportData: '00' }), 'tdx.policy_invalid');
  assert.deepEqual(checkTdxPolicy({ rtmr: { 0: ['00'.repeat(48)] }, allowedTcbStatuses: ['UpToDate', 'SWHardeningNeeded'] }).allowedTcbStatuses, ['UpToDate', 'SWHardeningNeeded']);
});
