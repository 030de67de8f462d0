import { sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { concatBytes, constantTimeEqual } from '../core/bytes.ts';
import { digest } from '../core/hash.ts';
import { SigilError, asSigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { TPM_ALG, TPM_CC } from '../tpm/constants.ts';
import { marshal, unmarshal } from '../tpm/marshal/codec.ts';
import { objectName } from '../tpm/names.ts';
import { PolicyCalculator, approvedPolicyMessage } from '../tpm/policy/index.ts';
import { TPM2B_PUBLIC, type TpmPublic } from '../tpm/structures/public.ts';
import type { TpmSignature } from '../tpm/structures/signature.ts';
import { checkProductId, checkSerial } from '../device/identifiers.ts';
import { field, hexField, parseJsonObject } from '../device/json-input.ts';
import { policySigningTpmPublic, type VendorTrust } from '../device/trust.ts';
import { assertNonDuplicableStorageKey } from './storage-key.ts';

/**
 * Key duplication under policy (`sigil tpm duplicate`): the policy of a movable wrapping key, and
 * the vendor's approvals that let it move.
 *
 * A wrapping key is a storage key (restricted | decrypt: the parent of sealed secrets) with
 * fixedTPM and fixedParent clear — otherwise it could never move — encryptedDuplication SET (every
 * copy carries an inner wrapper and never goes to TPM_RH_NULL, i.e. into the clear), and
 * userWithAuth CLEAR, so every use goes through its policy:
 *
 *   authPolicy = PolicyOR(use, duplication)
 *   use         = PolicyCommandCode(Load | Create | Import, one of)  → PolicyOR(those three)
 *                 → PolicyAuthValue
 *   duplication = PolicyAuthorize(vendor policy-signing key, ref(product))
 *
 * The use branch names its command, so it can never authorize TPM2_Duplicate. The duplication
 * branch has no path of its own: only a policy the vendor signed satisfies it, and the vendor
 * signs exactly one shape, per move:
 *
 *   approved    = PolicyDuplicationSelect(key name, new parent name, includeObject = YES) → PolicyCommandCode(Duplicate)
 *   signature   = ECDSA-P256-SHA256(approved ‖ ref(product))        (what TPM2_VerifySignature checks)
 *
 * (In that order: PolicyDuplicationSelect refuses a session whose command code is already set —
 * TPM_RC_COMMAND_CODE on swtpm — and itself sets it to Duplicate; PolicyCommandCode then restates it.)
 * PolicyDuplicationSelect makes the TPM compare H(key name ‖ new parent name) with the handles
 * TPM2_Duplicate is given, so the approval moves this one key to this one parent, nowhere else.
 * ref(product) = SHA-256("sigil key duplication v1" ‖ 0 ‖ productId): a boot policy (another ref)
 * or an approval for another product's keys does not satisfy it. The new parent must be a
 * non-duplicable storage key (a device's SRK), so the key cannot travel on without a new approval.
 */
export const APPROVAL_FORMAT = 'sigil.duplication-approval.v1';
const APPROVAL_CODE = 'duplication.approval_invalid';
const POLICY_HASH = TPM_ALG.SHA256;
export const USE_COMMANDS = [TPM_CC.Load, TPM_CC.Create, TPM_CC.Import] as const;

export function duplicationPolicyRef(productId: string): Promise<Uint8Array> {
  return digest('SHA-256', new TextEncoder().encode(`sigil key duplication v1\0${checkProductId(productId)}`));
}

function commandBranch(code: number): PolicyCalculator {
  return new PolicyCalculator(POLICY_HASH).policyCommandCode(code);
}

export interface WrappingKeyPolicy {
  /** Digests PolicyOR takes, in this order. */
  use: Uint8Array;
  duplication: Uint8Array;
  authPolicy: Uint8Array;
}

/** The use branch before its last step: PolicyOR over the allowed command codes. */
export function useCommandDigests(): Promise<Uint8Array[]> {
  return Promise.all(USE_COMMANDS.map((code) => commandBranch(code).digest()));
}

export async function wrappingKeyPolicy(signerName: Uint8Array, productId: string): Promise<WrappingKeyPolicy> {
  const use = await new PolicyCalculator(POLICY_HASH).policyOR(await useCommandDigests()).policyAuthValue().digest();
  const duplication = await new PolicyCalculator(POLICY_HASH).policyAuthorize(signerName, await duplicationPolicyRef(productId)).digest();
  const authPolicy = await new PolicyCalculator(POLICY_HASH).policyOR([use, duplication]).digest();
  return { use, duplication, authPolicy };
}

/** What the vendor approves for one move: Duplicate of `objectName` to `newParentName` only. */
export function approvedDuplicationPolicy(objectName: Uint8Array, newParentName: Uint8Array): Promise<Uint8Array> {
  return new PolicyCalculator(POLICY_HASH).policyDuplicationSelect(objectName, newParentName, true).policyCommandCode(TPM_CC.Duplicate).digest();
}

export interface DuplicationApproval {
  productId: string;
  objectName: Uint8Array;
  newParent: { publicArea: TpmPublic; name: Uint8Array; serial?: string };
  approvedPolicy: Uint8Array;
  policyRef: Uint8Array;
  signer: Uint8Array;
  signature: { r: Uint8Array; s: Uint8Array };
}

export interface DuplicationApprovalDocument {
  format: typeof APPROVAL_FORMAT;
  productId: string;
  object: { name: string };
  newParent: { serial?: string; name: string; public: string };
  approvedPolicy: string;
  policyRef: string;
  signer: string;
  signature: { r: string; s: string };
}

export interface SignApprovalOptions {
  /** The vendor's policy-signing key (keyset.privateKey('policy-signing')). */
  policyKey: KeyObject;
  productId: string;
  /** The wrapping key's name (nameAlg ‖ H(public)), as its key file states. */
  objectName: Uint8Array;
  /** The new parent: an enrolled device's SRK, from its provisioning record. */
  newParentPublic: TpmPublic;
  /** The device that holds the new parent, for people reading the file. */
  newParentSerial?: string;
}

/** Vendor side, offline: approve one move of one key to one parent. */
export async function signDuplicationApproval(options: SignApprovalOptions): Promise<DuplicationApprovalDocument> {
  const productId = checkProductId(options.productId);
  assertNonDuplicableStorageKey(options.newParentPublic, 'duplication.parent_invalid', 'new parent');
  const newParentName = await objectName(options.newParentPublic);
  const approvedPolicy = await approvedDuplicationPolicy(options.objectName, newParentName);
  const policyRef = await duplicationPolicyRef(productId);
  const p1363 = nodeSign('sha256', approvedPolicyMessage(approvedPolicy, policyRef), { key: options.policyKey, dsaEncoding: 'ieee-p1363' });
  return {
    format: APPROVAL_FORMAT,
    productId,
    object: { name: toHex(options.objectName) },
    newParent: {
      ...(options.newParentSerial === undefined ? {} : { serial: checkSerial(options.newParentSerial) }),
      name: toHex(newParentName),
      public: toHex(marshal(TPM2B_PUBLIC, options.newParentPublic)),
    },
    approvedPolicy: toHex(approvedPolicy),
    policyRef: toHex(policyRef),
    signer: toHex(await objectName(policySigningTpmPublic(options.policyKey))),
    signature: { r: toHex(p1363.subarray(0, 32)), s: toHex(p1363.subarray(32)) },
  };
}

/** Parse an approval: shape and internal consistency; trust is verifyDuplicationApproval's. */
export async function parseDuplicationApproval(input: unknown): Promise<DuplicationApproval> {
  try {
    const doc = parseJsonObject(input, APPROVAL_CODE, 'duplication approval');
    if (doc.format !== APPROVAL_FORMAT) throw new SigilError(APPROVAL_CODE, `not a Sigil duplication approval (format ${APPROVAL_FORMAT})`);
    const parentDoc = field(doc, 'newParent', 'object', APPROVAL_CODE);
    const publicArea = unmarshal(TPM2B_PUBLIC, hexField(parentDoc, 'public', APPROVAL_CODE, { max: 1024 }), APPROVAL_CODE);
    const name = hexField(parentDoc, 'name', APPROVAL_CODE, { max: 66 });
    if (!constantTimeEqual(await objectName(publicArea), name)) throw new SigilError(APPROVAL_CODE, 'the new parent name does not match its public area');
    const serial = parentDoc.serial === undefined ? undefined : checkSerial(parentDoc.serial, APPROVAL_CODE);
    const signature = field(doc, 'signature', 'object', APPROVAL_CODE);
    return {
      productId: checkProductId(field(doc, 'productId', 'string', APPROVAL_CODE), APPROVAL_CODE),
      objectName: hexField(field(doc, 'object', 'object', APPROVAL_CODE), 'name', APPROVAL_CODE, { size: 34 }),
      newParent: { publicArea, name, serial },
      approvedPolicy: hexField(doc, 'approvedPolicy', APPROVAL_CODE, { size: 32 }),
      policyRef: hexField(doc, 'policyRef', APPROVAL_CODE, { size: 32 }),
      signer: hexField(doc, 'signer', APPROVAL_CODE, { size: 34 }),
      signature: { r: hexField(signature, 'r', APPROVAL_CODE, { size: 32 }), s: hexField(signature, 's', APPROVAL_CODE, { size: 32 }) },
    };
  } catch (error) {
    if (error instanceof SigilError && !error.code.startsWith('duplication.')) {
      throw new SigilError(APPROVAL_CODE, `the duplication approval is malformed: ${error.message}`, { reason: error.code }, { cause: error });
    }
    throw asSigilError(error, APPROVAL_CODE, 'the duplication approval could not be read');
  }
}

export function approvalTpmSignature(approval: DuplicationApproval): TpmSignature {
  return { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r: approval.signature.r, s: approval.signature.s };
}

/**
 * The software half, before the TPM sees anything, so a refusal says why: the vendor's policy key
 * signed it, for this product's keys, for exactly this key and this parent (recomputed), and the
 * parent is a non-duplicable storage key.
 */
export async function verifyDuplicationApproval(approval: DuplicationApproval, trust: VendorTrust, expect: { productId: string; objectName: Uint8Array }): Promise<void> {
  if (!constantTimeEqual(approval.signer, trust.policySigning.name)) {
    throw new SigilError('duplication.approval_signer_unknown', "the duplication approval is not signed by the vendor's policy-signing key", { signer: toHex(approval.signer) });
  }
  if (approval.productId !== expect.productId) {
    throw new SigilError('device.product_mismatch', `the approval is for product ${approval.productId}'s keys, this key belongs to product ${expect.productId}`, {
      approval: approval.productId,
      key: expect.productId,
    });
  }
  if (!constantTimeEqual(approval.objectName, expect.objectName)) throw new SigilError('duplication.approval_other_key', 'the approval moves another key than this one');
  assertNonDuplicableStorageKey(approval.newParent.publicArea, 'duplication.parent_invalid', 'approved new parent');
  if (!constantTimeEqual(approval.policyRef, await duplicationPolicyRef(approval.productId))) throw new SigilError(APPROVAL_CODE, 'the approval reference does not belong to its product');
  if (!constantTimeEqual(approval.approvedPolicy, await approvedDuplicationPolicy(approval.objectName, approval.newParent.name))) {
    throw new SigilError(APPROVAL_CODE, 'the approved policy is not "Duplicate this key to this parent"');
  }
  const ok = nodeVerify(
    'sha256',
    approvedPolicyMessage(approval.approvedPolicy, approval.policyRef),
    { key: trust.policySigning.publicKey, dsaEncoding: 'ieee-p1363' },
    concatBytes(approval.signature.r, approval.signature.s),
  );
  if (!ok) throw new SigilError('duplication.approval_signature_invalid', "the approval's signature does not verify with the vendor's policy-signing key");
}
