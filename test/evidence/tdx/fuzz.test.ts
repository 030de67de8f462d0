import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureText, fixtureTest } from '../../support/fixtures.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { fromBase64, toBase64 } from '../../../src/core/hex.ts';
import {
  collateralFromQvlJson,
  parseCcel,
  parseCcelAcpiTable,
  parsePckExtensions,
  parseQeIdentity,
  parseTcbInfo,
  parseTdxQuote,
  signedJsonFromPcsResponse,
} from '../../../src/evidence/tdx/index.ts';
import { parsePemCertificates } from '../../../src/evidence/tdx/chain.ts';
import { parseCrl } from '../../../src/evidence/tdx/crl.ts';
import { parseSgxExtension, SGX_EXTENSION_OID } from '../../../src/evidence/tdx/pck-extensions.ts';
import { mutate, prng } from '../../support/fuzz.ts';
import { QUOTES } from './support.ts';

/**
 * Mutation fuzzing of every TDX parser (quotes, CCEL, ACPI table, TCB info, QE identity, PCS
 * responses, collateral JSON, PEM chains + SGX extension, CRLs): over 100,000 inputs, seeded so a
 * failure reproduces. Each input either parses or throws a SigilError whose code starts "tdx.".
 */
let total = 0;

function fuzz(name: string, seed: number, count: number, sample: Uint8Array, parse: (input: Uint8Array) => unknown): void {
  const random = prng(seed);
  for (let i = 0; i < count; i++) {
    const input = mutate(sample, random);
    try {
      parse(input);
    } catch (error) {
      if (!(error instanceof SigilError) || !error.code.startsWith('tdx.')) {
        assert.fail(`${name} #${i} (seed ${seed}) threw ${error instanceof SigilError ? error.code : error}`);
      }
    }
  }
  total += count;
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytesOf = (value: string) => new TextEncoder().encode(value);

test('fuzz: quote parser, 60,000 mutations of the six quotes', fixtureTest(), () => {
  let seed = 1;
  for (const file of Object.values(QUOTES)) fuzz(file, seed++, 10_000, fixture(file), parseTdxQuote);
});

test('fuzz: CCEL and its ACPI table, 20,000 mutations', fixtureTest(), () => {
  const log = fixture('tdx/gotdxguest_cos113_ccel_data.bin');
  // The used part of the log plus some of its 0xFF fill, so mutations land in events.
  const used = log.subarray(0, 18_101 + 64);
  fuzz('ccel', 101, 15_000, used, parseCcel);
  fuzz('ccel acpi table', 102, 5_000, fixture('tdx/gotdxguest_cos113_ccel_acpi_table.bin'), parseCcelAcpiTable);
});

test('fuzz: collateral JSON, 20,000 mutations', fixtureTest(), () => {
  const tcbResponse = bytesOf(fixtureText('tdx/gotdxguest_tcbinfo_fmspc_90c06f000000.json'));
  const qeResponse = bytesOf(fixtureText('tdx/gotdxguest_qe_identity.json'));
  const qvl = fixtureText('tdx/dcapqvl_tdx_quote_v4_collateral.json');
  fuzz('tcb info response', 201, 5_000, tcbResponse, (input) => parseTcbInfo(signedJsonFromPcsResponse(text(input), 'tcbInfo').body));
  fuzz('qe identity response', 202, 5_000, qeResponse, (input) => parseQeIdentity(signedJsonFromPcsResponse(text(input), 'enclaveIdentity').body));
  fuzz('tcb info body', 203, 4_000, bytesOf(JSON.parse(qvl).tcb_info), (input) => parseTcbInfo(text(input)));
  fuzz('qvl collateral', 204, 3_000, bytesOf(qvl), (input) => collateralFromQvlJson(text(input)));
  fuzz('qe identity body', 205, 3_000, bytesOf(JSON.parse(qvl).qe_identity), (input) => parseQeIdentity(text(input)));
});

test('fuzz: PCK certificate, SGX extension and CRLs, 13,000 mutations', fixtureTest(), () => {
  const quote = parseTdxQuote(fixture(QUOTES.dcapqvl));
  const extension = parsePemCertificates(quote.pckCertChainPem, 'pck_chain')[0].getExtension(SGX_EXTENSION_OID)!;
  fuzz('sgx extension', 300, 10_000, new Uint8Array(extension.value), parseSgxExtension);
  const leaf = fromBase64(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END/.exec(quote.pckCertChainPem)![1]);
  fuzz('pck leaf', 301, 2_000, leaf, (input) => {
    const pem = `-----BEGIN CERTIFICATE-----\n${toBase64(input)}\n-----END CERTIFICATE-----\n`;
    parsePckExtensions(parsePemCertificates(pem, 'pck_chain')[0]);
  });
  fuzz('root ca crl', 302, 600, fixture('tdx/gotdxguest_root_ca_crl.der'), (input) => parseCrl(input, 'root_ca_crl'));
  fuzz('pck crl', 303, 400, fixture('tdx/gotdxguest_pck_platform_crl.der'), (input) => parseCrl(input, 'pck_crl'));
});

test('fuzz total is at least 100,000', fixtureTest(), () => {
  assert.ok(total >= 100_000, `${total} inputs`);
});
