import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { mutate, prng } from '../../support/fuzz.ts';
import { SigilError } from '../../../src/core/errors.ts';
import {
  parseAzureSnpEvidence,
  parseAzureTdxEvidence,
  parseAzureTpmQuote,
  parseHclReport,
  parseRuntimeData,
  parseTdReportStruct,
} from '../../../src/evidence/azure/index.ts';

/**
 * Mutation fuzzing of every Azure parser: the HCL report (≥ 100,000 inputs), the runtime-data
 * JSON, the TDREPORT, the vTPM quote JSON and the evidence JSON. 0 crashes: every rejection is a
 * SigilError with an `azure.` code.
 */
function expectTyped(run: () => unknown, counts: Map<string, number>, seed: string): void {
  try {
    run();
    counts.set('ok', (counts.get('ok') ?? 0) + 1);
  } catch (error) {
    if (!(error instanceof SigilError) || !error.code.startsWith('azure.')) {
      assert.fail(`${seed}: untyped error ${error instanceof SigilError ? error.code : String(error)}`);
    }
    counts.set(error.code, (counts.get(error.code) ?? 0) + 1);
  }
}

test('HCL report parser: 110,000 mutated SNP and TDX HCL reports, typed errors only', fixtureTest(), () => {
  const seeds = [fixture('azure/trustee_azsnp_hcl_report.bin'), fixture('azure/trustee_aztdx_hcl_report.bin')];
  const random = prng(0x4c43);
  const counts = new Map<string, number>();
  for (let i = 0; i < 110_000; i++) {
    const input = mutate(seeds[i % 2], random);
    // Most mutations hit the 1184-byte hardware slot, which parses; aim a third at the framing.
    if (i % 3 === 0 && input.length > 0x4d4) for (let k = 0; k < 2; k++) input[0x4c0 + Math.floor(random() * 20)] ^= 1 << Math.floor(random() * 8);
    expectTyped(() => parseHclReport(input), counts, `hcl #${i}`);
  }
  assert.ok((counts.get('ok') ?? 0) > 1000, 'many mutations still parse (the hardware report is opaque here)');
  assert.ok((counts.get('azure.hcl_malformed') ?? 0) > 1000);
  assert.ok((counts.get('azure.hcl_truncated') ?? 0) > 100);
});

test('runtime data (variable data JSON): 30,000 mutations, typed errors only', fixtureTest(), () => {
  const seeds = [fixture('azure/trustee_azsnp_hcl_report.bin'), fixture('azure/trustee_aztdx_hcl_report.bin')].map((b) => parseHclReport(b).variableData);
  const random = prng(0x7661);
  const counts = new Map<string, number>();
  for (let i = 0; i < 30_000; i++) expectTyped(() => parseRuntimeData(mutate(seeds[i % 2], random)), counts, `runtime #${i}`);
  assert.ok((counts.get('azure.runtime_data_malformed') ?? 0) > 1000);
});

test('TDREPORT: 20,000 mutations, typed errors only', fixtureTest(), () => {
  const seed = parseHclReport(fixture('azure/trustee_aztdx_hcl_report.bin')).hardwareReport;
  const random = prng(0x7464);
  const counts = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) expectTyped(() => parseTdReportStruct(mutate(seed, random)), counts, `tdreport #${i}`);
  assert.ok((counts.get('azure.td_report_malformed') ?? 0) > 1000);
});

test('vTPM quote JSON and evidence JSON: 20,000 mutations each, typed errors only', fixtureTest(), () => {
  const encoder = new TextEncoder();
  const quoteSeed = encoder.encode(fixtureText('azure/trustee_azsnp_tpm_quote.json'));
  const random = prng(0x7170);
  const counts = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const bytes = mutate(quoteSeed, random);
    expectTyped(() => {
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        return;
      }
      return parseAzureTpmQuote(json);
    }, counts, `quote #${i}`);
  }
  const snpSeeds = [encoder.encode(fixtureText('azure/trustee_azsnp_evidence_v2.json')), fixture('azure/trustee_azsnp_genoa_evidence.json')];
  for (let i = 0; i < 14_000; i++) expectTyped(() => parseAzureSnpEvidence(mutate(snpSeeds[i % 2], random)), counts, `snp evidence #${i}`);
  // Structural mutations of an assembled TDX evidence object.
  const tdxBody = {
    version: 1,
    tpm_quote: JSON.parse(fixtureText('azure/trustee_aztdx_tpm_quote.json')),
    hcl_report: Buffer.from(fixture('azure/trustee_aztdx_hcl_report.bin')).toString('base64url'),
    td_quote: Buffer.from(fixture('azure/trustee_aztdx_td_quote.bin')).toString('base64url'),
  };
  const tdxSeed = encoder.encode(JSON.stringify(tdxBody));
  for (let i = 0; i < 6_000; i++) expectTyped(() => parseAzureTdxEvidence(mutate(tdxSeed, random)), counts, `tdx evidence #${i}`);
  assert.ok((counts.get('azure.evidence_malformed') ?? 0) > 1000);
  assert.ok((counts.get('ok') ?? 0) > 100);
});
