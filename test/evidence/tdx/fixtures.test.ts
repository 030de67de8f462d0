import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import {
  appraiseTdx,
  evaluateQeIdentity,
  parseCcel,
  parseCcelAcpiTable,
  parseQeIdentity,
  parseTdxQuote,
  signedJsonFromPcsResponse,
  verifyTdxQuote,
  type TdxCollateral,
} from '../../../src/evidence/tdx/index.ts';
import { AT, collateralDcapQvl, collateralV5, QUOTES, zero } from './support.ts';

/** The other TDX fixtures: the v5 sample, COS-113 + CCEL, dcap-qvl + full collateral, trustee's quotes. */

async function rejects(promise: Promise<unknown>, code: string): Promise<SigilError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SigilError, `expected a SigilError, got ${error}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected rejection with ${code}`);
}

test('go-tdx-guest v5 (TDX 1.5): verifies, and with the 2026 TCB info is UpToDate via TDX_01', fixtureTest(), async () => {
  const quote = parseTdxQuote(fixture(QUOTES.v5));
  assert.equal(quote.header.version, 5);
  assert.equal(quote.bodyType, 3);
  const bare = await verifyTdxQuote(quote, { at: AT.v5 });
  assert.equal(bare.claims.tdReportVersion, '1.5');
  assert.equal(bare.claims.teeTcbSvn, '0b010400000000000000000000000000');
  assert.equal(bare.claims.teeTcbSvn2, '0d010400000000000000000000000000');
  assert.equal(bare.claims.mrTd, '7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876');
  assert.equal(bare.claims.rtmrs[0], '5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bdae8cbc614cec24619');
  assert.equal(bare.claims.reportData, '945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a');
  assert.equal(bare.claims.mrServiceTd, zero(48));
  assert.equal(bare.claims.pck.fmspc, '90c06f000000');

  const { claims } = await verifyTdxQuote(quote, { at: AT.v5, collateral: collateralV5() });
  assert.equal(claims.tcb?.status, 'UpToDate');
  assert.deepEqual(claims.tcb?.advisoryIds, []);
  assert.equal(claims.tcb?.tcbLevel.tcbDate, '2024-11-13T00:00:00Z');
  assert.deepEqual(claims.tcb?.tdxModule, { id: 'TDX_01', version: 1, isvSvn: 11, status: 'UpToDate', tcbDate: '2024-11-13T00:00:00Z', advisoryIds: [] });
  assert.equal(claims.tcb?.tcbEvaluationDataNumber, 18);
});

test('go-tdx-guest v5: the QE report matches the TD_QE identity (as shipped and with isvsvn edited to 1)', fixtureTest(), async () => {
  const quote = parseTdxQuote(fixture(QUOTES.v5));
  assert.equal(quote.qeReport.isvSvn, 7);
  const text = fixtureText('tdx/gotdxguest_qe_identity.json');
  const identity = parseQeIdentity(signedJsonFromPcsResponse(text, 'enclaveIdentity').body);
  assert.deepEqual(evaluateQeIdentity(quote.qeReport, identity), { status: 'UpToDate', isvSvn: 7, tcbDate: '2023-02-15T00:00:00Z', advisoryIds: [], tcbEvaluationDataNumber: 15 });
  const edited = parseQeIdentity(signedJsonFromPcsResponse(text.replace('"isvsvn":4', '"isvsvn":1'), 'enclaveIdentity').body);
  assert.equal(evaluateQeIdentity(quote.qeReport, edited).status, 'UpToDate');
  // Through verify, that 2023 identity has long expired by 2026.
  const collateral: TdxCollateral = { ...collateralV5(), qeIdentity: signedJsonFromPcsResponse(text, 'enclaveIdentity') };
  await rejects(verifyTdxQuote(quote, { at: AT.v5, collateral }), 'tdx.qe_identity_expired');
});

test('dcap-qvl v4 with the complete 2025 collateral: UpToDate, no advisory IDs, snapshot values', fixtureTest(), async () => {
  const quote = parseTdxQuote(fixture(QUOTES.dcapqvl));
  assert.equal(quote.trailingBytes, 70);
  const evidence = await verifyTdxQuote(quote, { at: AT.dcapqvl, collateral: collateralDcapQvl() });
  const { claims } = evidence;
  assert.equal(claims.tcb?.status, 'UpToDate');
  assert.deepEqual(claims.tcb?.advisoryIds, []);
  assert.equal(claims.tcb?.tcbLevel.tcbDate, '2024-03-13T00:00:00Z');
  assert.deepEqual(claims.pck.sgxTcbComponents, [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(claims.pck.pceSvn, 11);
  assert.equal(claims.pck.fmspc, 'b0c06f000000');
  assert.equal(claims.tcb?.tdxModule.id, 'TDX_01');
  assert.equal(claims.tcb?.tdxModule.isvSvn, 6);
  assert.equal(claims.tcb?.tdxModule.status, 'UpToDate');
  assert.equal(claims.qeIdentity?.status, 'UpToDate');
  assert.deepEqual(claims.revocation, { rootCaCrl: true, pckCrl: true });
  assert.equal(claims.teeTcbSvn, '06010300000000000000000000000000');
  assert.equal(claims.mrSeam, '5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207b00c1');
  assert.equal(claims.tdAttributes, '0000001000000000');
  assert.equal(claims.tdAttributeFlags.septVeDisable, true);
  assert.equal(claims.xfam, 'e702060000000000');
  assert.equal(claims.mrTd, '91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7');
  assert.deepEqual(claims.rtmrs, [
    '44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0',
    '0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378',
    'd833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132',
    zero(48),
  ]);
  assert.equal(claims.reportData, '9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20');

  // With full collateral and matching reference values the appraisal affirms on every rule it has.
  const appraisal = appraiseTdx(evidence, { mrTd: [claims.mrTd], rtmr: { 0: [claims.rtmrs[0]], 1: [claims.rtmrs[1]], 2: [claims.rtmrs[2]], 3: [zero(48)] }, reportData: claims.reportData, xfam: [claims.xfam] });
  assert.equal(appraisal.status, 'affirming');
  assert.deepEqual(appraisal.trustVector, { executables: 2, configuration: 2, instance_identity: 2, hardware: 2 });
  const tcbRule = appraisal.trace.find((t) => t.rule === 'tdx.tcb_status');
  assert.deepEqual(tcbRule, { rule: 'tdx.tcb_status', claim: 'tcb.status', expected: ['UpToDate'], actual: 'UpToDate', result: 'pass', message: undefined });
});

test('dcap-qvl collateral: past its validity window it is refused', fixtureTest(), async () => {
  const quote = parseTdxQuote(fixture(QUOTES.dcapqvl));
  // The window's end is the earliest nextUpdate, 1752919235; valid through that second, refused after.
  await verifyTdxQuote(quote, { at: new Date(1752919235 * 1000), collateral: collateralDcapQvl() });
  const error = await rejects(verifyTdxQuote(quote, { at: new Date(1752919236 * 1000), collateral: collateralDcapQvl() }), 'tdx.pck_crl_expired');
  assert.equal(error.details.nextUpdate, '2025-07-19T10:00:35.000Z');
});

test('COS-113 quote + CCEL: the log replays to RTMR0-2, RTMR3 is zero, report data is the nonce', fixtureTest(), async () => {
  const table = parseCcelAcpiTable(fixture('tdx/gotdxguest_cos113_ccel_acpi_table.bin'));
  assert.equal(table.ccType, 2, 'TDX');
  const log = fixture('tdx/gotdxguest_cos113_ccel_data.bin');
  assert.equal(table.logAreaMinimumLength, BigInt(log.length));
  assert.equal(parseCcel(log).events.length, 43);

  const quote = parseTdxQuote(fixture(QUOTES.cos113));
  assert.equal(quote.trailingBytes, 8000 - 4935);
  const evidence = await verifyTdxQuote(quote, { at: AT.cos113, eventLog: log });
  const { claims } = evidence;
  assert.deepEqual(claims.rtmrs, [
    '3fa2f61f395b7f5feefb4ec2df61297f109ad8abcd6410c1b7df60f21f37b19297fc35e544039c7e1edece752afd17f6',
    'f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1',
    '4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1',
    zero(48),
  ]);
  assert.equal(claims.mrTd, 'dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a');
  assert.equal(claims.pck.fmspc, '00806f050000');
  assert.equal(claims.eventLog?.events.length, 43);
  assert.equal(claims.eventLog?.events.filter((e) => e.mrIndex === 1).length, 16);
  const nonce = toHex(fixture('tdx/gotdxguest_cos113_nonce.bin'));
  assert.equal(claims.reportData, nonce);
  const appraisal = appraiseTdx(evidence, { reportData: nonce, requireEventLog: true, requireTcbEvaluation: false, requireQeIdentity: false });
  assert.equal(appraisal.trace.find((t) => t.rule === 'tdx.report_data')?.result, 'pass');
  assert.equal(appraisal.trace.find((t) => t.rule === 'tdx.event_log')?.result, 'pass');

  // One event's digest changed: the replay no longer matches the quote.
  const tampered = log.slice();
  const second = parseCcel(log).events[1];
  const at = indexOf(tampered, second.digest);
  tampered[at] ^= 1;
  const error = await rejects(verifyTdxQuote(quote, { at: AT.cos113, eventLog: tampered }), 'tdx.rtmr_mismatch');
  assert.equal(error.details.index, 0);
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

test('trustee v4 (debug TD): parsed fields equal trustee\'s expected claims; debug is refused by default', fixtureTest(), async () => {
  const expected = JSON.parse(fixtureText('tdx/trustee_tdx_quote_v4_expected_claims.json'));
  const quote = parseTdxQuote(fixture(QUOTES.trusteeV4));
  const h = quote.header;
  const le16 = (n: number) => toHex(new Uint8Array([n & 0xff, n >> 8]));
  assert.equal(le16(h.version), expected.quote.header.version);
  assert.equal(le16(h.attestationKeyType), expected.quote.header.att_key_type);
  assert.equal(toHex(new Uint8Array([0x81, 0, 0, 0])), expected.quote.header.tee_type);
  assert.equal(h.teeType, 0x81);
  assert.equal(le16(h.qeSvn) + le16(h.pceSvn), expected.quote.header.reserved);
  assert.equal(toHex(h.qeVendorId), expected.quote.header.vendor_id);
  assert.equal(toHex(h.userData), expected.quote.header.user_data);

  const { claims } = await verifyTdxQuote(quote, { at: AT.trusteeV4 });
  const body = expected.quote.body;
  assert.equal(claims.mrConfigId, body.mr_config_id);
  assert.equal(claims.mrOwner, body.mr_owner);
  assert.equal(claims.mrOwnerConfig, body.mr_owner_config);
  assert.equal(claims.mrSeam, body.mr_seam);
  assert.equal(claims.mrTd, body.mr_td);
  assert.equal(claims.mrSignerSeam, body.mrsigner_seam);
  assert.equal(claims.reportData, body.report_data);
  assert.deepEqual(claims.rtmrs, [body.rtmr_0, body.rtmr_1, body.rtmr_2, body.rtmr_3]);
  assert.equal(claims.seamAttributes, body.seam_attributes);
  assert.equal(claims.teeTcbSvn, body.tcb_svn);
  assert.equal(claims.tdAttributes, body.td_attributes);
  assert.equal(claims.xfam, body.xfam);
  assert.equal(claims.reportData, expected.report_data);
  // trustee prints the PCK extension's platform instance ID byte-reversed; Sigil keeps the DER order.
  assert.equal(claims.pck.platformInstanceId, expected.platform_instance_id.match(/../g).reverse().join(''));
  const flags = claims.tdAttributeFlags;
  assert.deepEqual(
    { debug: flags.debug, key_locker: flags.keyLocker, perfmon: flags.perfmon, protection_keys: flags.protectionKeys, septve_disable: flags.septVeDisable },
    expected.td_attributes,
  );

  const evidence = await verifyTdxQuote(quote, { at: AT.trusteeV4 });
  const refused = appraiseTdx(evidence, { requireTcbEvaluation: false, requireQeIdentity: false });
  assert.equal(refused.status, 'contraindicated');
  assert.equal(refused.trace.find((t) => t.rule === 'tdx.debug')?.result, 'fail');
  assert.equal(refused.trustVector.configuration, 96);
  const allowed = appraiseTdx(evidence, { allowDebug: true, requireTcbEvaluation: false, requireQeIdentity: false });
  assert.equal(allowed.status, 'warning');
  assert.equal(allowed.trace.find((t) => t.rule === 'tdx.debug')?.result, 'warn');
});

test('trustee v5 (TDX 1.5, non-zero MRSERVICETD): parses and verifies', fixtureTest(), async () => {
  const quote = parseTdxQuote(fixture(QUOTES.trusteeV5));
  assert.equal(quote.header.version, 5);
  assert.equal(quote.bodyType, 3);
  const { claims } = await verifyTdxQuote(quote, { at: AT.trusteeV5 });
  assert.equal(claims.mrServiceTd, '383c87d3bbb047b2d171eaca95312ede99f258088dc788f6ae2ccf8b6dd848fe8d47629e08b3f6cbd4a00dd47a5a033d');
  assert.equal(claims.teeTcbSvn2, '05010200000000000000000000000000');
  assert.equal(claims.pck.fmspc, '90c06f000000');
  // A service TD is bound: the policy must name it, or the rule fails.
  const appraisal = appraiseTdx(await verifyTdxQuote(quote, { at: AT.trusteeV5 }), { mrServiceTd: [zero(48)], requireTcbEvaluation: false, requireQeIdentity: false });
  assert.equal(appraisal.trace.find((t) => t.rule === 'tdx.mr_service_td')?.result, 'fail');
});

test('trustee v5 against the 2026 TCB info of its FMSPC: no matching TCB level', fixtureTest(), async () => {
  // Not an upstream expectation (trustee's full verification is ignored upstream): Sigil's result,
  // following Intel's level matching: the PCK's SGX components 1,1,2,2,3,1,0,3 are below every level.
  const quote = parseTdxQuote(fixture(QUOTES.trusteeV5));
  const error = await rejects(verifyTdxQuote(quote, { at: AT.v5, collateral: collateralV5() }), 'tdx.tcb_no_matching_level');
  assert.equal(error.details.stage, 'sgx');
});

test('the Azure TDX quote (azure/, owned by the Azure verifier) also parses and verifies here', fixtureTest(), async () => {
  // Re-checked values from the fixtures README (the end-to-end DCAP result is UNCONFIRMED upstream).
  const quote = parseTdxQuote(fixture('azure/trustee_aztdx_td_quote.bin'));
  assert.equal(quote.trailingBytes, 70);
  const { claims } = await verifyTdxQuote(quote, { at: new Date('2025-01-01T00:00:00Z') });
  assert.equal(claims.mrTd, '024a32b070383331181619fa387cb4d55d1e38879f989933055ccad5bc2db795d1737b66205949d15469dc8c1ba7ab7b');
  assert.deepEqual(claims.rtmrs, [zero(48), zero(48), zero(48), zero(48)]);
  assert.equal(claims.reportData.slice(0, 64), '9734504f161d104c74e3165c15f779b06a9bb40dfa71937817d7eee68e593839');
  assert.equal(claims.pck.fmspc, '00806f050000');
});
