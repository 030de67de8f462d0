/**
 * Every SNP report among the shared fixtures, with the endorsement material and verification time
 * it is checked with (fixtures README, "snp/" and the SNP parts of "azure/").
 */
import { fromBase64, fromHex } from '../../../src/core/hex.ts';
import type { VerifySnpReportOptions } from '../../../src/evidence/snp/verify.ts';
import { fixture, fixtureText } from '../../support/fixtures.ts';

export interface SnpCase {
  name: string;
  report: () => Uint8Array;
  options: () => VerifySnpReportOptions;
}

/** The SNP report inside an Azure HCL report sits at 0x20..0x4C0 (fixtures README, azure/). */
export function snpReportFromHcl(hcl: Uint8Array): Uint8Array {
  return hcl.slice(0x20, 0x20 + 0x4a0);
}

export const SNP_CASES: SnpCase[] = [
  {
    name: 'gosevguest Milan v2 (VCEK)',
    report: () => fixture('snp/gosevguest_milan_attestation.bin'),
    // go-sev-guest verify_test.go pins 2022-09-24T01:00Z.
    options: () => ({ vcek: fixture('snp/gosevguest_milan_vcek.der'), chain: fixtureText('snp/amd_milan_vcek_ask_ark.pem'), at: new Date('2022-09-24T01:00:00Z') }),
  },
  {
    name: 'virtee/sev Milan v2 (VCEK)',
    report: () => fromHex(fixtureText('snp/virteesev_milan_report.hex').trim()),
    options: () => ({ vcek: fixture('snp/virteesev_milan_vcek.der'), at: new Date('2024-01-01T00:00:00Z') }),
  },
  {
    name: 'trustee Milan v2 with ID block (VCEK)',
    report: () => fixture('snp/trustee_milan_vcek_report.bin'),
    options: () => ({ vcek: fixture('snp/trustee_milan_vcek.der'), chain: fixtureText('snp/amd_milan_vcek_ask_ark.pem'), at: new Date('2025-06-01T00:00:00Z') }),
  },
  {
    name: 'trustee Milan v3 (VLEK)',
    report: () => fixture('snp/trustee_milan_vlek_report.bin'),
    // The VLEK is valid 2024-12-10..2025-12-10 only (README: pick a time inside).
    options: () => ({ vlek: fixture('snp/trustee_milan_vlek.der'), chain: fixtureText('snp/amd_milan_vlek_asvk_ark.pem'), at: new Date('2025-06-01T00:00:00Z') }),
  },
  {
    name: 'trustee Azure Genoa v3 (VCEK)',
    report: () => fixture('snp/trustee_azure_genoa_snp_report.bin'),
    options: () => ({ vcek: fixtureText('azure/trustee_azsnp_genoa_vcek.pem'), chain: fixtureText('snp/amd_genoa_vcek_ask_ark.pem'), at: new Date('2025-06-01T00:00:00Z') }),
  },
  {
    name: 'trustee Azure HCL Milan v2 (VCEK chain PEM)',
    report: () => snpReportFromHcl(fixture('azure/trustee_azsnp_hcl_report.bin')),
    options: () => ({ chain: fixtureText('azure/trustee_azsnp_vcek_chain.pem'), at: new Date('2024-01-01T00:00:00Z') }),
  },
  {
    name: 'trustee Azure evidence v2 Milan v3 (VCEK)',
    report: () => snpReportFromHcl(fromBase64(JSON.parse(fixtureText('azure/trustee_azsnp_evidence_v2.json')).hcl_report)),
    options: () => ({ vcek: fromBase64(JSON.parse(fixtureText('azure/trustee_azsnp_evidence_v2.json')).vcek), at: new Date('2025-06-01T00:00:00Z') }),
  },
];
