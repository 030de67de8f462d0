/**
 * Verification cases run twice — in Node and in headless Chromium — whose results must be equal.
 * Isomorphic only: the input carries the fixture bytes (base64), results are plain JSON.
 * Each evidence kind adds its cases here.
 */
import { SigilError } from '../../src/core/errors.ts';
import { fromBase64, fromHex, toHex } from '../../src/core/hex.ts';
import { parseQuote, verifyQuote } from '../../src/evidence/tpm/quote.ts';
import { verifySnpReport } from '../../src/evidence/snp/index.ts';
import { collateralFromQvlJson, parseTdxQuote, verifyTdxQuote } from '../../src/evidence/tdx/index.ts';
import { parseAzureSnpEvidence, verifyAzureSnp } from '../../src/evidence/azure/index.ts';
import { banksToJson, parseTcgEventLog, replayTcgLog } from '../../src/eventlog/index.ts';
import { utf8 } from '../../src/core/bytes.ts';
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

const bytes = (input: CaseInput, name: string) => fromBase64(input[name]);

async function snp(input: CaseInput, at: string): Promise<unknown> {
  const v = await verifySnpReport(bytes(input, 'snp/gosevguest_milan_attestation.bin'), { vcek: bytes(input, 'snp/gosevguest_milan_vcek.der'), at: new Date(at) });
  const c = v.claims as { product: string; measurement: string; reportData: string };
  return { product: c.product, measurement: c.measurement, reportData: c.reportData };
}

async function tdx(input: CaseInput, atSeconds: number): Promise<unknown> {
  const collateral = collateralFromQvlJson(utf8.decode(bytes(input, 'tdx/dcapqvl_tdx_quote_v4_collateral.json')));
  const v = await verifyTdxQuote(parseTdxQuote(bytes(input, 'tdx/dcapqvl_tdx_quote_v4.dat')), { at: new Date(atSeconds * 1000), collateral });
  const c = v.claims as { mrTd: string; tcb?: { status: string } };
  return { mrTd: c.mrTd, tcbStatus: c.tcb?.status };
}

async function azure(input: CaseInput): Promise<unknown> {
  const evidence = parseAzureSnpEvidence(JSON.parse(utf8.decode(bytes(input, 'azure/trustee_azsnp_genoa_evidence.json'))));
  const v = await verifyAzureSnp(evidence, { at: new Date('2025-06-01T00:00:00Z') });
  const c = v.claims as { snp: { measurement: string }; tpm: { pcrs: Record<string, Record<string, string>> } };
  return { measurement: c.snp.measurement };
}

async function eventLog(input: CaseInput): Promise<unknown> {
  const replay = await replayTcgLog(parseTcgEventLog(bytes(input, 'tpm/goeventlog_arch_linux_workstation.bin')));
  return banksToJson(replay.banks);
}

export const FIXTURE_FILES = [
  'snp/gosevguest_milan_attestation.bin',
  'snp/gosevguest_milan_vcek.der',
  'tdx/dcapqvl_tdx_quote_v4.dat',
  'tdx/dcapqvl_tdx_quote_v4_collateral.json',
  'azure/trustee_azsnp_genoa_evidence.json',
  'tpm/goeventlog_arch_linux_workstation.bin',
  'tpm/gotpmtools_gce_cos85_quote_sha256.tpms_attest.bin',
  'tpm/gotpmtools_gce_cos85_quote_sha256.tpmt_signature.bin',
  'tpm/gotpmtools_gce_cos85_ak_pub.tpmt_public.bin',
  'tpm/gotpmtools_gce_cos85_quotes_and_pcrs.json',
];

export async function run(input: CaseInput): Promise<Record<string, Outcome>> {
  return {
    'tpm quote, GCE COS 85, nonce 9009': await outcome(() => gceQuote(input, '9009')),
    'tpm quote, GCE COS 85, wrong nonce': await outcome(() => gceQuote(input, '9010')),
    'snp, Milan VCEK': await outcome(() => snp(input, '2022-09-24T01:00:00Z')),
    'snp, Milan VCEK, after the VCEK expired': await outcome(() => snp(input, '2060-01-01T00:00:00Z')),
    'tdx, dcap-qvl quote with collateral': await outcome(() => tdx(input, 1752919234)),
    'tdx, dcap-qvl, PCK CRL past nextUpdate': await outcome(() => tdx(input, 1752919236)),
    'azure-snp, Genoa': await outcome(() => azure(input)),
    'event log, Arch Linux workstation': await outcome(() => eventLog(input)),
  };
}
