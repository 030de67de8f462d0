import { sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { concatBytes, constantTimeEqual } from '../core/bytes.ts';
import { digest } from '../core/hash.ts';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { hashAlg } from '../tpm/algorithms.ts';
import { TPM_ALG, TPM_CC, TPM_EO } from '../tpm/constants.ts';
import { PolicyCalculator, approvedPolicyMessage } from '../tpm/policy/index.ts';
import type { PcrSelection } from '../tpm/structures/basic.ts';
import type { TpmSignature } from '../tpm/structures/signature.ts';
import { checkProductId } from './identifiers.ts';
import { field, hexField, integerField, parseJsonObject, parsePcrBanksJson, type Json } from './json-input.ts';
import { checkRelease, releaseFloorName, releaseOperand } from './release-floor.ts';
import { policySigningTpmPublic, assertProductBinding, type VendorTrust } from './trust.ts';
import { objectName } from '../tpm/names.ts';

/**
 * Signed boot policies (the MachineOS scheme, done with a floor instead of an on/off index).
 *
 * Device secrets are sealed once, under
 *     authPolicy = PolicyAuthorize(keySign = vendor policy-signing key, policyRef = ref(product))
 * and every release the vendor signs, offline, an *approved policy*
 *     approvedPolicy = PolicyPCR(selection, expected values)
 *                    → PolicyNV(release floor 0x01500101, release (u64 BE), offset 0, UNSIGNED_LE)
 *                    → PolicyCommandCode(TPM2_Unseal)
 * with signature = ECDSA-P256-SHA256(approvedPolicy ‖ policyRef) — exactly the aHash
 * TPM2_VerifySignature checks, so one signature serves both the software check and the TPM.
 * A new kernel needs only a new signed policy. Raising the floor above N makes PolicyNV fail for
 * every policy of release < N: older policies are revoked without touching them.
 *
 * ref(product) = SHA-256("sigil boot policy v1" ‖ 0x00 ‖ productId): a policy signed for another
 * product satisfies another PolicyAuthorize and opens nothing here.
 *
 * The selection must contain the lock-out PCR at its value before Sigil extends it (normally
 * zero): after `boot unseal` extends it, PolicyPCR fails for the rest of the boot. The lock-out PCR
 * must be one of 0-15 (not resettable without a reboot; 16 and 23 are resettable from software);
 * 16 and 23 may not appear in the selection at all, since anyone can reset them to a signed value.
 *
 * File format (JSON, "sigil.boot-policy.v1"):
 *   { "format": "sigil.boot-policy.v1", "productId": "acme-gw", "release": 3, "lockoutPcr": 15,
 *     "pcrs": [ { "bank": "sha256", "values": { "7": hex, "11": hex, "15": "00…" } } ],
 *     "approvedPolicy": hex, "policyRef": hex, "signer": hex (the key's TPM name),
 *     "signature": { "r": hex, "s": hex } }
 * Every field that matters is bound by the signature: PCRs and release through approvedPolicy
 * (recomputed by the reader), the product through policyRef, the lock-out PCR through the selection.
 */
export const BOOT_POLICY_FORMAT = 'sigil.boot-policy.v1';
const POLICY_HASH = TPM_ALG.SHA256;
const RESETTABLE_PCRS = new Set([16, 23]);
export const DEFAULT_LOCKOUT_PCR = 15;

export interface BootPolicy {
  productId: string;
  release: number;
  lockoutPcr: number;
  /** Ascending PCRs per bank; values in the same order. */
  selection: PcrSelection[];
  values: Map<number, Map<number, Uint8Array>>;
  approvedPolicy: Uint8Array;
  policyRef: Uint8Array;
  signer: Uint8Array;
  signature: { r: Uint8Array; s: Uint8Array };
}

export interface BootPolicyDocument {
  format: typeof BOOT_POLICY_FORMAT;
  productId: string;
  release: number;
  lockoutPcr: number;
  pcrs: { bank: string; values: Record<string, string> }[];
  approvedPolicy: string;
  policyRef: string;
  signer: string;
  signature: { r: string; s: string };
}

export function bootPolicyRef(productId: string): Promise<Uint8Array> {
  return digest('SHA-256', new TextEncoder().encode('sigil boot policy v1\0'), new TextEncoder().encode(checkProductId(productId)));
}

/** The authPolicy device secrets are sealed under: PolicyAuthorize(signer, ref(product)). */
export async function sealingPolicy(signerName: Uint8Array, productId: string): Promise<Uint8Array> {
  return new PolicyCalculator(POLICY_HASH).policyAuthorize(signerName, await bootPolicyRef(productId)).digest();
}

function orderedValues(selection: PcrSelection[], values: Map<number, Map<number, Uint8Array>>): Uint8Array[] {
  return selection.flatMap((bank) => bank.pcrs.map((pcr) => values.get(bank.hash)!.get(pcr)!));
}

export async function approvedBootPolicy(selection: PcrSelection[], values: Map<number, Map<number, Uint8Array>>, release: number): Promise<Uint8Array> {
  return new PolicyCalculator(POLICY_HASH)
    .policyPCR(selection, orderedValues(selection, values))
    .policyNV(await releaseFloorName(), releaseOperand(release), 0, TPM_EO.UNSIGNED_LE)
    .policyCommandCode(TPM_CC.Unseal)
    .digest();
}

/** Validate PCR choices and values; returns the ascending selection. */
function checkPcrs(values: Map<number, Map<number, Uint8Array>>, lockoutPcr: number, code: string): PcrSelection[] {
  if (!Number.isInteger(lockoutPcr) || lockoutPcr < 0 || lockoutPcr > 15) {
    throw new SigilError(code, `the lock-out PCR must be one of 0-15 (not resettable until reboot), not ${lockoutPcr}`, { lockoutPcr });
  }
  if (values.size === 0) throw new SigilError(code, 'a boot policy selects at least one PCR');
  const selection: PcrSelection[] = [];
  let lockoutSelected = false;
  for (const [bank, pcrs] of values) {
    const size = hashAlg(bank).size;
    const indexes = [...pcrs.keys()].sort((a, b) => a - b);
    if (indexes.length === 0) throw new SigilError(code, `bank ${hashAlg(bank).label} selects no PCR`);
    for (const pcr of indexes) {
      if (!Number.isInteger(pcr) || pcr < 0 || pcr > 23) throw new SigilError(code, `PCR ${pcr} does not exist`);
      if (RESETTABLE_PCRS.has(pcr)) throw new SigilError(code, `PCR ${pcr} can be reset by software, so it cannot be part of a boot policy`, { pcr });
      if (pcrs.get(pcr)!.length !== size) throw new SigilError(code, `PCR ${hashAlg(bank).label}:${pcr} must be ${size} bytes`, { pcr });
    }
    if (indexes.includes(lockoutPcr)) lockoutSelected = true;
    selection.push({ hash: bank, pcrs: indexes });
  }
  if (!lockoutSelected) throw new SigilError(code, `the lock-out PCR ${lockoutPcr} must be part of the policy's PCR selection`, { lockoutPcr });
  return selection;
}

export interface SignBootPolicyOptions {
  policyKey: KeyObject;
  productId: string;
  release: number;
  /** bank (TPM_ALG) → PCR → expected value. The lock-out PCR defaults to zero in the first bank. */
  pcrValues: Map<number, Map<number, Uint8Array>>;
  lockoutPcr?: number;
}

/** Vendor side, offline: compute and sign an approved boot policy. */
export async function signBootPolicy(options: SignBootPolicyOptions): Promise<BootPolicyDocument> {
  const code = 'device.policy_invalid';
  const productId = checkProductId(options.productId);
  const release = checkRelease(options.release);
  const lockoutPcr = options.lockoutPcr ?? DEFAULT_LOCKOUT_PCR;
  const values = new Map([...options.pcrValues].map(([bank, pcrs]) => [bank, new Map(pcrs)]));
  if (![...values.values()].some((pcrs) => pcrs.has(lockoutPcr))) {
    const first = values.keys().next();
    if (first.done) throw new SigilError(code, 'a boot policy selects at least one PCR');
    values.get(first.value)!.set(lockoutPcr, new Uint8Array(hashAlg(first.value).size));
  }
  const selection = checkPcrs(values, lockoutPcr, code);
  const approvedPolicy = await approvedBootPolicy(selection, values, release);
  const policyRef = await bootPolicyRef(productId);
  const signer = await objectName(policySigningTpmPublic(options.policyKey));
  const p1363 = nodeSign('sha256', approvedPolicyMessage(approvedPolicy, policyRef), { key: options.policyKey, dsaEncoding: 'ieee-p1363' });
  const half = p1363.length / 2;
  return {
    format: BOOT_POLICY_FORMAT,
    productId,
    release,
    lockoutPcr,
    pcrs: selection.map((bank) => ({
      bank: hashAlg(bank.hash).label,
      values: Object.fromEntries(bank.pcrs.map((pcr) => [String(pcr), toHex(values.get(bank.hash)!.get(pcr)!)])),
    })),
    approvedPolicy: toHex(approvedPolicy),
    policyRef: toHex(policyRef),
    signer: toHex(signer),
    signature: { r: toHex(p1363.subarray(0, half)), s: toHex(p1363.subarray(half)) },
  };
}

/** Parse a boot policy file: shape only, no trust decisions (those are verifyBootPolicy's). */
export function parseBootPolicy(input: unknown): BootPolicy {
  const code = 'device.policy_invalid';
  const doc = parseJsonObject(input, code, 'boot policy');
  if (doc.format !== BOOT_POLICY_FORMAT) throw new SigilError(code, `not a Sigil boot policy (format ${BOOT_POLICY_FORMAT})`);
  const productId = checkProductId(field(doc, 'productId', 'string', code), code);
  const release = integerField(doc, 'release', code, 1);
  const lockoutPcr = integerField(doc, 'lockoutPcr', code, 0, 23);
  const values = parsePcrBanksJson(field(doc, 'pcrs', 'array', code), code);
  const selection = checkPcrs(values, lockoutPcr, code);
  const signature = field(doc, 'signature', 'object', code) as Json;
  return {
    productId,
    release,
    lockoutPcr,
    selection,
    values,
    approvedPolicy: hexField(doc, 'approvedPolicy', code, { size: 32 }),
    policyRef: hexField(doc, 'policyRef', code, { size: 32 }),
    signer: hexField(doc, 'signer', code, { size: 34 }),
    signature: { r: hexField(signature, 'r', code, { size: 32 }), s: hexField(signature, 's', code, { size: 32 }) },
  };
}

export function policyTpmSignature(policy: BootPolicy): TpmSignature {
  return { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r: policy.signature.r, s: policy.signature.s };
}

/**
 * The software half of the check, before the TPM sees anything, so a refusal says why: the
 * signer is the vendor's policy key, the product matches device and product certificate, the
 * approved policy is what the stated PCRs and release compute to, and the signature holds.
 */
export async function verifyBootPolicy(policy: BootPolicy, trust: VendorTrust, deviceProductId: string): Promise<void> {
  if (!constantTimeEqual(policy.signer, trust.policySigning.name)) {
    throw new SigilError('device.policy_signer_unknown', "the boot policy names a signing key that is not the vendor's policy-signing key", {
      signer: toHex(policy.signer),
      expected: toHex(trust.policySigning.name),
    });
  }
  assertProductBinding({ device: deviceProductId, artefact: policy.productId, what: 'boot policy', trust });
  if (!constantTimeEqual(policy.policyRef, await bootPolicyRef(policy.productId))) {
    throw new SigilError('device.policy_invalid', 'the boot policy reference does not belong to its product');
  }
  const recomputed = await approvedBootPolicy(policy.selection, policy.values, policy.release);
  if (!constantTimeEqual(recomputed, policy.approvedPolicy)) {
    throw new SigilError('device.policy_invalid', 'the approved policy digest does not match the PCRs and release the file states');
  }
  const signatureOk = nodeVerify(
    'sha256',
    approvedPolicyMessage(policy.approvedPolicy, policy.policyRef),
    { key: trust.policySigning.publicKey, dsaEncoding: 'ieee-p1363' },
    concatBytes(policy.signature.r, policy.signature.s),
  );
  if (!signatureOk) throw new SigilError('device.policy_signature_invalid', "the boot policy's signature does not verify with the vendor's policy-signing key");
}
