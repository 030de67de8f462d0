import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import {
  checkBundleName,
  firstOf,
  jsonBundleSource,
  memorySource,
  OfflineBundle,
  openCollateralBundle,
  pckIdentity,
  snpCollateralFor,
  tdxCollateralFor,
  type CollateralProvider,
} from '../../../src/evidence/collateral/index.ts';
import { verifySnp } from '../../../src/evidence/snp/verify.ts';
import { parseTdxQuote, verifyTdxQuote } from '../../../src/evidence/tdx/index.ts';
import {
  bundleFiles,
  bundleJson,
  dcapQvlBundleFiles,
  GOSEV_AT,
  gosevReport,
  gosevTcb,
  PCK_CRL_NEXT_UPDATE,
  QE_IDENTITY_NEXT_UPDATE,
  ROOT_CRL_NEXT_UPDATE,
  signingChain2018,
  SPR_AT,
  TCB_INFO_NEXT_UPDATE,
  tcbInfoText,
} from './support.ts';

const temporary = mkdtempSync(join(tmpdir(), 'sigil-collateral-'));
after(() => rmSync(temporary, { recursive: true, force: true }));

function writeBundleDir(files: Record<string, Uint8Array | string>): string {
  const dir = mkdtempSync(join(temporary, 'dir-'));
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, ...name.split('/'));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  return dir;
}

async function code(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof SigilError, String(error));
    return error.code;
  }
}

/** The same assertions for every way of opening the bundle. */
async function assertBundle(provider: CollateralProvider, expectedSource: string): Promise<void> {
  const report = gosevReport();
  const vcek = await provider.getSnpVcek('Milan', report.chipId, gosevTcb());
  assert.equal(toHex(vcek.value), toHex(fixture('snp/gosevguest_milan_vcek.der')));
  assert.equal(vcek.source, 'bundle');
  assert.equal(vcek.stale, false);
  assert.match(vcek.location, new RegExp(`${expectedSource}.*snp/Milan/vcek/${toHex(report.chipId)}-${gosevTcb().hex}\\.der$`));
  const chain = await provider.getSnpChain('Milan');
  assert.equal(chain.value, fixtureText('snp/amd_milan_vcek_ask_ark.pem'));
  assert.equal((await provider.getSnpChain('Milan', 'vlek')).value, fixtureText('snp/amd_milan_vlek_asvk_ark.pem'));
  assert.equal(await code(() => provider.getSnpCrl('Milan')), 'collateral.not_found');
  assert.equal(await code(() => provider.getSnpChain('Turin')), 'collateral.not_found');

  const tcbInfo = await provider.getTdxTcbInfo('50806F000000');
  assert.equal(tcbInfo.value, tcbInfoText(), 'the exact signed text');
  assert.equal(tcbInfo.issuerChain, signingChain2018(), 'the shared TCB signing chain');
  assert.equal(tcbInfo.freshUntil?.toISOString(), TCB_INFO_NEXT_UPDATE.toISOString());
  const qe = await provider.getTdxQeIdentity();
  assert.equal(qe.freshUntil?.toISOString(), QE_IDENTITY_NEXT_UPDATE.toISOString());
  assert.equal(qe.issuerChain, signingChain2018());
  const pckCrl = await provider.getTdxPckCrl('platform');
  assert.equal(toHex(pckCrl.value), toHex(fixture('tdx/gotdxguest_pck_platform_crl.der')));
  assert.equal(pckCrl.freshUntil?.toISOString(), PCK_CRL_NEXT_UPDATE.toISOString());
  assert.equal(await code(() => provider.getTdxPckCrl('processor')), 'collateral.not_found');
  const root = await provider.getIntelRootCrl();
  assert.equal(root.freshUntil?.toISOString(), ROOT_CRL_NEXT_UPDATE.toISOString());
  assert.equal(await code(() => provider.getTdxTcbInfo('00806f050000')), 'collateral.not_found');
}

test('directory bundle: every documented file name resolves, missing ones are not_found', fixtureTest(), async () => {
  const dir = writeBundleDir(bundleFiles());
  await assertBundle(await openCollateralBundle(dir), 'collateral directory');
});

test('single-file JSON bundle (from a string and from disk) gives the same answers', fixtureTest(), async () => {
  await assertBundle(new OfflineBundle(jsonBundleSource(bundleJson())), 'JSON bundle');
  const file = join(temporary, 'bundle.json');
  writeFileSync(file, bundleJson());
  await assertBundle(await openCollateralBundle(file), 'collateral bundle');
  assert.equal(await code(() => openCollateralBundle(join(temporary, 'absent'))), 'collateral.bundle_unreadable');
});

test('bundle names and requests are validated: no traversal, no bad FMSPC / CA / product / chip', fixtureTest(), async () => {
  for (const name of ['../etc/passwd', '/etc/passwd', 'snp/../../x', 'snp//x', 'other/x', 'snp/./x', 'snp/x\\y']) {
    assert.throws(() => checkBundleName(name), (e) => e instanceof SigilError && e.code === 'collateral.bundle_malformed', name);
  }
  assert.throws(() => jsonBundleSource(JSON.stringify({ format: 'sigil-collateral-bundle', version: 1, files: { '../x.pem': 'x' } })), (e) => e instanceof SigilError && e.code === 'collateral.bundle_malformed');
  assert.throws(() => jsonBundleSource(JSON.stringify({ format: 'other', version: 1, files: {} })), (e) => e instanceof SigilError && e.code === 'collateral.bundle_malformed');
  assert.throws(() => jsonBundleSource(JSON.stringify({ format: 'sigil-collateral-bundle', version: 1, files: { 'tdx/root_ca_crl.der': '!!' } })), (e) => e instanceof SigilError && e.code === 'collateral.bundle_malformed');
  const bundle = new OfflineBundle(memorySource(bundleFiles()));
  const tcb = gosevTcb();
  for (const [what, run] of [
    ['fmspc', () => bundle.getTdxTcbInfo('../../x')],
    ['short fmspc', () => bundle.getTdxTcbInfo('50806f')],
    ['ca', () => bundle.getTdxPckCrl('both' as 'platform')],
    ['product', () => bundle.getSnpChain('Rome' as 'Milan')],
    ['chip', () => bundle.getSnpVcek('Milan', new Uint8Array(12), tcb)],
    ['masked chip', () => bundle.getSnpVcek('Milan', new Uint8Array(64), tcb)],
    ['tcb', () => bundle.getSnpVcek('Milan', gosevReport().chipId, { ...tcb, snp: 256 })],
  ] as const) {
    assert.equal(await code(run), 'collateral.request_invalid', what);
  }
});

test('damaged bundle files are bundle_malformed, not not_found', fixtureTest(), async () => {
  const damaged = new OfflineBundle(
    memorySource({
      'tdx/tcbinfo/50806f000000.json': '{"tcbInfo": {"nextUpdate": "soon"}, "signature": "00"}',
      'tdx/qe_identity.json': 'not json',
      'tdx/root_ca_crl.der': new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]),
      'snp/Milan/cert_chain.pem': 'hello',
      'tdx/pck_crl_platform.der': new Uint8Array([0xff, 0xfe]),
    }),
  );
  assert.equal(await code(() => damaged.getTdxTcbInfo('50806f000000')), 'collateral.bundle_malformed');
  assert.equal(await code(() => damaged.getTdxQeIdentity()), 'collateral.bundle_malformed');
  assert.equal(await code(() => damaged.getIntelRootCrl()), 'collateral.bundle_malformed');
  assert.equal(await code(() => damaged.getSnpChain('Milan')), 'collateral.bundle_malformed');
  assert.equal(await code(() => damaged.getTdxPckCrl('platform')), 'collateral.bundle_malformed');
});

test('firstOf: an empty bundle falls through to the next; a damaged one stops the search', fixtureTest(), async () => {
  const empty = new OfflineBundle(memorySource({}));
  const full = new OfflineBundle(memorySource(bundleFiles()));
  const chained = firstOf(empty, full);
  assert.equal((await chained.getSnpChain('Milan')).value, fixtureText('snp/amd_milan_vcek_ask_ark.pem'));
  assert.equal(await code(() => firstOf(empty).getIntelRootCrl()), 'collateral.not_found');
  const damaged = new OfflineBundle(memorySource({ 'snp/Milan/cert_chain.pem': 'hello' }));
  assert.equal(await code(() => firstOf(damaged, full).getSnpChain('Milan')), 'collateral.bundle_malformed');
});

test('resolve: a bundle supplies the SNP chain and VCEK, and the verifier accepts them', fixtureTest(), async () => {
  const report = gosevReport();
  const resolved = await snpCollateralFor(report, new OfflineBundle(memorySource(bundleFiles())), { product: 'Milan', fetchVcek: true });
  assert.equal(resolved.stale, false);
  assert.equal(resolved.value.crls.length, 0, 'no CRL in the bundle: left out');
  const { claims } = await verifySnp(report, { at: GOSEV_AT, endorsementKey: resolved.value.vcek!, chain: resolved.value.chain });
  assert.equal(claims.endorsement.root, 'ARK-Milan');
  assert.equal(claims.endorsement.crlChecked, false);
  // Without a product a v2 report cannot be resolved.
  assert.equal(await code(() => snpCollateralFor(report, new OfflineBundle(memorySource(bundleFiles())))), 'collateral.product_unknown');
});

test('resolve: TDX collateral from a bundle reaches the TCB evaluation (SPR E4: no matching level; dcap-qvl: UpToDate)', fixtureTest(), async () => {
  const spr = parseTdxQuote(fixture('tdx/gotdxguest_quote_v4_spr_e4.dat'));
  assert.deepEqual(pckIdentity(spr), { fmspc: '50806f000000', ca: 'platform' });
  const resolved = await tdxCollateralFor(spr, new OfflineBundle(memorySource(bundleFiles())));
  assert.deepEqual(Object.keys(resolved.value).sort(), ['pckCrl', 'qeIdentity', 'rootCaCrl', 'tcbInfo', 'tcbInfoIssuerChain', 'qeIdentityIssuerChain'].sort());
  assert.equal(await code(() => verifyTdxQuote(spr, { at: SPR_AT, collateral: resolved.value })), 'tdx.tcb_no_matching_level');

  const quote = parseTdxQuote(fixture('tdx/dcapqvl_tdx_quote_v4.dat'));
  const { fmspc } = pckIdentity(quote);
  const qvl = await tdxCollateralFor(quote, new OfflineBundle(memorySource(dcapQvlBundleFiles(fmspc))));
  const { claims } = await verifyTdxQuote(quote, { at: new Date(1752919234 * 1000), collateral: qvl.value });
  assert.equal(claims.tcb?.status, 'UpToDate');
  assert.deepEqual(claims.revocation, { rootCaCrl: true, pckCrl: true });
  // An empty provider: the quote still verifies, its TCB is simply not evaluated.
  const none = await tdxCollateralFor(quote, new OfflineBundle(memorySource({})));
  assert.deepEqual(none.value, {});
});
