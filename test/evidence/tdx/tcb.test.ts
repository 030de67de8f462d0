import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import {
  evaluateQeIdentity,
  evaluateTcb,
  parsePckExtensions,
  parseQeIdentity,
  parseTcbInfo,
  parseTdxQuote,
  signedJsonFromPcsResponse,
  type QeIdentityResult,
  type TcbInfo,
  type TdxQuote,
} from '../../../src/evidence/tdx/index.ts';
import { parsePemCertificates } from '../../../src/evidence/tdx/chain.ts';
import { convergeStatus } from '../../../src/evidence/tdx/tcb-status.ts';
import { QUOTES } from './support.ts';

/** TCB evaluation rules on real quotes with edited (unsigned) collateral: the logic, not the crypto. */

const pckOf = (quote: TdxQuote) => parsePckExtensions(parsePemCertificates(quote.pckCertChainPem, 'pck_chain')[0]);
const tcbInfoText = (file: string) => signedJsonFromPcsResponse(fixtureText(file), 'tcbInfo').body;
const v5Info = () => parseTcbInfo(tcbInfoText('tdx/gotdxguest_tcbinfo_fmspc_90c06f000000.json'));
const qvlInfoText = () => JSON.parse(fixtureText('tdx/dcapqvl_tdx_quote_v4_collateral.json')).tcb_info as string;

function throwsCode(fn: () => unknown, code: string): SigilError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SigilError, String(error));
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

function withSvn(quote: TdxQuote, changes: Record<number, number>, field: 'teeTcbSvn' | 'teeTcbSvn2' = 'teeTcbSvn'): TdxQuote {
  const svn = quote.body[field]!.slice();
  for (const [i, v] of Object.entries(changes)) svn[Number(i)] = v;
  return { ...quote, body: { ...quote.body, [field]: svn } };
}

test('SPR E4: with level-0 SVNs zeroed the quote passes the TCB info checks (TestVerifyUsingTcbInfoV4)', fixtureTest(), () => {
  const quote = parseTdxQuote(fixture(QUOTES.sprE4));
  const info = parseTcbInfo(tcbInfoText('tdx/gotdxguest_tcbinfo_fmspc_50806f000000.json'));
  throwsCode(() => evaluateTcb({ tcbInfo: info, pck: pckOf(quote), body: quote.body }), 'tdx.tcb_no_matching_level');
  const level0 = info.tcbLevels[0];
  level0.sgxComponents = level0.sgxComponents.map(() => 0);
  level0.tdxComponents = level0.tdxComponents.map(() => 0);
  level0.pceSvn = 0;
  const result = evaluateTcb({ tcbInfo: info, pck: pckOf(quote), body: quote.body });
  assert.equal(result.status, 'UpToDate');
  assert.equal(result.tcbLevel.tcbDate, '2023-02-15T00:00:00Z');
  assert.equal(result.tdxModule.version, 0);
  assert.equal(result.tdxModule.id, undefined, 'module version 0 is judged by tcbInfo.tdxModule');
});

test('dcap-qvl: every level overridden to OutOfDate gives OutOfDate with that level\'s advisories', fixtureTest(), () => {
  const quote = parseTdxQuote(fixture(QUOTES.dcapqvl));
  const info = parseTcbInfo(qvlInfoText());
  for (const level of info.tcbLevels) level.status = 'OutOfDate';
  info.tcbLevels[0].advisoryIds = ['INTEL-SA-00999'];
  const result = evaluateTcb({ tcbInfo: info, pck: pckOf(quote), body: quote.body });
  assert.equal(result.status, 'OutOfDate');
  assert.deepEqual(result.advisoryIds, ['INTEL-SA-00999']);
});

test('truncated or extended SGX/TDX component arrays are rejected (component count mismatch)', fixtureTest(), () => {
  const json = JSON.parse(qvlInfoText());
  const variants: ((level: { tcb: Record<string, unknown[]> }) => void)[] = [
    (l) => l.tcb.sgxtcbcomponents.pop(),
    (l) => l.tcb.sgxtcbcomponents.push({ svn: 0 }),
    (l) => l.tcb.tdxtcbcomponents.pop(),
    (l) => l.tcb.tdxtcbcomponents.push({ svn: 0 }),
  ];
  for (const edit of variants) {
    const copy = structuredClone(json);
    edit(copy.tcbLevels[0]);
    const error = throwsCode(() => parseTcbInfo(JSON.stringify(copy)), 'tdx.tcb_info_malformed');
    assert.match(error.message, /expected 16/);
  }
  const sgx = structuredClone(json);
  sgx.id = 'SGX';
  sgx.version = 3;
  throwsCode(() => parseTcbInfo(JSON.stringify(sgx)), 'tdx.tcb_info_unsupported');
  const odd = structuredClone(json);
  odd.tcbLevels[0].tcbStatus = 'Fine';
  throwsCode(() => parseTcbInfo(JSON.stringify(odd)), 'tdx.tcb_status_unrecognized');
});

test('FMSPC and PCE-ID must match the PCK certificate', fixtureTest(), () => {
  const quote = parseTdxQuote(fixture(QUOTES.dcapqvl));
  throwsCode(() => evaluateTcb({ tcbInfo: v5Info(), pck: pckOf(quote), body: quote.body }), 'tdx.tcb_info_mismatch');
  const info = parseTcbInfo(qvlInfoText());
  info.pceId = '0001';
  throwsCode(() => evaluateTcb({ tcbInfo: info, pck: pckOf(quote), body: quote.body }), 'tdx.tcb_info_mismatch');
});

test('TDX module identity: version > 0 picks TDX_<version>; signer, attributes and ISVSVN are checked', fixtureTest(), () => {
  const quote = parseTdxQuote(fixture(QUOTES.v5));
  const pck = pckOf(quote);
  // TEE_TCB_SVN[0] (module ISVSVN) 3 is below the level's TDX component 0 (5), but with version 1
  // that index is judged by the module identity: TDX_01 level isvsvn 2 → OutOfDate.
  const old = evaluateTcb({ tcbInfo: v5Info(), pck, body: withSvn(quote, { 0: 3 }).body });
  assert.equal(old.tcbLevel.tcbDate, '2024-11-13T00:00:00Z', 'platform level still the newest');
  assert.deepEqual(old.tdxModule, { id: 'TDX_01', version: 1, isvSvn: 3, status: 'OutOfDate', tcbDate: '2023-08-09T00:00:00Z', advisoryIds: ['INTEL-SA-01036', 'INTEL-SA-01099'] });
  assert.deepEqual(old.advisoryIds, ['INTEL-SA-01036', 'INTEL-SA-01099']);
  // TEE_TCB_SVN2 shows the module was since updated in place: relaunching the TD would fix it.
  assert.equal(old.status, 'TDRelaunchAdvised');
  // Judged as a TD 1.0 body (no TEE_TCB_SVN2), the out-of-date module makes the TCB OutOfDate.
  const td10 = { ...withSvn(quote, { 0: 3 }).body, teeTcbSvn2: undefined, mrServiceTd: undefined };
  assert.equal(evaluateTcb({ tcbInfo: v5Info(), pck, body: td10 }).status, 'OutOfDate');
  throwsCode(() => evaluateTcb({ tcbInfo: v5Info(), pck, body: withSvn(quote, { 0: 1 }).body }), 'tdx.tdx_module_no_matching_level');
  throwsCode(() => evaluateTcb({ tcbInfo: v5Info(), pck, body: withSvn(quote, { 1: 2 }).body }), 'tdx.tdx_module_mismatch');
  const signer = v5Info();
  signer.tdxModuleIdentities[1].mrSigner[0] = 1;
  throwsCode(() => evaluateTcb({ tcbInfo: signer, pck, body: quote.body }), 'tdx.tdx_module_mismatch');
  const attributes = v5Info();
  attributes.tdxModuleIdentities[1].attributes[7] = 0x80;
  throwsCode(() => evaluateTcb({ tcbInfo: attributes, pck, body: quote.body }), 'tdx.tdx_module_mismatch');
  // A revoked module level revokes the whole TCB.
  const revoked = v5Info();
  revoked.tdxModuleIdentities[1].tcbLevels[0].status = 'Revoked';
  assert.equal(evaluateTcb({ tcbInfo: revoked, pck, body: quote.body }).status, 'Revoked');
});

test('TDX 1.5 relaunch check: an out-of-date TD whose module was updated in place is TDRelaunchAdvised', fixtureTest(), () => {
  const quote = parseTdxQuote(fixture(QUOTES.v5));
  const pck = pckOf(quote);
  // TEE_TCB_SVN: module ISVSVN 4 (TDX_01 level 2024-03-13, OutOfDate) and SEAM SVN 2 (level 1, OutOfDate);
  // TEE_TCB_SVN2 0d0104… is at the newest module level (6) and component 2 (3).
  const stale = withSvn(quote, { 0: 4, 2: 2 });
  const result = evaluateTcb({ tcbInfo: v5Info(), pck, body: stale.body });
  assert.equal(result.tcbLevel.status, 'OutOfDate');
  assert.equal(result.tdxModule.status, 'OutOfDate');
  assert.equal(result.status, 'TDRelaunchAdvised');
  // TEE_TCB_SVN2 not current either: the status stays OutOfDate.
  const notUpdated = withSvn(stale, { 2: 2 }, 'teeTcbSvn2');
  assert.equal(evaluateTcb({ tcbInfo: v5Info(), pck, body: notUpdated.body }).status, 'OutOfDate');
  // A ConfigurationNeeded SGX level makes it TDRelaunchAdvisedConfigurationNeeded.
  const config = v5Info();
  config.tcbLevels[0].status = 'ConfigurationNeeded';
  assert.equal(evaluateTcb({ tcbInfo: config, pck, body: stale.body }).status, 'TDRelaunchAdvisedConfigurationNeeded');
  // An out-of-date QE blocks the relaunch advice.
  const qe: QeIdentityResult = { status: 'OutOfDate', isvSvn: 3, tcbDate: '2023-01-01T00:00:00Z', advisoryIds: [], tcbEvaluationDataNumber: 1 };
  assert.equal(evaluateTcb({ tcbInfo: v5Info(), pck, body: stale.body, qeIdentity: qe }).status, 'OutOfDate');
});

test('the QE identity status converges into the TCB status', fixtureTest(), () => {
  const quote = parseTdxQuote(fixture(QUOTES.v5));
  const pck = pckOf(quote);
  const qe = (status: QeIdentityResult['status']): QeIdentityResult => ({ status, isvSvn: 7, tcbDate: '2024-01-01T00:00:00Z', advisoryIds: ['INTEL-SA-00001'], tcbEvaluationDataNumber: 18 });
  assert.equal(evaluateTcb({ tcbInfo: v5Info(), pck, body: quote.body, qeIdentity: qe('UpToDate') }).status, 'UpToDate');
  const outOfDate = evaluateTcb({ tcbInfo: v5Info(), pck, body: quote.body, qeIdentity: qe('OutOfDate') });
  assert.equal(outOfDate.status, 'OutOfDate');
  assert.deepEqual(outOfDate.advisoryIds, ['INTEL-SA-00001']);
  assert.equal(evaluateTcb({ tcbInfo: v5Info(), pck, body: quote.body, qeIdentity: qe('Revoked') }).status, 'Revoked');
  const config: TcbInfo = v5Info();
  config.tcbLevels[0].status = 'ConfigurationAndSWHardeningNeeded';
  assert.equal(evaluateTcb({ tcbInfo: config, pck, body: quote.body, qeIdentity: qe('OutOfDate') }).status, 'OutOfDateConfigurationNeeded');
  assert.equal(evaluateTcb({ tcbInfo: config, pck, body: quote.body }).status, 'ConfigurationAndSWHardeningNeeded');
  assert.equal(convergeStatus('SWHardeningNeeded', 'OutOfDate'), 'OutOfDate');
  assert.equal(convergeStatus('Revoked', 'UpToDate'), 'Revoked');
  assert.equal(convergeStatus('ConfigurationNeeded', 'UpToDate'), 'ConfigurationNeeded');
});

test('QE identity: MISCSELECT, ATTRIBUTES, MRSIGNER, ISVPRODID and ISVSVN are each checked', fixtureTest(), () => {
  const quote = parseTdxQuote(fixture(QUOTES.sprE4));
  const body = signedJsonFromPcsResponse(fixtureText('tdx/gotdxguest_qe_identity.json'), 'enclaveIdentity').body;
  const identity = () => parseQeIdentity(body);
  assert.equal(evaluateQeIdentity(quote.qeReport, identity()).status, 'UpToDate');
  assert.equal(evaluateQeIdentity(quote.qeReport, identity()).isvSvn, 4);
  const cases: [string, (i: ReturnType<typeof identity>) => void][] = [
    ['MISCSELECT', (i) => (i.miscSelect = 1)],
    ['ATTRIBUTES', (i) => (i.attributes[0] ^= 0x01)],
    ['MRSIGNER', (i) => (i.mrSigner[31] ^= 0xff)],
    ['ISVPRODID', (i) => (i.isvProdId = 1)],
  ];
  for (const [field, edit] of cases) {
    const edited = identity();
    edit(edited);
    assert.equal(throwsCode(() => evaluateQeIdentity(quote.qeReport, edited), 'tdx.qe_identity_mismatch').details.field, field);
  }
  const newer = identity();
  newer.tcbLevels = [{ isvSvn: 8, tcbDate: '2024-01-01T00:00:00Z', status: 'UpToDate', advisoryIds: [] }, ...newer.tcbLevels.map((l) => ({ ...l, status: 'OutOfDate' as const }))];
  assert.equal(evaluateQeIdentity(quote.qeReport, newer).status, 'OutOfDate');
  const tooNew = identity();
  tooNew.tcbLevels[0].isvSvn = 9;
  throwsCode(() => evaluateQeIdentity(quote.qeReport, tooNew), 'tdx.qe_identity_no_matching_level');
  const sgxQe = JSON.parse(body);
  sgxQe.id = 'QE';
  throwsCode(() => parseQeIdentity(JSON.stringify(sgxQe)), 'tdx.qe_identity_unsupported');
});
