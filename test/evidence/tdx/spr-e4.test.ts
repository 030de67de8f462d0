import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { appraiseTdx, parseTdxQuote, verifyQeIdentity, verifyTdxQuote, verifyTcbInfo, type TdxTrust } from '../../../src/evidence/tdx/index.ts';
import { intelSgxRootCa } from '../../../src/evidence/tdx/roots.ts';
import { AT, collateral2023, QUOTES, zero } from './support.ts';

/**
 * go-tdx-guest's Sapphire Rapids E4 quote (v4) and its 2023 collateral: every expectation the
 * fixtures README lists (google/go-tdx-guest verify_test.go and tools/check/check_test.go).
 */
const quoteBytes = () => fixture(QUOTES.sprE4);
const verify = async (bytes: Uint8Array, trust: Partial<TdxTrust> = {}) => verifyTdxQuote(parseTdxQuote(bytes), { at: AT.sprE4, ...trust });

async function rejects(promise: Promise<unknown>, code: string | RegExp): Promise<SigilError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof SigilError, `expected a SigilError, got ${error}`);
    if (typeof code === 'string') assert.equal(error.code, code, error.message);
    else assert.match(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected rejection with ${code}`);
}

test('SPR E4 v4: signature, QE report and PCK chain verify without collateral, with the check values', fixtureTest(), async () => {
  const quote = parseTdxQuote(quoteBytes());
  assert.equal(quote.header.version, 4);
  assert.equal(quote.trailingBytes, 39, 'the appended ASCII line is tolerated');
  const { claims } = await verifyTdxQuote(quote, { at: AT.sprE4 });
  assert.equal(claims.header.qeVendorId, '939a7233f79c4ca9940a0db3957f0607');
  assert.equal(claims.header.qeSvn, 0);
  assert.equal(claims.header.pceSvn, 0);
  assert.equal(claims.teeTcbSvn, '03000400000000000000000000000000');
  assert.equal(claims.mrSeam, '2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9a89b4869a9fab60fbe9d0c5a5363c656');
  assert.equal(claims.tdAttributes, '0000004000000000');
  assert.equal(claims.xfam, 'e71a060000000000');
  assert.equal(claims.mrTd, '6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb');
  assert.equal(claims.mrConfigId, zero(48));
  assert.equal(claims.mrOwner, zero(48));
  assert.equal(claims.mrOwnerConfig, zero(48));
  assert.deepEqual(claims.rtmrs, [
    '2927da70461cd63266f43230cc1849c03ef25ebe490062a801d8fcc80af42976823adf08f833c1e50b51779c6593f32a',
    '2c700b8ba9b85783f8be9fb9443647bdc0bb3c50747f06297cc6538c25a5f589c4b56d035c59107c6bc5800db2cacb61',
    '8652f0caaba7e215ea442dc36a4499d8fec3362f3a0b2ca151cbe4b3e6466fe59c7368b3c2287fc7c3bf5c924eb4424e',
    zero(48),
  ]);
  assert.equal(claims.reportData, '6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113');
  assert.equal(claims.pck.fmspc, '50806f000000');
  assert.equal(claims.pck.ca, 'platform');
  assert.equal(claims.tdAttributeFlags.debug, false);
  assert.equal(claims.tdAttributeFlags.protectionKeys, true);
  assert.equal(claims.tcb, undefined);

  // check_test.go: minimum TEE TCB SVN 03000400… passes; the measured values pass as reference values.
  const appraisal = appraiseTdx(await verifyTdxQuote(quote, { at: AT.sprE4 }), {
    mrTd: [claims.mrTd],
    rtmr: { 0: [claims.rtmrs[0]], 1: [claims.rtmrs[1]], 2: [claims.rtmrs[2]], 3: [zero(48)] },
    mrSeam: [claims.mrSeam.toUpperCase()],
    xfam: ['e71a060000000000'],
    tdAttributes: ['0000004000000000'],
    mrConfigId: [zero(48)],
    mrOwner: [zero(48)],
    mrOwnerConfig: [zero(48)],
    reportData: claims.reportData,
    minimumTeeTcbSvn: '03000400000000000000000000000000',
    requireTcbEvaluation: false,
    requireQeIdentity: false,
  });
  assert.equal(appraisal.status, 'warning', 'affirming except the unevaluated TCB and QE, which warn');
  assert.deepEqual(appraisal.trace.filter((t) => t.result === 'fail'), []);
  assert.deepEqual(appraisal.trace.filter((t) => t.result === 'warn').map((t) => t.rule), ['tdx.tcb_status', 'tdx.qe_identity']);
  assert.equal(appraisal.trustVector.executables, 2);
  assert.equal(appraisal.trustVector.configuration, 2);
  assert.equal(appraisal.trustVector.hardware, 32);

  // A higher minimum TEE TCB SVN and another MRTD fail, each with its rule in the trace.
  const strict = appraiseTdx(await verifyTdxQuote(quote, { at: AT.sprE4 }), { minimumTeeTcbSvn: '03000500000000000000000000000000', mrTd: [zero(48)] });
  assert.equal(strict.status, 'contraindicated');
  const failed = strict.trace.filter((t) => t.result === 'fail').map((t) => t.rule);
  assert.deepEqual(failed, ['tdx.mr_td', 'tdx.minimum_tee_tcb_svn', 'tdx.tcb_status', 'tdx.qe_identity']);
  assert.equal(strict.trustVector.executables, 96);
  const malformed = appraiseTdx(await verifyTdxQuote(quote, { at: AT.sprE4 }), { minimumTeeTcbSvn: '0300' });
  assert.equal(malformed.trace.find((t) => t.rule === 'tdx.minimum_tee_tcb_svn')?.result, 'fail');
});

test('SPR E4 v4: at 2053 the PCK leaf has expired', fixtureTest(), async () => {
  const error = await rejects(verify(quoteBytes(), { at: new Date('2053-07-01T01:00:00Z') }), 'tdx.pck_chain_expired');
  assert.equal(error.details.index, 0);
  assert.equal(error.details.notAfter, '2029-09-20T13:20:31.000Z');
});

test('SPR E4 collateral: TCB info, QE identity and both CRLs verify at 2023-07-01, TCB info expired at 2053', fixtureTest(), async () => {
  const collateral = collateral2023();
  const roots = [await intelSgxRootCa()];
  const info = await verifyTcbInfo(collateral, { at: AT.sprE4, roots });
  assert.equal(info.fmspc, '50806f000000');
  assert.equal(info.tcbEvaluationDataNumber, 15);
  assert.equal(info.tcbLevels.length, 2);
  const identity = await verifyQeIdentity(collateral, { at: AT.sprE4, roots });
  assert.equal(identity.isvProdId, 2);
  // Both CRLs, with revocation checking: verification proceeds past them to the TCB levels.
  const withCrls = await verify(quoteBytes(), { collateral: { pckCrl: collateral.pckCrl, rootCaCrl: collateral.rootCaCrl } });
  assert.deepEqual(withCrls.claims.revocation, { rootCaCrl: true, pckCrl: true });
  await rejects(verifyTcbInfo(collateral, { at: new Date('2053-07-01T01:00:00Z'), roots }), 'tdx.tcb_info_expired');
  await rejects(verifyQeIdentity(collateral, { at: new Date('2053-07-01T01:00:00Z'), roots }), 'tdx.qe_identity_expired');
  // Issued 2023-06-18: not yet valid two weeks earlier.
  await rejects(verifyTcbInfo(collateral, { at: new Date('2023-06-01T00:00:00Z'), roots }), 'tdx.tcb_info_not_yet_valid');
  // The TCB info signed under the 2025 re-issue of the signing certificate is not valid in 2023.
  await rejects(
    verifyTcbInfo({ ...collateral, tcbInfoIssuerChain: fixtureText('tdx/intel_sgx_tcb_signing_chain_2025.pem') }, { at: AT.sprE4, roots }),
    'tdx.tcb_signing_chain_expired',
  );
});

test('SPR E4 full verification fails with "no matching TCB level"', fixtureTest(), async () => {
  const error = await rejects(verify(quoteBytes(), { collateral: collateral2023() }), 'tdx.tcb_no_matching_level');
  assert.equal(error.details.stage, 'sgx');
  assert.deepEqual(error.details.pckSgxComponents, [3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('SPR E4: the single-byte overwrites of TestNegativeVerification are rejected', fixtureTest(), async () => {
  const overwrite = (offset: number, value: number) => {
    const bytes = quoteBytes();
    bytes[offset] = value;
    return bytes;
  };
  await rejects(verify(overwrite(0x00, 3)), 'tdx.quote_version_unsupported');
  await rejects(verify(overwrite(0x278, 0x10)), 'tdx.quote_malformed'); // signature data size no longer adds up
  await rejects(verify(overwrite(0x1e, 0x32)), 'tdx.quote_signature_invalid');
  await rejects(verify(overwrite(0x3c, 0x32)), 'tdx.quote_signature_invalid');
  assert.equal((await rejects(verify(overwrite(0xb77, 0x32)), 'tdx.pck_chain_invalid')).details.index, 0); // PCK leaf signature
  assert.equal((await rejects(verify(overwrite(0xf5f, 0x32)), 'tdx.pck_chain_invalid')).details.index, 1); // PCK CA signature
  await rejects(verify(overwrite(0x1329, 0x32)), 'tdx.pck_chain_untrusted'); // root no longer the pinned one
  await rejects(verify(overwrite(0x1343, 0x32)), 'tdx.pck_chain_malformed'); // a damaged END line
});

test('the PCK chain must end at the pinned root: another trust anchor rejects the genuine chain', fixtureTest(), async () => {
  // Use the TCB signing certificate as the only "root": the genuine Intel root is then untrusted.
  const { parsePemCertificates } = await import('../../../src/evidence/tdx/chain.ts');
  const [signing] = parsePemCertificates(fixtureText('tdx/intel_sgx_tcb_signing_chain_2018.pem'), 'tcb_signing_chain');
  await rejects(verify(quoteBytes(), { roots: [signing] }), 'tdx.pck_chain_untrusted');
});
