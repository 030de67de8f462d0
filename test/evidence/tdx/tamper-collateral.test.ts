import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, fixtureTest } from '../../support/fixtures.ts';
import { utf8 } from '../../../src/core/bytes.ts';
import { SigilError } from '../../../src/core/errors.ts';
import { parseTdxQuote, verifyQeIdentity, verifyTcbInfo, verifyTdxQuote, type TdxCollateral } from '../../../src/evidence/tdx/index.ts';
import { intelSgxRootCa } from '../../../src/evidence/tdx/roots.ts';
import { AT, collateral2023, collateralDcapQvl, collateralV5, QUOTES } from './support.ts';

/**
 * Single-bit tampering of the signed collateral: the TCB info and QE identity JSON (every 4th bit
 * of the signed text, every bit of the signature) and both 2023 CRLs (the Root CA CRL every bit,
 * the 2.6 KB PCK CRL every 16th).
 */
async function code(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'accepted';
  } catch (error) {
    return error instanceof SigilError ? error.code : `non-SigilError: ${error}`;
  }
}

const JSON_CODES = ['tdx.tcb_info_signature_invalid', 'tdx.qe_identity_signature_invalid', 'tdx.tcb_info_malformed', 'tdx.qe_identity_malformed', 'tdx.tcb_info_unsupported', 'tdx.qe_identity_unsupported', 'tdx.tcb_status_unrecognized', 'tdx.tcb_info_expired', 'tdx.qe_identity_expired', 'tdx.tcb_info_not_yet_valid', 'tdx.qe_identity_not_yet_valid'];

const COLLATERAL: [string, () => TdxCollateral, Date][] = [
  ['2023 go-tdx-guest', collateral2023, AT.sprE4],
  ['2026 go-tdx-guest v5', collateralV5, AT.v5],
  ['2025 dcap-qvl', collateralDcapQvl, AT.dcapqvl],
];

for (const [label, load, at] of COLLATERAL) {
  test(`tamper ${label} collateral: bits of the signed TCB info and QE identity JSON`, fixtureTest(), async () => {
    const roots = [await intelSgxRootCa()];
    const collateral = load();
    let flips = 0;
    for (const part of ['tcbInfo', 'qeIdentity'] as const) {
      const signed = collateral[part];
      if (!signed) continue;
      const body = utf8.encode(signed.body);
      const check = part === 'tcbInfo' ? verifyTcbInfo : verifyQeIdentity;
      assert.equal(await code(() => check(collateral, { at, roots })), 'accepted');
      for (let bit = 0; bit < body.length * 8; bit += 4) {
        const tampered = body.slice();
        tampered[bit >> 3] ^= 1 << (bit & 7);
        const result = await code(() => check({ ...collateral, [part]: { ...signed, body: new TextDecoder().decode(tampered) } }, { at, roots }));
        assert.ok(JSON_CODES.includes(result), `${part} bit ${bit} gave ${result}`);
        flips++;
      }
      for (let bit = 0; bit < 512; bit++) {
        const signature = signed.signature.slice();
        signature[bit >> 3] ^= 1 << (bit & 7);
        const result = await code(() => check({ ...collateral, [part]: { ...signed, signature } }, { at, roots }));
        assert.equal(result, part === 'tcbInfo' ? 'tdx.tcb_info_signature_invalid' : 'tdx.qe_identity_signature_invalid');
        flips++;
      }
    }
    assert.ok(flips >= 2000, `${flips} flips`);
  });
}

test('tamper the 2023 CRLs: every bit of the Root CA CRL, every 16th of the PCK CRL', fixtureTest(), async () => {
  const quote = parseTdxQuote(fixture(QUOTES.sprE4));
  const { pckCrl, rootCaCrl } = collateral2023();
  let flips = 0;
  for (const [part, bytes, step] of [['rootCaCrl', rootCaCrl as Uint8Array, 1], ['pckCrl', pckCrl as Uint8Array, 16]] as const) {
    const prefix = part === 'rootCaCrl' ? 'tdx.root_ca_crl' : 'tdx.pck_crl';
    for (let bit = 0; bit < bytes.length * 8; bit += step) {
      const tampered = bytes.slice();
      tampered[bit >> 3] ^= 1 << (bit & 7);
      const result = await code(() => verifyTdxQuote(quote, { at: AT.sprE4, collateral: { [part]: tampered } }));
      assert.ok([`${prefix}_malformed`, `${prefix}_signature_invalid`, `${prefix}_issuer_mismatch`, `${prefix}_expired`].includes(result), `${part} bit ${bit} gave ${result}`);
      flips++;
    }
  }
  assert.ok(flips >= 2000, `${flips} flips`);
});
