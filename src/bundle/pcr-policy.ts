import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { hashAlg } from '../tpm/algorithms.ts';
import { TPM_ALG, TPM_CC } from '../tpm/constants.ts';
import { PolicyCalculator } from '../tpm/policy/index.ts';
import type { PcrSelection } from '../tpm/structures/basic.ts';
import { parseJsonObject, parsePcrBanksJson } from '../device/json-input.ts';

/**
 * The PCR policy a bundle's data key is sealed under, per recipient:
 *
 *     authPolicy = PolicyPCR(selection, expected values) → PolicyCommandCode(TPM2_Unseal)
 *
 * (SHA-256 policy session). PolicyCommandCode keeps the policy from authorizing anything but
 * Unseal — in particular not TPM2_Duplicate of the imported object, whose fixedTPM/fixedParent
 * are necessarily clear.
 *
 * Only PCRs 0-15 may be selected. They are reset only by TPM2_Startup(CLEAR), i.e. a reboot, after
 * which firmware measures the boot again. PCRs 16-23 are resettable while the machine runs:
 * 16 (debug) and 23 (application) by TPM2_PCR_Reset from locality 0 — any process that can talk
 * to the TPM — and 17-22 by a dynamic launch (DRTM) from localities 2-4. A policy on any of them
 * (IBM PEF's lockbox on PCR 16) opens for whoever resets the PCR and extends it to the sealed
 * value; Sigil refuses them when sealing and when reading a bundle.
 *
 * JSON form (what bundles and `--pcrs` files carry): [{ "bank": "sha256", "values": { "7": hex, "11": hex } }],
 * banks in TPML_PCR_SELECTION order, PCR indexes as decimal strings.
 */
export type PcrValues = Map<number, Map<number, Uint8Array>>;

export interface PcrPolicy {
  /** Ascending PCRs per bank; the order PolicyPCR hashes the values in. */
  selection: PcrSelection[];
  values: PcrValues;
}

export const MAX_PCR = 15;
const POLICY_HASH = TPM_ALG.SHA256;

export function resettableReason(pcr: number): string | undefined {
  if (pcr === 16 || pcr === 23) return `PCR ${pcr} can be reset by any process with TPM access (TPM2_PCR_Reset from locality 0)`;
  if (pcr >= 17 && pcr <= 22) return `PCR ${pcr} is reset by a dynamic launch (DRTM, localities 2-4) while the machine runs`;
  return undefined;
}

/** Validate and order PCR values: banks known, PCRs 0-15 only, values of the bank's size. */
export function checkPcrPolicy(values: PcrValues, code = 'bundle.pcr_policy_invalid'): PcrPolicy {
  if (values.size === 0) throw new SigilError(code, 'a bundle PCR policy selects at least one PCR');
  if (values.size > 4) throw new SigilError(code, 'a bundle PCR policy uses at most 4 banks');
  const selection: PcrSelection[] = [];
  const ordered: PcrValues = new Map();
  for (const [bank, pcrs] of values) {
    const info = hashAlg(bank);
    const indexes = [...pcrs.keys()].sort((a, b) => a - b);
    if (indexes.length === 0) throw new SigilError(code, `bank ${info.label} selects no PCR`);
    for (const pcr of indexes) {
      if (!Number.isInteger(pcr) || pcr < 0 || pcr > 23) throw new SigilError(code, `PCR ${pcr} does not exist`, { pcr });
      const reason = resettableReason(pcr);
      if (reason) {
        throw new SigilError('bundle.pcr_resettable', `${reason}: a bundle sealed to it would open for anyone who resets and replays it. Use PCRs 0-15 only`, { pcr });
      }
      const value = pcrs.get(pcr)!;
      if (!(value instanceof Uint8Array) || value.length !== info.size) throw new SigilError(code, `PCR ${info.label}:${pcr} must be ${info.size} bytes`, { pcr });
    }
    selection.push({ hash: bank, pcrs: indexes });
    ordered.set(bank, new Map(indexes.map((pcr) => [pcr, pcrs.get(pcr)!.slice()])));
  }
  return { selection, values: ordered };
}

/** PolicyPCR(selection, values) → PolicyCommandCode(Unseal): the sealed data key's authPolicy. */
export function pcrUnsealPolicy(policy: PcrPolicy): Promise<Uint8Array> {
  const ordered = policy.selection.flatMap((bank) => bank.pcrs.map((pcr) => policy.values.get(bank.hash)!.get(pcr)!));
  return new PolicyCalculator(POLICY_HASH).policyPCR(policy.selection, ordered).policyCommandCode(TPM_CC.Unseal).digest();
}

export interface PcrPolicyJson {
  bank: string;
  values: Record<string, string>;
}

export function pcrPolicyJson(policy: PcrPolicy): PcrPolicyJson[] {
  return policy.selection.map((bank) => ({
    bank: hashAlg(bank.hash).label,
    values: Object.fromEntries(bank.pcrs.map((pcr) => [String(pcr), toHex(policy.values.get(bank.hash)!.get(pcr)!)])),
  }));
}

/** Read the JSON form; resettable PCRs are refused here too (bundle.pcr_resettable). */
export function parsePcrPolicyJson(value: unknown, code: string): PcrPolicy {
  const values: PcrValues = parsePcrBanksJson(value, code);
  return checkPcrPolicy(values, code);
}

/**
 * PCR values as `sigil tpm pcrs --json` prints them ({ "sha256": { "7": hex } }), or the bundle's
 * own list form; for `--pcrs FILE`.
 */
export function parsePcrValuesFile(input: unknown, code = 'cli.usage_pcrs'): PcrPolicy {
  let value: unknown = input;
  if (input instanceof Uint8Array || typeof input === 'string') {
    try {
      value = JSON.parse(typeof input === 'string' ? input : new TextDecoder().decode(input));
    } catch (error) {
      throw new SigilError(code, 'the PCR values file is not JSON', {}, { cause: error });
    }
  }
  if (Array.isArray(value)) return parsePcrPolicyJson(value, code);
  const doc = parseJsonObject(value, code, 'PCR values file');
  return parsePcrPolicyJson(Object.keys(doc).map((bank) => ({ bank, values: doc[bank] })), code);
}
