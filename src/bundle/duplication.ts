import { constantTimeEqual } from '../core/bytes.ts';
import { SigilError, asSigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { verifySignature } from '../tpm/commands/attestation.ts';
import { duplicate, importObject, type DuplicateResult } from '../tpm/commands/duplication.ts';
import { loadExternal } from '../tpm/commands/object.ts';
import { TPM_CC, TPM_RH } from '../tpm/constants.ts';
import type { HandleRef } from '../tpm/handles.ts';
import { marshal, unmarshal } from '../tpm/marshal/codec.ts';
import { objectName } from '../tpm/names.ts';
import { approvedPolicyDigest } from '../tpm/policy/index.ts';
import { PolicySession } from '../tpm/session/policy.ts';
import type { Ticket } from '../tpm/structures/basic.ts';
import { AES_128_CFB, TPM2B_PUBLIC } from '../tpm/structures/public.ts';
import { storageKey } from '../tpm/tpm-keys.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { checkProductId } from '../device/identifiers.ts';
import { field, hexField, parseJsonObject } from '../device/json-input.ts';
import type { VendorTrust } from '../device/trust.ts';
import { approvalTpmSignature, parseDuplicationApproval, verifyDuplicationApproval, type DuplicationApproval } from './duplication-policy.ts';
import { checkWrappingKeyPublic, parseWrappingKey, withWrappingKey, wrappingKeyDocument, type WrappingKey, type WrappingKeyDocument } from './wrapping-key.ts';

/**
 * Moving a wrapping key between TPMs (`sigil tpm duplicate export | import`).
 *
 * export, on the source TPM: check the vendor's approval in software (so a refusal says why) →
 * LoadExternal(vendor policy key, owner hierarchy) → VerifySignature → ticket → load the key and
 * the approved new parent's public area → policy session: PolicyDuplicationSelect(key, new parent,
 * YES), PolicyCommandCode(Duplicate), PolicyAuthorize(ticket), PolicyOR(use, duplication)
 * → TPM2_Duplicate with an AES-128-CFB inner wrapper (encryptedDuplication demands one).
 *
 * import, on the target TPM: the file must name this TPM's SRK and carry a key with the expected
 * policy (so the key can only leave here again with another approval) → TPM2_Import → a key file
 * under this SRK.
 *
 * Duplicated file (JSON, "sigil.duplicated-key.v1"): { "format", "productId", "signer", "name",
 * "public": hex TPM2B_PUBLIC, "newParentName": hex, "encryptionKey": hex (the inner wrapper key),
 * "duplicate": hex TPM2B_PRIVATE, "seed": hex TPM2B_ENCRYPTED_SECRET }. Only the named parent's TPM
 * can recover the seed, so the file is not secret; the inner key adds nothing against whoever holds
 * the file, it exists because encryptedDuplication keeps the TPM from ever exporting the key unwrapped.
 */
export const DUPLICATED_FORMAT = 'sigil.duplicated-key.v1';
const DUPLICATED_CODE = 'duplication.file_invalid';

export interface DuplicatedKey {
  productId: string;
  signer: Uint8Array;
  name: Uint8Array;
  publicBytes: Uint8Array;
  newParentName: Uint8Array;
  encryptionKey: Uint8Array;
  duplicate: Uint8Array;
  seed: Uint8Array;
}

export interface DuplicatedKeyDocument {
  format: typeof DUPLICATED_FORMAT;
  productId: string;
  signer: string;
  name: string;
  public: string;
  newParentName: string;
  encryptionKey: string;
  duplicate: string;
  seed: string;
}

/** TPM2_VerifySignature of the approval by the vendor key, in the owner hierarchy (a NULL-hierarchy key yields no usable ticket). */
export async function approvalTicket(tpm: Tpm, trust: VendorTrust, approval: DuplicationApproval): Promise<Ticket> {
  const key = await tpm.client.run(loadExternal(trust.policySigning.tpmPublic, TPM_RH.OWNER));
  return tpm.using(key.handle, async () => {
    const aHash = await approvedPolicyDigest(trust.policySigning.tpmPublic.nameAlg, approval.approvedPolicy, approval.policyRef);
    try {
      return await tpm.client.run(verifySignature(key.handle, aHash, approvalTpmSignature(approval)));
    } catch (error) {
      if (error instanceof SigilError && error.code.startsWith('tpm.rc.signature')) {
        throw new SigilError('duplication.approval_signature_invalid', "the TPM refused the approval's signature", {}, { cause: error });
      }
      throw error;
    }
  });
}

export interface DuplicateOnTpmInput {
  key: { handle: number; name: Uint8Array; key: WrappingKey };
  newParent: HandleRef & { name: Uint8Array };
  approval: DuplicationApproval;
  ticket: Ticket;
  /** The vendor policy key name PolicyAuthorize names (the key's signer). */
  signerName: Uint8Array;
}

/**
 * The TPM half alone: satisfy the duplication branch with the approval and run TPM2_Duplicate. The
 * TPM decides — tests call this with another parent, another signer's ticket or no approval.
 */
export async function duplicateOnTpm(tpm: Tpm, input: DuplicateOnTpmInput): Promise<DuplicateResult> {
  const session = await PolicySession.start(tpm.client);
  try {
    await session.policyDuplicationSelect(input.approval.objectName, input.approval.newParent.name, true);
    await session.policyCommandCode(TPM_CC.Duplicate);
    await session.policyAuthorize(input.approval.approvedPolicy, input.approval.policyRef, input.signerName, input.ticket);
    await session.policyOR([input.key.key.policy.use, input.key.key.policy.duplication]);
    return await tpm.client.run(duplicate({ handle: input.key.handle, name: input.key.name, session }, input.newParent, AES_128_CFB));
  } finally {
    await session.flush(tpm.client).catch(() => undefined);
  }
}

export interface DuplicateWrappingKeyOptions {
  trust: VendorTrust;
  /** Key file (bytes/text) or parsed key. */
  key: unknown;
  /** Approval file (bytes/text) or parsed approval. */
  approval: unknown;
}

function isParsed<T>(value: unknown, probe: string): value is T {
  return typeof value === 'object' && value !== null && (value as Record<string, unknown>)[probe] instanceof Uint8Array;
}

export async function duplicateWrappingKey(tpm: Tpm, options: DuplicateWrappingKeyOptions): Promise<DuplicatedKeyDocument> {
  const key = isParsed<WrappingKey>(options.key, 'privateBlob') ? options.key : await parseWrappingKey(options.key);
  const approval = isParsed<DuplicationApproval>(options.approval, 'approvedPolicy') ? options.approval : await parseDuplicationApproval(options.approval);
  if (!constantTimeEqual(key.signer, options.trust.policySigning.name)) {
    throw new SigilError('duplication.approval_signer_unknown', "the key's moves are approved by another key than this vendor's policy-signing key");
  }
  await verifyDuplicationApproval(approval, options.trust, { productId: key.productId, objectName: key.name });
  const ticket = await approvalTicket(tpm, options.trust, approval);
  const result = await withWrappingKey(tpm, key, async (loaded) => {
    const parent = await tpm.client.run(loadExternal(approval.newParent.publicArea, TPM_RH.NULL));
    return tpm.using(parent.handle, () => duplicateOnTpm(tpm, { key: loaded, newParent: { handle: parent.handle, name: parent.name }, approval, ticket, signerName: key.signer }));
  });
  return {
    format: DUPLICATED_FORMAT,
    productId: key.productId,
    signer: toHex(key.signer),
    name: toHex(key.name),
    public: toHex(marshal(TPM2B_PUBLIC, key.publicArea)),
    newParentName: toHex(approval.newParent.name),
    encryptionKey: toHex(result.encryptionKeyOut),
    duplicate: toHex(result.duplicate),
    seed: toHex(result.outSymSeed),
  };
}

export function parseDuplicatedKey(input: unknown): DuplicatedKey {
  try {
    const doc = parseJsonObject(input, DUPLICATED_CODE, 'duplicated key file');
    if (doc.format !== DUPLICATED_FORMAT) throw new SigilError(DUPLICATED_CODE, `not a Sigil duplicated key (format ${DUPLICATED_FORMAT})`);
    return {
      productId: checkProductId(field(doc, 'productId', 'string', DUPLICATED_CODE), DUPLICATED_CODE),
      signer: hexField(doc, 'signer', DUPLICATED_CODE, { size: 34 }),
      name: hexField(doc, 'name', DUPLICATED_CODE, { size: 34 }),
      publicBytes: hexField(doc, 'public', DUPLICATED_CODE, { max: 1024 }),
      newParentName: hexField(doc, 'newParentName', DUPLICATED_CODE, { max: 66 }),
      encryptionKey: hexField(doc, 'encryptionKey', DUPLICATED_CODE, { size: 16 }),
      duplicate: hexField(doc, 'duplicate', DUPLICATED_CODE, { max: 2048 }),
      seed: hexField(doc, 'seed', DUPLICATED_CODE, { max: 1024 }),
    };
  } catch (error) {
    throw asSigilError(error, DUPLICATED_CODE, 'the duplicated key file could not be read');
  }
}

/** Import a duplicated wrapping key under this TPM's SRK; returns its new key file. */
export async function importWrappingKey(tpm: Tpm, options: { trust: VendorTrust; duplicated: unknown }): Promise<WrappingKeyDocument> {
  const file = parseDuplicatedKey(options.duplicated);
  const publicArea = unmarshal(TPM2B_PUBLIC, file.publicBytes, DUPLICATED_CODE);
  if (!constantTimeEqual(file.signer, options.trust.policySigning.name)) {
    throw new SigilError('duplication.approval_signer_unknown', "the key's moves are approved by another key than this vendor's policy-signing key");
  }
  await checkWrappingKeyPublic(publicArea, file.signer, file.productId, DUPLICATED_CODE);
  if (!constantTimeEqual(await objectName(publicArea), file.name)) throw new SigilError(DUPLICATED_CODE, 'the key name does not match its public area');
  const srk = await storageKey(tpm);
  try {
    if (!constantTimeEqual(srk.name, file.newParentName)) {
      throw new SigilError('duplication.wrong_parent', "the key was duplicated to another TPM's storage key, not this one", { expected: toHex(file.newParentName), actual: toHex(srk.name) });
    }
    let privateBlob: Uint8Array;
    try {
      privateBlob = await tpm.client.run(
        importObject({ handle: srk.handle, name: srk.name }, { encryptionKey: file.encryptionKey, objectPublic: publicArea, duplicate: file.duplicate, inSymSeed: file.seed, symmetricAlg: AES_128_CFB }),
      );
    } catch (error) {
      if (error instanceof SigilError && /^tpm\.rc\.(integrity|value|ecc_point|key|size)/.test(error.code)) {
        throw new SigilError('duplication.import_refused', 'the TPM refused the duplicate: it was made for another parent, or altered', { tpmError: error.code }, { cause: error });
      }
      throw error;
    }
    return wrappingKeyDocument({ productId: file.productId, signer: file.signer, publicArea, name: file.name, privateBlob, parentName: srk.name });
  } finally {
    if (srk.transient) await tpm.flush(srk.handle).catch(() => undefined);
  }
}
