import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toBase64 } from '../../src/core/hex.ts';
import { fixture, fixtureTest } from '../support/fixtures.ts';
import { FIXTURE_FILES, run } from './cases.ts';
import { chromiumAvailable, runInChromium } from './harness.ts';

const entry = new URL('./cases.ts', import.meta.url).pathname;

function skipReason(): string | false {
  const fixtures = fixtureTest().skip;
  if (fixtures) return fixtures;
  if (!chromiumAvailable()) return 'Chromium is not installed (Debian package chromium; scripts/setup.sh installs it)';
  return false;
}

test('the isomorphic verifiers give the same outcomes in headless Chromium as in Node', { skip: skipReason() }, async () => {
  const input = Object.fromEntries(FIXTURE_FILES.map((f) => [f, toBase64(fixture(f))]));
  const inNode = JSON.parse(JSON.stringify(await run(input)));
  const inBrowser = await runInChromium(entry, input);
  assert.deepEqual(inBrowser, inNode);
  // And the outcomes are the ones the fixtures README states.
  const ok = inNode['tpm quote, GCE COS 85, nonce 9009'];
  assert.equal(ok.ok, true);
  assert.equal(ok.value.pcr0, '0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf');
  assert.equal(ok.value.pcr7, '3365d7fa2b024c852913c06e04ffbfa6ea5289f743bbf1a76f7ffdf21ed84793');
  assert.equal(ok.value.firmwareVersion, '2016051100162800');
  assert.deepEqual(inNode['tpm quote, GCE COS 85, wrong nonce'], { ok: false, code: 'tpm.quote_nonce_mismatch' });
  assert.equal(inNode['snp, Milan VCEK'].value.product, 'Milan');
  assert.equal(inNode['snp, Milan VCEK, after the VCEK expired'].ok, false);
  assert.equal(inNode['tdx, dcap-qvl quote with collateral'].value.tcbStatus, 'UpToDate');
  assert.deepEqual(inNode['tdx, dcap-qvl, PCK CRL past nextUpdate'], { ok: false, code: 'tdx.pck_crl_expired' });
  assert.equal(inNode['azure-snp, Genoa'].ok, true);
  assert.equal(inNode['event log, Arch Linux workstation'].ok, true);
  for (const [name, result] of Object.entries(inNode) as [string, { ok: boolean; code?: string }][]) {
    assert.ok(result.ok || !result.code?.startsWith('untyped'), `${name}: ${result.code}`);
  }
});
