import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureTest } from '../../support/fixtures.ts';
import { mutate, prng } from '../../support/fuzz.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { decodeIssuerChainHeader, jsonBundleSource, OfflineBundle, signedJsonNextUpdate, toDer, crlNextUpdate } from '../../../src/evidence/collateral/index.ts';
import { bundleFiles, bundleJson, gosevReport, gosevTcb, qeIdentityText, tcbInfoText } from './support.ts';

/**
 * Mutation fuzzing of the bundle loader's JSON parsing (the single-file bundle, then every getter
 * over whatever survived) and of the collateral formats it reads: 0 crashes, only SigilErrors
 * with a `collateral.` code.
 */
function typed(error: unknown, where: string): string {
  if (!(error instanceof SigilError) || !error.code.startsWith('collateral.')) assert.fail(`${where}: untyped error ${error instanceof SigilError ? error.code : String(error)}`);
  return error.code;
}

test('single-file bundle JSON: 12,000 mutated bundles, loader and every getter', fixtureTest(), async () => {
  // A small bundle keeps each iteration cheap: the TDX JSON files, the chain and one CRL.
  const files = bundleFiles();
  const small = {
    'tdx/tcbinfo/50806f000000.json': files['tdx/tcbinfo/50806f000000.json'],
    'tdx/qe_identity.json': files['tdx/qe_identity.json'],
    'tdx/tcb_signing_chain.pem': files['tdx/tcb_signing_chain.pem'],
    'tdx/root_ca_crl.der': files['tdx/root_ca_crl.der'],
    'snp/Milan/cert_chain.pem': files['snp/Milan/cert_chain.pem'],
  };
  const seed = new TextEncoder().encode(bundleJson(small));
  const random = prng(0xb0d1);
  const counts = new Map<string, number>();
  const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  const report = gosevReport();
  for (let i = 0; i < 12_000; i++) {
    const text = new TextDecoder().decode(mutate(seed, random));
    let bundle: OfflineBundle;
    try {
      bundle = new OfflineBundle(jsonBundleSource(text));
      count('loaded');
    } catch (error) {
      count(typed(error, `bundle #${i}`));
      continue;
    }
    for (const get of [
      () => bundle.getTdxTcbInfo('50806f000000'),
      () => bundle.getTdxQeIdentity(),
      () => bundle.getIntelRootCrl(),
      () => bundle.getSnpChain('Milan'),
      () => bundle.getSnpVcek('Milan', report.chipId, gosevTcb()),
    ]) {
      try {
        await get();
        count('got');
      } catch (error) {
        count(typed(error, `bundle #${i} getter`));
      }
    }
  }
  assert.ok((counts.get('collateral.bundle_malformed') ?? 0) > 1000, JSON.stringify([...counts]));
  assert.ok((counts.get('loaded') ?? 0) > 1000);
  assert.ok((counts.get('got') ?? 0) > 1000);
});

test('collateral formats: 40,000 mutated TCB info / QE identity JSON, CRLs and issuer-chain headers', fixtureTest(), () => {
  const random = prng(0xf0a7);
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const jsonSeeds = [encoder.encode(tcbInfoText()), encoder.encode(qeIdentityText())];
  const crlSeed = fixture('tdx/gotdxguest_root_ca_crl.der');
  const chainSeed = encoder.encode(encodeURIComponent(bundleFiles()['tdx/tcb_signing_chain.pem'] as string));
  let ok = 0;
  for (let i = 0; i < 40_000; i++) {
    try {
      switch (i % 4) {
        case 0:
        case 1:
          signedJsonNextUpdate(decoder.decode(mutate(jsonSeeds[i % 2], random)), i % 2 === 0 ? 'tcbInfo' : 'enclaveIdentity', 'fuzz', 'collateral.bundle_malformed');
          break;
        case 2:
          crlNextUpdate(toDer(mutate(crlSeed, random), 'fuzz', 'collateral.bundle_malformed'), 'fuzz', 'collateral.bundle_malformed');
          break;
        case 3:
          decodeIssuerChainHeader(decoder.decode(mutate(chainSeed, random)), 'fuzz');
          break;
      }
      ok++;
    } catch (error) {
      typed(error, `format #${i}`);
    }
  }
  assert.ok(ok > 100);
});
