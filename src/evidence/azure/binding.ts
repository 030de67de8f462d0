import { bytesEqual, constantTimeEqual } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { digest, HASH_SIZES } from '../../core/hash.ts';
import { toHex } from '../../core/hex.ts';
import { verifyQuote } from '../tpm/quote.ts';
import type { HclReport } from './hcl-report.ts';
import { akPublicArea, jwkThumbprint, parseRuntimeData, type RsaJwk, type RuntimeData, type VmConfiguration } from './runtime-data.ts';
import type { AzureTpmQuote } from './tpm-quote.ts';

/**
 * The two links every Azure CVM verification makes, whatever the TEE (Trustee az_snp_vtpm /
 * az_tdx_vtpm `verify_report_data` / `verify_hcl_var_data`, `verify_signature`, `verify_pcrs`):
 *
 *   1. hardware report REPORT_DATA[0..n] = H(variable data), H the runtime data's hash type:
 *      the runtime data (and so the AK in it) is what the TEE-protected paravisor wrote;
 *   2. the vTPM quote verifies with that AK and its PCR digest matches the PCR values given.
 */
export interface HclClaims {
  hclVersion: number;
  hashType: string;
  /** H(variable data), equal to the hardware report's REPORT_DATA prefix. */
  runtimeDataHash: string;
  akPublic: RsaJwk;
  /** RFC 7638 SHA-256 thumbprint of the AK JWK. */
  akThumbprint: string;
  ekPublic?: RsaJwk;
  ekThumbprint?: string;
  vmConfiguration: VmConfiguration;
  /** The HCL "user-data" (64 bytes hex), or absent. */
  userData?: string;
  /** True when user-data was checked to be the vTPM quote's nonce (zero-padded): evidence v2. */
  userDataBound: boolean;
}

export interface VtpmClaims {
  /** Quoted PCRs by bank label and index ("sha256" → 0 → hex). */
  pcrs: Record<string, Record<number, string>>;
  /** The quote's extraData: the caller's nonce / report_data. */
  extraData: string;
  clock: string;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: string;
}

export async function checkRuntimeDataBinding(hcl: HclReport, reportData: Uint8Array, what: string): Promise<Uint8Array> {
  const hash = await digest(hcl.runtimeData.hashType, hcl.variableData);
  const bound = reportData.subarray(0, HASH_SIZES[hcl.runtimeData.hashType]);
  if (!bytesEqual(hash, bound)) {
    throw new SigilError('azure.runtime_data_binding_mismatch', `the HCL runtime data does not hash to the ${what}'s report_data: it was not written by this TEE`, {
      hashType: hcl.runtimeData.hashType,
      computed: toHex(hash),
      reportData: toHex(bound),
    });
  }
  return hash;
}

export interface VtpmOptions {
  /** When given, the vTPM quote's extraData must equal it. */
  nonce?: Uint8Array;
  /** Require the HCL user-data to be the quote's extraData zero-padded to 64 bytes (evidence v2). */
  requireUserData: boolean;
}

/** Runtime data (bound already) → AK → vTPM quote signature, PCR digest, nonce, user-data. */
export async function verifyVtpm(hcl: HclReport, runtimeDataHash: Uint8Array, tpmQuote: AzureTpmQuote, options: VtpmOptions): Promise<{ hcl: HclClaims; tpm: VtpmClaims; runtime: RuntimeData }> {
  const runtime = parseRuntimeData(hcl.variableData);
  const extraData = tpmQuote.quote.attest.extraData;
  const checked = await verifyQuote(tpmQuote.quote, {
    akPublic: akPublicArea(runtime),
    nonce: options.nonce ?? extraData,
    pcrValues: tpmQuote.pcrValues,
  });
  let userDataBound = false;
  if (options.requireUserData) {
    const expected = new Uint8Array(64);
    if (extraData.length > 64) throw new SigilError('azure.user_data_mismatch', 'the quote nonce is longer than the 64-byte HCL user-data');
    expected.set(extraData);
    if (!runtime.userData || !constantTimeEqual(runtime.userData, expected)) {
      throw new SigilError('azure.user_data_mismatch', "the HCL user-data is not the vTPM quote's report_data (evidence v2 binds them)", {
        expected: toHex(expected),
        actual: runtime.userData ? toHex(runtime.userData) : null,
      });
    }
    userDataBound = true;
  }
  const hclClaims: HclClaims = {
    hclVersion: hcl.header.version,
    hashType: hcl.runtimeData.hashType,
    runtimeDataHash: toHex(runtimeDataHash),
    akPublic: runtime.akPublic,
    akThumbprint: await jwkThumbprint(runtime.akPublic),
    vmConfiguration: runtime.vmConfiguration,
    userDataBound,
  };
  if (runtime.ekPublic) {
    hclClaims.ekPublic = runtime.ekPublic;
    hclClaims.ekThumbprint = await jwkThumbprint(runtime.ekPublic);
  }
  if (runtime.userData) hclClaims.userData = toHex(runtime.userData);
  const tpm: VtpmClaims = {
    pcrs: checked.pcrs,
    extraData: toHex(extraData),
    clock: checked.clock.toString(),
    resetCount: checked.resetCount,
    restartCount: checked.restartCount,
    safe: checked.safe,
    firmwareVersion: checked.firmwareVersion.toString(16),
  };
  return { hcl: hclClaims, tpm, runtime };
}
