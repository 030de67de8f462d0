/**
 * Shared fixture loading for the TDX tests: quotes, collateral bundles and the verification
 * times the fixtures README pins.
 */
import { fixture, fixtureText } from '../../support/fixtures.ts';
import { collateralFromQvlJson, signedJsonFromPcsResponse, type TdxCollateral } from '../../../src/evidence/tdx/index.ts';

export const QUOTES = {
  sprE4: 'tdx/gotdxguest_quote_v4_spr_e4.dat',
  v5: 'tdx/gotdxguest_quote_v5.dat',
  cos113: 'tdx/gotdxguest_cos113_quote.dat',
  dcapqvl: 'tdx/dcapqvl_tdx_quote_v4.dat',
  trusteeV4: 'tdx/trustee_tdx_quote_v4_debug.dat',
  trusteeV5: 'tdx/trustee_tdx_quote_v5.dat',
} as const;

/** Times from the README; for fixtures without an upstream time, one inside every certificate's validity. */
export const AT = {
  sprE4: new Date('2023-07-01T01:00:00Z'),
  v5: new Date('2026-02-03T01:00:00Z'),
  dcapqvl: new Date(1752919234 * 1000),
  // No upstream time: the PCK leaf is valid 2024-07-02..2031-07-02.
  cos113: new Date('2025-01-01T00:00:00Z'),
  // No upstream time: PCK leaf valid 2023-02-07..2030-02-07.
  trusteeV4: new Date('2024-01-01T00:00:00Z'),
  // No upstream time: PCK leaf valid 2024-03-18..2031-03-18.
  trusteeV5: new Date('2025-01-01T00:00:00Z'),
} as const;

/** The 2023 go-tdx-guest collateral (FMSPC 50806f000000) with the 2018 TCB signing chain. */
export function collateral2023(): TdxCollateral {
  return {
    tcbInfo: signedJsonFromPcsResponse(fixtureText('tdx/gotdxguest_tcbinfo_fmspc_50806f000000.json'), 'tcbInfo'),
    qeIdentity: signedJsonFromPcsResponse(fixtureText('tdx/gotdxguest_qe_identity.json'), 'enclaveIdentity'),
    tcbInfoIssuerChain: fixtureText('tdx/intel_sgx_tcb_signing_chain_2018.pem'),
    pckCrl: fixture('tdx/gotdxguest_pck_platform_crl.der'),
    rootCaCrl: fixture('tdx/gotdxguest_root_ca_crl.der'),
  };
}

/** The 2026 TCB info for FMSPC 90c06f000000 with the re-issued (2025) TCB signing chain. */
export function collateralV5(): TdxCollateral {
  return {
    tcbInfo: signedJsonFromPcsResponse(fixtureText('tdx/gotdxguest_tcbinfo_fmspc_90c06f000000.json'), 'tcbInfo'),
    tcbInfoIssuerChain: fixtureText('tdx/intel_sgx_tcb_signing_chain_2025.pem'),
  };
}

export function collateralDcapQvl(): TdxCollateral {
  return collateralFromQvlJson(fixtureText('tdx/dcapqvl_tdx_quote_v4_collateral.json'));
}

export const zero = (bytes: number) => '00'.repeat(bytes);
