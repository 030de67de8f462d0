/**
 * Collateral material from ../shared/fixtures arranged under the offline-bundle names
 * (src/evidence/collateral/README.md), for bundle, online (fake KDS/PCS server) and resolve tests.
 */
import { fixture, fixtureText } from '../../support/fixtures.ts';
import { parseSnpReport } from '../../../src/evidence/snp/report.ts';
import { decodeTcb } from '../../../src/evidence/snp/tcb.ts';
import { toHex } from '../../../src/core/hex.ts';

/** go-sev-guest's Milan report and VCEK (README: verify at 2022-09-24T01:00:00Z). */
export const GOSEV_AT = new Date('2022-09-24T01:00:00Z');
export const gosevReport = () => parseSnpReport(fixture('snp/gosevguest_milan_attestation.bin'));
export const gosevTcb = () => decodeTcb(gosevReport().reportedTcb, 'Milan');
export const gosevVcekName = () => `snp/Milan/vcek/${toHex(gosevReport().chipId)}-${gosevTcb().hex}.der`;

/** go-tdx-guest SPR E4 quote + 2023 collateral (README: 2023-07-01T01:00:00Z, no matching TCB level). */
export const SPR_AT = new Date('2023-07-01T01:00:00Z');
export const TCB_INFO_NEXT_UPDATE = new Date('2023-07-18T08:42:58Z');
export const QE_IDENTITY_NEXT_UPDATE = new Date('2023-07-08T07:24:59Z');
export const PCK_CRL_NEXT_UPDATE = new Date('2023-07-08T07:27:52Z');
export const ROOT_CRL_NEXT_UPDATE = new Date('2024-04-02T10:22:51Z');

export const tcbInfoText = () => fixtureText('tdx/gotdxguest_tcbinfo_fmspc_50806f000000.json');
export const qeIdentityText = () => fixtureText('tdx/gotdxguest_qe_identity.json');
export const signingChain2018 = () => fixtureText('tdx/intel_sgx_tcb_signing_chain_2018.pem');
export const milanAskArk = () => fixtureText('snp/amd_milan_vcek_ask_ark.pem');

/** Every fixture-backed bundle file, by bundle name. */
export function bundleFiles(): Record<string, Uint8Array | string> {
  return {
    'snp/Milan/cert_chain.pem': milanAskArk(),
    'snp/Milan/vlek_cert_chain.pem': fixtureText('snp/amd_milan_vlek_asvk_ark.pem'),
    'snp/Genoa/cert_chain.pem': fixtureText('snp/amd_genoa_vcek_ask_ark.pem'),
    [gosevVcekName()]: fixture('snp/gosevguest_milan_vcek.der'),
    'tdx/tcbinfo/50806f000000.json': tcbInfoText(),
    'tdx/qe_identity.json': qeIdentityText(),
    'tdx/tcb_signing_chain.pem': signingChain2018(),
    'tdx/pck_crl_platform.der': fixture('tdx/gotdxguest_pck_platform_crl.der'),
    'tdx/root_ca_crl.der': fixture('tdx/gotdxguest_root_ca_crl.der'),
  };
}

/** The same files as a single-file JSON bundle (".der" as base64). */
export function bundleJson(files = bundleFiles()): string {
  const out: Record<string, string> = {};
  for (const [name, content] of Object.entries(files)) {
    out[name] = name.endsWith('.der') ? Buffer.from(content as Uint8Array).toString('base64') : (content as string);
  }
  return JSON.stringify({ format: 'sigil-collateral-bundle', version: 1, files: out }, null, 1);
}

/** The dcap-qvl collateral (QVL JSON) rearranged as a bundle for its quote's FMSPC. */
export function dcapQvlBundleFiles(fmspc: string): Record<string, Uint8Array | string> {
  const qvl = JSON.parse(fixtureText('tdx/dcapqvl_tdx_quote_v4_collateral.json')) as Record<string, string>;
  return {
    [`tdx/tcbinfo/${fmspc}.json`]: `{"tcbInfo":${qvl.tcb_info},"signature":"${qvl.tcb_info_signature}"}`,
    [`tdx/tcbinfo/${fmspc}.issuer_chain.pem`]: qvl.tcb_info_issuer_chain,
    'tdx/qe_identity.json': `{"enclaveIdentity":${qvl.qe_identity},"signature":"${qvl.qe_identity_signature}"}`,
    'tdx/qe_identity.issuer_chain.pem': qvl.qe_identity_issuer_chain,
    // Hex text in ".der" files is accepted (PCCS-style).
    'tdx/pck_crl_processor.der': qvl.pck_crl,
    'tdx/pck_crl_platform.der': qvl.pck_crl,
    'tdx/root_ca_crl.der': qvl.root_ca_crl,
  };
}
