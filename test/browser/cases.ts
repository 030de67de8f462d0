/**
 * Verification cases run twice — in Node and in headless Chromium — whose results must be equal.
 * Isomorphic only: the input carries the fixture bytes (base64), results are plain JSON.
 * Each evidence kind adds its cases here.
 */
import { SigilError } from '../../src/core/errors.ts';
import { fromBase64, fromHex, toHex } from '../../src/core/hex.ts';
import { parseQuote, verifyQuote } from '../../src/evidence/tpm/quote.ts';
import { TPM_ALG } from '../../src/tpm/constants.ts';
import { unmarshal } from '../../src/tpm/marshal/codec.ts';
import { TPMT_PUBLIC } from '../../src/tpm/structures/public.ts';

export type CaseInput = Record<string, string>;
type Outcome = { ok: true; value: unknown } | { ok: false; code: string };

async function outcome(work: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, code: error instanceof SigilError ? error.code : `untyped: ${String(error)}` };
  }
}

async function gceQuote(input: CaseInput, nonceHex: string): Promise<unknown> {
  const pcrsJson: unknown = JSON.parse(new TextDecoder().decode(fromBase64(input['tpm/gotpmtools_gce_cos85_quotes_and_pcrs.json'])));
  const quote = parseQuote(fromBase64(input['tpm/gotpmtools_gce_cos85_quote_sha256.tpms_attest.bin']), fromBase64(input['tpm/gotpmtools_gce_cos85_quote_sha256.tpmt_signature.bin']));
  const akPublic = unmarshal(TPMT_PUBLIC, fromBase64(input['tpm/gotpmtools_gce_cos85_ak_pub.tpmt_public.bin']));
  const sha256 = findBank(pcrsJson, 'sha256');
  const values = new Map([[TPM_ALG.SHA256, new Map(Object.entries(sha256).map(([i, v]) => [Number(i), fromHex(v)]))]]);
  const verifiedQuote = await verifyQuote(quote, { akPublic, nonce: fromHex(nonceHex), pcrValues: values });
  return { pcr0: verifiedQuote.pcrs.sha256[0], pcr7: verifiedQuote.pcrs.sha256[7], firmwareVersion: verifiedQuote.firmwareVersion.toString(16), signer: toHex(verifiedQuote.qualifiedSigner) };
}

/** `quotes.<bank>.pcrs` holds PCR 0-23 as hex, per the fixtures README. */
function findBank(json: unknown, bank: string): Record<string, string> {
  const found = (json as { quotes?: Record<string, { pcrs?: Record<string, string> }> }).quotes?.[bank]?.pcrs;
  if (!found) throw new SigilError('test.fixture_shape', `no ${bank} PCRs in the fixture JSON`);
  return found;
}

export const FIXTURE_FILES = [
  'tpm/gotpmtools_gce_cos85_quote_sha256.tpms_attest.bin',
  'tpm/gotpmtools_gce_cos85_quote_sha256.tpmt_signature.bin',
  'tpm/gotpmtools_gce_cos85_ak_pub.tpmt_public.bin',
  'tpm/gotpmtools_gce_cos85_quotes_and_pcrs.json',
];

export async function run(input: CaseInput): Promise<Record<string, Outcome>> {
  return {
    'tpm quote, GCE COS 85, nonce 9009': await outcome(() => gceQuote(input, '9009')),
    'tpm quote, GCE COS 85, wrong nonce': await outcome(() => gceQuote(input, '9010')),
  };
}
