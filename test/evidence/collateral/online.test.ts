import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import { directoryCacheStore, kdsVcekUrl, OnlineCollateral, snpCollateralFor, tdxCollateralFor, type OnlineCollateralOptions } from '../../../src/evidence/collateral/index.ts';
import { verifySnp } from '../../../src/evidence/snp/verify.ts';
import { parseTdxQuote, verifyTdxQuote } from '../../../src/evidence/tdx/index.ts';
import { makeCrl, makeTestPki } from '../snp/synthetic.ts';
import { GOSEV_AT, gosevReport, gosevTcb, milanAskArk, qeIdentityText, signingChain2018, SPR_AT, TCB_INFO_NEXT_UPDATE, tcbInfoText } from './support.ts';

/**
 * The online fetchers against a local node:http fake of AMD KDS and Intel PCS / PCCS serving the
 * fixture files (never the network): URLs and parameters, issuer-chain headers, caching (a second
 * call sends no request), freshness (expired → revalidate / refetch), stale-if-error, the
 * directory cache store, and collateral resolved online reaching the verifiers.
 */
interface Route {
  status?: number;
  body: Uint8Array | string;
  headers?: Record<string, string>;
  etag?: string;
}

const routes = new Map<string, Route>();
const log: { url: string; headers: IncomingHttpHeaders }[] = [];
let server: Server;
let base = '';
let now = Date.parse('2023-07-01T00:00:00Z');
const temporary = mkdtempSync(join(tmpdir(), 'sigil-online-'));

const hwid = () => toHex(gosevReport().chipId);
const encodedChain = () => encodeURIComponent(signingChain2018());

function defaultRoutes(): void {
  routes.clear();
  const tcb = gosevTcb();
  routes.set(`/vcek/v1/Milan/${hwid()}?blSPL=${tcb.bootloader}&teeSPL=${tcb.tee}&snpSPL=${tcb.snp}&ucodeSPL=${tcb.microcode}`, { body: fixture('snp/gosevguest_milan_vcek.der') });
  routes.set('/vcek/v1/Milan/cert_chain', { body: milanAskArk() });
  routes.set('/vlek/v1/Milan/cert_chain', { body: fixtureText('snp/amd_milan_vlek_asvk_ark.pem') });
  routes.set('/tdx/certification/v4/tcb?fmspc=50806F000000', { body: tcbInfoText(), headers: { 'TCB-Info-Issuer-Chain': encodedChain() }, etag: '"tcb-1"' });
  routes.set('/tdx/certification/v4/qe/identity', { body: qeIdentityText(), headers: { 'SGX-Enclave-Identity-Issuer-Chain': encodedChain() } });
  routes.set('/sgx/certification/v4/pckcrl?ca=platform&encoding=der', {
    body: fixture('tdx/gotdxguest_pck_platform_crl.der'),
    headers: { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(fixtureText('tdx/intel_sgx_root_ca.pem')) },
  });
  routes.set('/IntelSGXRootCA.der', { body: fixture('tdx/gotdxguest_root_ca_crl.der') });
  // PCCS serves the Root CA CRL as hex text.
  routes.set('/sgx/certification/v4/rootcacrl', { body: toHex(fixture('tdx/gotdxguest_root_ca_crl.der')) });
}

before(async () => {
  server = createServer((request, response) => {
    log.push({ url: request.url ?? '', headers: request.headers });
    const route = routes.get(request.url ?? '');
    if (!route) {
      response.writeHead(404).end('not found');
      return;
    }
    if (route.etag && request.headers['if-none-match'] === route.etag) {
      response.writeHead(304, { ETag: route.etag }).end();
      return;
    }
    response.writeHead(route.status ?? 200, { ...(route.headers ?? {}), ...(route.etag ? { ETag: route.etag } : {}) });
    response.end(route.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(temporary, { recursive: true, force: true });
});

beforeEach(() => {
  defaultRoutes();
  log.length = 0;
  now = Date.parse('2023-07-01T00:00:00Z');
});

function provider(options: OnlineCollateralOptions = {}): OnlineCollateral {
  return new OnlineCollateral({ kdsUrl: base, intel: { baseUrl: base, rootCrlUrl: `${base}/IntelSGXRootCA.der` }, now: () => now, ...options });
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

test('KDS: VCEK URL and SPL parameters, immutable VCEK and chains (no second request, ever)', fixtureTest(), async () => {
  const online = provider();
  const tcb = gosevTcb();
  const vcek = await online.getSnpVcek('Milan', gosevReport().chipId, tcb);
  assert.equal(toHex(vcek.value), toHex(fixture('snp/gosevguest_milan_vcek.der')));
  assert.equal(vcek.source, 'network');
  assert.deepEqual(
    log.map((l) => l.url),
    [`/vcek/v1/Milan/${hwid()}?blSPL=${tcb.bootloader}&teeSPL=${tcb.tee}&snpSPL=${tcb.snp}&ucodeSPL=${tcb.microcode}`],
  );
  now += 10 * 365 * 86_400_000;
  const again = await online.getSnpVcek('Milan', gosevReport().chipId, tcb);
  assert.equal(again.source, 'cache');
  assert.equal(log.length, 1, 'a VCEK is immutable');
  assert.equal((await online.getSnpChain('Milan')).value, milanAskArk());
  assert.equal((await online.getSnpChain('Milan', 'vlek')).value, fixtureText('snp/amd_milan_vlek_asvk_ark.pem'));
  await online.getSnpChain('Milan');
  assert.deepEqual(log.slice(1).map((l) => l.url), ['/vcek/v1/Milan/cert_chain', '/vlek/v1/Milan/cert_chain']);
  // Turin: fmcSPL first, hwID = the first 8 bytes of CHIP_ID.
  const chip = new Uint8Array(64).fill(0xab);
  assert.equal(
    kdsVcekUrl('https://kdsintf.amd.com', 'Turin', chip, { fmc: 1, bootloader: 2, tee: 3, snp: 4, microcode: 5, hex: '0500000004030201' }),
    'https://kdsintf.amd.com/vcek/v1/Turin/abababababababab?fmcSPL=1&blSPL=2&teeSPL=3&snpSPL=4&ucodeSPL=5',
  );
});

test('KDS CRL: fresh until its nextUpdate, refetched after', fixtureTest(), async () => {
  const pki = await makeTestPki('Milan');
  routes.set('/vcek/v1/Milan/crl', { body: await makeCrl(pki, { thisUpdate: new Date('2023-06-01T00:00:00Z'), nextUpdate: new Date('2023-08-01T00:00:00Z') }) });
  const online = provider();
  const crl = await online.getSnpCrl('Milan');
  assert.equal(crl.freshUntil?.toISOString(), '2023-08-01T00:00:00.000Z');
  await online.getSnpCrl('Milan');
  assert.equal(log.length, 1);
  now = Date.parse('2023-08-01T00:00:01Z');
  const refreshed = await online.getSnpCrl('Milan');
  assert.equal(refreshed.source, 'network');
  assert.equal(log.length, 2);
  assert.equal(log[1].url, '/vcek/v1/Milan/crl');
});

test('PCS TCB info: URL-encoded issuer chain, cached until nextUpdate, then revalidated with its ETag', fixtureTest(), async () => {
  const online = provider();
  const first = await online.getTdxTcbInfo('50806f000000');
  assert.equal(first.value, tcbInfoText());
  assert.equal(first.issuerChain, signingChain2018());
  assert.equal(first.freshUntil?.toISOString(), TCB_INFO_NEXT_UPDATE.toISOString());
  assert.equal(first.location, `${base}/tdx/certification/v4/tcb?fmspc=50806F000000`);
  const second = await online.getTdxTcbInfo('50806f000000');
  assert.equal(second.source, 'cache');
  assert.equal(log.length, 1, 'second call: no request');

  now = TCB_INFO_NEXT_UPDATE.getTime() + 1000;
  const revalidated = await online.getTdxTcbInfo('50806f000000');
  assert.equal(log.length, 2);
  assert.equal(log[1].headers['if-none-match'], '"tcb-1"');
  assert.deepEqual([revalidated.source, revalidated.stale, revalidated.value === tcbInfoText()], ['cache', false, true]);
  assert.equal(revalidated.issuerChain, signingChain2018(), 'headers kept through a 304');
  await online.getTdxTcbInfo('50806f000000');
  assert.equal(log.length, 2, 'its nextUpdate has passed: checked again only after the recheck interval');
  now += 2 * 3_600_000;
  routes.set('/tdx/certification/v4/tcb?fmspc=50806F000000', { body: tcbInfoText(), headers: { 'TCB-Info-Issuer-Chain': encodedChain() }, etag: '"tcb-2"' });
  const refetched = await online.getTdxTcbInfo('50806f000000');
  assert.equal(refetched.source, 'network');
  assert.equal(log.length, 3);
});

test('PCS QE identity, PCK CRL (ca, encoding=der) and Root CA CRL; PCCS under its base URL with a hex Root CA CRL', fixtureTest(), async () => {
  const online = provider({ intel: { baseUrl: base, rootCrlUrl: `${base}/IntelSGXRootCA.der`, update: 'standard' } });
  routes.set('/tdx/certification/v4/qe/identity?update=standard', routes.get('/tdx/certification/v4/qe/identity')!);
  routes.set('/tdx/certification/v4/tcb?fmspc=50806F000000&update=standard', routes.get('/tdx/certification/v4/tcb?fmspc=50806F000000')!);
  const qe = await online.getTdxQeIdentity();
  assert.equal(qe.value, qeIdentityText());
  assert.equal(qe.issuerChain, signingChain2018());
  await online.getTdxTcbInfo('50806f000000');
  const pck = await online.getTdxPckCrl('platform');
  assert.equal(toHex(pck.value), toHex(fixture('tdx/gotdxguest_pck_platform_crl.der')));
  assert.equal(pck.issuerChain, fixtureText('tdx/intel_sgx_root_ca.pem'));
  const root = await online.getIntelRootCrl();
  assert.equal(toHex(root.value), toHex(fixture('tdx/gotdxguest_root_ca_crl.der')));
  assert.deepEqual(log.map((l) => l.url), [
    '/tdx/certification/v4/qe/identity?update=standard',
    '/tdx/certification/v4/tcb?fmspc=50806F000000&update=standard',
    '/sgx/certification/v4/pckcrl?ca=platform&encoding=der',
    '/IntelSGXRootCA.der',
  ]);
  const pccs = new OnlineCollateral({ intel: { service: 'pccs', baseUrl: `${base}/` }, now: () => now });
  const pccsRoot = await pccs.getIntelRootCrl();
  assert.equal(toHex(pccsRoot.value), toHex(fixture('tdx/gotdxguest_root_ca_crl.der')));
  assert.equal(pccsRoot.location, `${base}/sgx/certification/v4/rootcacrl`);
  assert.throws(() => new OnlineCollateral({ intel: { service: 'pccs' } }), (e) => e instanceof SigilError && e.code === 'collateral.request_invalid');
});

test('stale-if-error: an expired copy is served (stale: true) when the service fails; without one, typed errors', fixtureTest(), async () => {
  let down = false;
  const online = provider({ fetch: async (input, init) => (down ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init)) });
  await online.getTdxTcbInfo('50806f000000');
  now = TCB_INFO_NEXT_UPDATE.getTime() + 1000;
  down = true;
  const offline = await online.getTdxTcbInfo('50806f000000');
  assert.deepEqual([offline.source, offline.stale, offline.value === tcbInfoText()], ['cache', true, true]);
  down = false;
  routes.set('/tdx/certification/v4/tcb?fmspc=50806F000000', { status: 503, body: 'busy' });
  const busy = await online.getTdxTcbInfo('50806f000000');
  assert.equal(busy.stale, true);
  routes.set('/tdx/certification/v4/tcb?fmspc=50806F000000', { body: '{"tcbInfo": "garbage"}' });
  const garbage = await online.getTdxTcbInfo('50806f000000');
  assert.deepEqual([garbage.stale, garbage.value === tcbInfoText()], [true, true], 'a damaged answer never replaces a good copy');

  const fresh = provider();
  routes.set('/tdx/certification/v4/qe/identity', { status: 500, body: 'oops' });
  assert.equal(await code(() => fresh.getTdxQeIdentity()), 'collateral.fetch_failed');
  assert.equal(await code(() => fresh.getTdxTcbInfo('00806f050000')), 'collateral.not_found');
  routes.set('/IntelSGXRootCA.der', { body: 'not a crl' });
  assert.match(await code(() => fresh.getIntelRootCrl()), /^collateral\.response_malformed$/);
  routes.set('/IntelSGXRootCA.der', { body: fixture('tdx/gotdxguest_root_ca_crl.der') });
  assert.equal(toHex((await fresh.getIntelRootCrl()).value), toHex(fixture('tdx/gotdxguest_root_ca_crl.der')), 'the damaged answer was not cached');
  const unreachable = provider({ fetch: async () => Promise.reject(new TypeError('fetch failed')) });
  assert.equal(await code(() => unreachable.getSnpChain('Milan')), 'collateral.fetch_failed');
});

test('concurrent requests for one URL share a single fetch', fixtureTest(), async () => {
  const online = provider();
  const results = await Promise.all([online.getTdxQeIdentity(), online.getTdxQeIdentity(), online.getTdxQeIdentity()]);
  assert.equal(log.length, 1);
  assert.ok(results.every((r) => r.value === qeIdentityText()));
});

test('directory cache store: a new process (new cache) reuses fresh entries; damaged files are misses', fixtureTest(), async () => {
  const dir = mkdtempSync(join(temporary, 'cache-'));
  await provider({ store: directoryCacheStore(dir) }).getTdxTcbInfo('50806f000000');
  await provider({ store: directoryCacheStore(dir) }).getSnpChain('Milan');
  assert.equal(log.length, 2);
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.json')).length, 2);
  const restarted = provider({ store: directoryCacheStore(dir) });
  const tcbInfo = await restarted.getTdxTcbInfo('50806f000000');
  assert.deepEqual([tcbInfo.source, tcbInfo.issuerChain === signingChain2018()], ['cache', true]);
  await restarted.getSnpChain('Milan');
  assert.equal(log.length, 2, 'served from the directory');
  now = TCB_INFO_NEXT_UPDATE.getTime() + 1000;
  await provider({ store: directoryCacheStore(dir) }).getTdxTcbInfo('50806f000000');
  assert.equal(log.length, 3, 'expired in the store: revalidated');
  assert.equal(log[2].headers['if-none-match'], '"tcb-1"');
  for (const file of readdirSync(dir)) writeFileSync(join(dir, file), '{ damaged');
  await provider({ store: directoryCacheStore(dir) }).getSnpChain('Milan');
  assert.equal(log.length, 4);
});

test('collateral resolved online reaches the verifiers (TDX TCB evaluation, SNP chain + VCEK)', fixtureTest(), async () => {
  const online = provider();
  const spr = parseTdxQuote(fixture('tdx/gotdxguest_quote_v4_spr_e4.dat'));
  const resolved = await tdxCollateralFor(spr, online);
  assert.equal(resolved.stale, false);
  assert.equal(resolved.locations.length, 4);
  assert.equal(await code(() => verifyTdxQuote(spr, { at: SPR_AT, collateral: resolved.value })), 'tdx.tcb_no_matching_level');

  const report = gosevReport();
  const snp = await snpCollateralFor(report, online, { product: 'Milan', fetchVcek: true });
  assert.deepEqual(snp.value.crls, [], 'KDS CRL 404: left out');
  const { claims } = await verifySnp(report, { at: GOSEV_AT, endorsementKey: snp.value.vcek!, chain: snp.value.chain });
  assert.equal(claims.endorsement.root, 'ARK-Milan');
});
