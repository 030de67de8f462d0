import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixtureTest } from '../../support/fixtures.ts';
import { fromHex, toHex } from '../../../src/core/hex.ts';
import {
  akPublicArea,
  checkRuntimeDataBinding,
  checkTdReportMatchesQuote,
  parseAzureTpmQuote,
  parseHclReport,
  parseRuntimeData,
  parseTdReportStruct,
  verifyAzureSnp,
  verifyAzureTdx,
  type AzureSnpEvidence,
} from '../../../src/evidence/azure/index.ts';
import { parseSnpReport, SNP_SIGNED_SIZE } from '../../../src/evidence/snp/report.ts';
import { importReportKey, verifyReportSignature } from '../../../src/evidence/snp/signature.ts';
import { describeEndorsement, parseCertificates } from '../../../src/evidence/snp/endorsement.ts';
import { verifyQuote } from '../../../src/evidence/tpm/quote.ts';
import { AT, AT_TDX, genoaEvidence, milanParts, outcome, snpChainPem, tdxParts, v2Evidence } from './support.ts';

/**
 * Single-bit tampering of everything the verdict rests on, per fixture:
 *   - every bit of the HCL runtime (variable) data → azure.runtime_data_binding_mismatch
 *     (fast path: the binding check on the re-parsed HCL; every 97th bit through full verify);
 *   - ≥ 2,000 bits spread over the SNP report's signed region inside the HCL → snp.* (signature
 *     check with the VCEK key as fast path; a sample through full verify);
 *   - every bit of the TDREPORT fields the TD quote repeats → azure.td_report_mismatch;
 *   - every bit of the vTPM quote message and signature → tpm.quote_signature_invalid (or the
 *     message no longer parses: azure.tpm_quote_malformed), every bit of the PCR values →
 *     tpm.quote_pcr_digest_mismatch.
 */
interface SnpCase {
  name: string;
  evidence: () => AzureSnpEvidence;
  vcek: () => Uint8Array | string;
  verify: (e: AzureSnpEvidence) => Promise<unknown>;
}

const CASES: SnpCase[] = [
  { name: 'Milan HCL + quote', evidence: () => milanParts(), vcek: snpChainPem, verify: (e) => verifyAzureSnp(e, { at: AT, chain: snpChainPem() }) },
  { name: 'evidence v2', evidence: v2Evidence, vcek: () => v2Evidence().vcek!, verify: (e) => verifyAzureSnp(e, { at: AT }) },
  { name: 'Genoa evidence', evidence: genoaEvidence, vcek: () => genoaEvidence().vcek!, verify: (e) => verifyAzureSnp(e, { at: AT }) },
];

/** Re-serialize an HCL report with one bit of its variable data flipped. */
function hclBytesOf(evidence: AzureSnpEvidence | ReturnType<typeof tdxParts>, flipBit?: number): Uint8Array {
  const { hcl } = evidence;
  const out = new Uint8Array(hcl.variableDataOffset + hcl.variableData.length);
  const view = new DataView(out.buffer);
  out.set([0x48, 0x43, 0x4c, 0x41], 0);
  view.setUint32(4, hcl.header.version, true);
  view.setUint32(8, hcl.header.reportSize, true);
  view.setUint32(12, hcl.header.requestType, true);
  out.set(hcl.hardwareReport, 0x20);
  view.setUint32(0x4c0, hcl.runtimeData.dataSize, true);
  view.setUint32(0x4c4, hcl.runtimeData.version, true);
  view.setUint32(0x4c8, hcl.runtimeData.reportTypeValue, true);
  view.setUint32(0x4cc, hcl.runtimeData.hashTypeValue, true);
  view.setUint32(0x4d0, hcl.variableData.length, true);
  out.set(hcl.variableData, hcl.variableDataOffset);
  if (flipBit !== undefined) out[hcl.variableDataOffset + (flipBit >> 3)] ^= 1 << (flipBit & 7);
  return out;
}

for (const c of CASES) {
  test(`${c.name}: every runtime-data bit breaks the binding`, fixtureTest(), async () => {
    const evidence = c.evidence();
    const reportData = evidence.snpReport.reportData;
    const bits = evidence.hcl.variableData.length * 8;
    let rejected = 0;
    for (let bit = 0; bit < bits; bit++) {
      const hcl = parseHclReport(hclBytesOf(evidence, bit));
      try {
        await checkRuntimeDataBinding(hcl, reportData, 'SNP report');
      } catch (error) {
        assert.equal((error as { code?: string }).code, 'azure.runtime_data_binding_mismatch');
        rejected++;
      }
    }
    assert.equal(rejected, bits);
    for (let bit = 0; bit < bits; bit += 97) {
      const tampered = { ...evidence, hcl: parseHclReport(hclBytesOf(evidence, bit)) };
      assert.equal(await outcome(() => c.verify(tampered)), 'azure.runtime_data_binding_mismatch', `bit ${bit}`);
    }
    assert.equal(await outcome(() => c.verify(c.evidence())), 'ok');
  });

  test(`${c.name}: ≥ 2,000 bits of the SNP report's signed region fail the report signature`, fixtureTest(), async () => {
    const evidence = c.evidence();
    const leaf = parseCertificates(c.vcek(), 'vcek').find((cert) => /SEV-VCEK/.test(cert.subject))!;
    assert.equal(describeEndorsement(leaf).kind, 'vcek');
    const key = await importReportKey(new Uint8Array(leaf.publicKey.rawData));
    const signedBits = SNP_SIGNED_SIZE * 8;
    const stride = Math.max(1, Math.floor(signedBits / 2048));
    let tested = 0;
    for (let bit = 0; bit < signedBits; bit += stride) {
      const bytes = evidence.hcl.hardwareReport.slice();
      bytes[bit >> 3] ^= 1 << (bit & 7);
      let code = 'ok';
      try {
        await verifyReportSignature(parseSnpReport(bytes), key);
      } catch (error) {
        code = (error as { code: string }).code;
      }
      assert.match(code, /^snp\./, `bit ${bit}`);
      tested++;
    }
    assert.ok(tested >= 2000, `${tested} bits`);
    for (let bit = 3; bit < signedBits; bit += 211) {
      const tampered = { ...evidence, snpReport: parseSnpReportOrNull(evidence.hcl.hardwareReport, bit) };
      if (!tampered.snpReport) continue;
      assert.match(await outcome(() => c.verify(tampered as AzureSnpEvidence)), /^snp\./, `bit ${bit}`);
    }
  });

  test(`${c.name}: every bit of the vTPM quote message, signature and PCRs is rejected`, fixtureTest(), () => tamperVtpmQuote(c.evidence()));
}

function parseSnpReportOrNull(bytes: Uint8Array, bit: number) {
  const copy = bytes.slice();
  copy[bit >> 3] ^= 1 << (bit & 7);
  try {
    return parseSnpReport(copy);
  } catch {
    return null;
  }
}

test('TDX: every bit of the quoted TDREPORT fields and of the runtime data is rejected', fixtureTest(), async () => {
  const evidence = tdxParts();
  // TDREPORT offsets of the fields the quote repeats (td-report.ts).
  const ranges: [number, number][] = [[128, 192], [264, 384], [512, 912]];
  let tested = 0;
  for (const [start, end] of ranges) {
    for (let bit = start * 8; bit < end * 8; bit++) {
      const bytes = evidence.hcl.hardwareReport.slice();
      bytes[bit >> 3] ^= 1 << (bit & 7);
      assert.throws(() => checkTdReportMatchesQuote(parseTdReportStruct(bytes), evidence.tdQuote.body), (e) => (e as { code?: string }).code === 'azure.td_report_mismatch', `bit ${bit}`);
      tested++;
    }
  }
  assert.equal(tested, (64 + 120 + 400) * 8);
  for (let bit = 0; bit < evidence.hcl.variableData.length * 8; bit++) {
    const hcl = parseHclReport(hclBytesOf(evidence, bit));
    await assert.rejects(checkRuntimeDataBinding(hcl, evidence.tdQuote.body.reportData, 'TD quote'), (e) => (e as { code?: string }).code === 'azure.runtime_data_binding_mismatch');
  }
  for (let bit = 0; bit < evidence.hcl.variableData.length * 8; bit += 131) {
    assert.equal(await outcome(() => verifyAzureTdx({ ...evidence, hcl: parseHclReport(hclBytesOf(evidence, bit)) }, { at: AT_TDX })), 'azure.runtime_data_binding_mismatch');
  }
  for (let bit = 528 * 8; bit < 576 * 8; bit += 7) {
    const tdReport = evidence.hcl.hardwareReport.slice();
    tdReport[bit >> 3] ^= 1 << (bit & 7);
    assert.equal(await outcome(() => verifyAzureTdx({ ...evidence, tdReport: parseTdReportStruct(tdReport) }, { at: AT_TDX })), 'azure.td_report_mismatch');
  }
  assert.equal(await outcome(() => verifyAzureTdx(tdxParts(), { at: AT_TDX })), 'ok');
});

/** Every bit of message, signature and PCR values, through the vTPM quote parser and verifier. */
async function tamperVtpmQuote(evidence: AzureSnpEvidence | ReturnType<typeof tdxParts>): Promise<void> {
  const runtime = parseRuntimeData(evidence.hcl.variableData);
  const akPublic = akPublicArea(runtime);
  const quoteJson = {
    message: toHex(evidence.tpmQuote.quote.attestBytes),
    signature: toHex(evidence.tpmQuote.signature),
    pcrs: [...evidence.tpmQuote.pcrValues.get(0x000b)!.values()].map(toHex),
  };
  const check = async (json: typeof quoteJson) => {
    try {
      const quote = parseAzureTpmQuote(json);
      await verifyQuote(quote.quote, { akPublic, pcrValues: quote.pcrValues });
      return 'ok';
    } catch (error) {
      return (error as { code: string }).code;
    }
  };
  assert.equal(await check(quoteJson), 'ok');
  const flip = (hex: string, bit: number) => {
    const bytes = fromHex(hex);
    bytes[bit >> 3] ^= 1 << (bit & 7);
    return toHex(bytes);
  };
  let signatureFailures = 0;
  for (let bit = 0; bit < quoteJson.message.length * 4; bit++) {
    const code = await check({ ...quoteJson, message: flip(quoteJson.message, bit) });
    assert.ok(code === 'tpm.quote_signature_invalid' || code === 'azure.tpm_quote_malformed', `message bit ${bit}: ${code}`);
    if (code === 'tpm.quote_signature_invalid') signatureFailures++;
  }
  assert.ok(signatureFailures > quoteJson.message.length * 2, `${signatureFailures} message bits reached the signature check`);
  for (let bit = 0; bit < quoteJson.signature.length * 4; bit++) {
    assert.equal(await check({ ...quoteJson, signature: flip(quoteJson.signature, bit) }), 'tpm.quote_signature_invalid', `signature bit ${bit}`);
  }
  for (let index = 0; index < quoteJson.pcrs.length; index++) {
    for (let bit = 0; bit < 256; bit++) {
      const pcrs = quoteJson.pcrs.slice();
      pcrs[index] = flip(pcrs[index], bit);
      assert.equal(await check({ ...quoteJson, pcrs }), 'tpm.quote_pcr_digest_mismatch', `PCR ${index} bit ${bit}`);
    }
  }
}

test('TDX: every bit of the vTPM quote message, signature and PCRs is rejected', fixtureTest(), () => tamperVtpmQuote(tdxParts()));
