/**
 * The Azure fixtures (../shared/fixtures/azure) as evidence, with the verification times used
 * here. Trustee's tests pin no time; each time below lies inside every certificate's validity.
 */
import assert from 'node:assert/strict';
import { fixture, fixtureText } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { azureSnpEvidenceFromParts, azureTdxEvidenceFromParts, parseAzureSnpEvidence, type AzureSnpEvidence, type AzureTdxEvidence } from '../../../src/evidence/azure/index.ts';

/** Milan VCEK 2023-05-02..2030-05-02; Genoa VCEK 2025-01-24..2032-01-24; TDX PCK leaf ..2030-09-13. */
export const AT = new Date('2025-06-01T00:00:00Z');
export const AT_TDX = new Date('2024-06-01T00:00:00Z');

/** "challenge", the nonce of both stand-alone vTPM quotes. */
export const CHALLENGE = '6368616c6c656e6765';

export const snpHclBytes = () => fixture('azure/trustee_azsnp_hcl_report.bin');
export const snpQuoteText = () => fixtureText('azure/trustee_azsnp_tpm_quote.json');
export const snpChainPem = () => fixtureText('azure/trustee_azsnp_vcek_chain.pem');
export const tdxHclBytes = () => fixture('azure/trustee_aztdx_hcl_report.bin');
export const tdxQuoteBytes = () => fixture('azure/trustee_aztdx_td_quote.bin');
export const tdxTpmQuoteText = () => fixtureText('azure/trustee_aztdx_tpm_quote.json');

/** The Milan HCL report + its vTPM quote, verified with the VCEK chain file. */
export function milanParts(hclReport = snpHclBytes(), tpmQuote: unknown = snpQuoteText()): AzureSnpEvidence {
  return azureSnpEvidenceFromParts({ hclReport, tpmQuote });
}

export const v2Evidence = () => parseAzureSnpEvidence(fixtureText('azure/trustee_azsnp_evidence_v2.json'));
export const genoaEvidence = () => parseAzureSnpEvidence(fixture('azure/trustee_azsnp_genoa_evidence.json'));

export function tdxParts(hclReport = tdxHclBytes(), tdQuote = tdxQuoteBytes(), tpmQuote: unknown = tdxTpmQuoteText()): AzureTdxEvidence {
  return azureTdxEvidenceFromParts({ hclReport, tdQuote, tpmQuote });
}

export async function rejects(promise: Promise<unknown> | (() => unknown), code: string | RegExp): Promise<SigilError> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    assert.ok(error instanceof SigilError, `expected a SigilError, got ${error}`);
    if (typeof code === 'string') assert.equal(error.code, code, error.message);
    else assert.match(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected rejection with ${code}`);
}

/** The code a call fails with, or 'ok'. */
export async function outcome(run: () => unknown): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (error) {
    if (error instanceof SigilError) return error.code;
    throw error;
  }
}
