import { randomBytes, randomUUID } from 'node:crypto';
import { constantTimeEqual } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { sealToRemoteTpm } from '../tpm/credential.ts';
import { escrowDecrypt, escrowEncrypt } from '../device/escrow.ts';
import { checkProductId } from '../device/identifiers.ts';
import type { Keyset } from '../device/keyset.ts';
import { verifyProvisioningRecord, type ProvisioningRecord } from '../device/provisioning-record.ts';
import { assertProductBinding, loadVendorTrust, type VendorTrust } from '../device/trust.ts';
import {
  bundleDocument,
  checkBundleId,
  escrowContext,
  parseBundle,
  payloadAad,
  signBundle,
  verifyBundleSignature,
  MAX_RECIPIENTS,
  type BundleDocument,
  type BundleRecipient,
  type SealedBundle,
  type Unsigned,
} from './bundle-format.ts';
import { decodePayload, decryptPayload, encodePayload, encryptPayload, type BundlePayload, type IntegrityDigests } from './payload.ts';
import { checkPcrPolicy, pcrUnsealPolicy, type PcrPolicy, type PcrValues } from './pcr-policy.ts';
import { assertNonDuplicableStorageKey } from './storage-key.ts';

/**
 * Vendor side, offline (`sigil bundle seal | revoke`): no TPM involved. The data key is wrapped
 * to each recipient with src/tpm/credential.ts (what TPM2_Duplicate would make, done in software
 * from the recipient SRK's public area), and escrowed to the keyset's escrow key so the vendor can
 * re-key the bundle later without keeping the secrets anywhere else.
 */

/** A device to seal for: its provisioning record and, optionally, its own PCR values. */
export interface RecipientInput {
  record: ProvisioningRecord;
  pcrs?: PcrValues;
}

export interface SealBundleOptions {
  keyset: Keyset;
  /** Defaults to the keyset's own trust bundle. */
  trust?: VendorTrust;
  productId: string;
  bundleId?: string;
  recipients: (ProvisioningRecord | RecipientInput)[];
  /** PCR values every recipient's data key is sealed to, unless the recipient gives its own. PCRs 0-15 only. */
  pcrs?: PcrValues;
  integrity: IntegrityDigests;
  secrets: Map<string, Uint8Array> | Record<string, Uint8Array>;
  epoch?: number;
  now?: Date;
}

const DATA_KEY_BYTES = 32;

function recipientInput(value: ProvisioningRecord | RecipientInput): RecipientInput {
  return 'record' in value ? value : { record: value };
}

async function trustOf(keyset: Keyset, trust: VendorTrust | undefined): Promise<VendorTrust> {
  return trust ?? loadVendorTrust(keyset.trustDocument());
}

/** Check a device may receive a bundle of `productId`: its record verifies and names that product. */
async function checkRecord(record: ProvisioningRecord, productId: string, trust: VendorTrust): Promise<void> {
  await verifyProvisioningRecord(record, { trust });
  assertProductBinding({ device: record.productId, artefact: productId, what: 'sealed bundle', trust });
  assertNonDuplicableStorageKey(record.storageKey.publicArea, 'bundle.recipient_invalid', `storage key of device ${record.serial}`);
}

/** Wrap the data key to one recipient's storage key under its PCR policy. */
async function wrapFor(serial: string, storageKey: BundleRecipient['storageKey'], pcrPolicy: PcrPolicy, dataKey: Uint8Array): Promise<BundleRecipient> {
  const authPolicy = await pcrUnsealPolicy(pcrPolicy);
  const blob = await sealToRemoteTpm({ parentPublic: storageKey.publicArea, secret: dataKey, policyDigest: authPolicy });
  return { serial, storageKey, pcrPolicy, authPolicy, sealedKey: { publicArea: blob.objectPublic, duplicate: blob.duplicate, seed: blob.inSymSeed } };
}

interface Draft {
  bundleId: string;
  productId: string;
  epoch: number;
  createdAt: string;
  recipients: { serial: string; storageKey: BundleRecipient['storageKey']; pcrPolicy: PcrPolicy }[];
}

/** A fresh data key, one wrap per recipient, the payload, the escrow and the signature. */
async function assemble(draft: Draft, payload: BundlePayload, keyset: Keyset): Promise<BundleDocument> {
  if (draft.recipients.length === 0) throw new SigilError('bundle.no_recipients', 'a bundle needs at least one recipient');
  if (draft.recipients.length > MAX_RECIPIENTS) throw new SigilError('bundle.too_many_recipients', `a bundle has at most ${MAX_RECIPIENTS} recipients`);
  const sorted = [...draft.recipients].sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].serial === sorted[i - 1].serial) throw new SigilError('bundle.recipient_duplicate', `device ${sorted[i].serial} is listed twice`, { serial: sorted[i].serial });
  }
  const plaintext = encodePayload(payload);
  const productKey = keyset.productKey(draft.productId);
  const dataKey = new Uint8Array(randomBytes(DATA_KEY_BYTES));
  try {
    const recipients: BundleRecipient[] = [];
    for (const r of sorted) recipients.push(await wrapFor(r.serial, r.storageKey, r.pcrPolicy, dataKey));
    const header = { bundleId: draft.bundleId, productId: draft.productId, epoch: draft.epoch, recipients };
    const unsigned: Unsigned<SealedBundle> = {
      ...header,
      createdAt: draft.createdAt,
      vendorEscrow: escrowEncrypt(keyset.escrowPublicKey(), dataKey, escrowContext(header)),
      payload: encryptPayload(dataKey, plaintext, payloadAad(header)),
    };
    return bundleDocument(signBundle(unsigned, productKey));
  } finally {
    dataKey.fill(0);
    plaintext.fill(0);
  }
}

function secretsMap(secrets: Map<string, Uint8Array> | Record<string, Uint8Array>): Map<string, Uint8Array> {
  return secrets instanceof Map ? secrets : new Map(Object.entries(secrets));
}

function checkEpoch(epoch: number): number {
  if (!Number.isSafeInteger(epoch) || epoch < 1 || epoch > 0xffffffff) throw new SigilError('bundle.epoch_invalid', `an epoch is 1-4294967295, not ${epoch}`);
  return epoch;
}

/** Seal a new bundle for the given devices. Returns the file's JSON document (write it with bundleText). */
export async function sealBundle(options: SealBundleOptions): Promise<BundleDocument> {
  const productId = checkProductId(options.productId);
  const trust = await trustOf(options.keyset, options.trust);
  const recipients: Draft['recipients'] = [];
  for (const entry of options.recipients.map(recipientInput)) {
    await checkRecord(entry.record, productId, trust);
    const pcrs = entry.pcrs ?? options.pcrs;
    if (!pcrs) throw new SigilError('bundle.pcr_policy_invalid', `no PCR values for device ${entry.record.serial}: give default PCR values or per-device ones`);
    recipients.push({ serial: entry.record.serial, storageKey: { publicArea: entry.record.storageKey.publicArea, name: entry.record.storageKey.name }, pcrPolicy: checkPcrPolicy(pcrs) });
  }
  const draft: Draft = {
    bundleId: checkBundleId(options.bundleId ?? randomUUID()),
    productId,
    epoch: checkEpoch(options.epoch ?? 1),
    createdAt: (options.now ?? new Date()).toISOString(),
    recipients,
  };
  return assemble(draft, { integrity: options.integrity, secrets: secretsMap(options.secrets) }, options.keyset);
}

export interface RekeyBundleOptions {
  keyset: Keyset;
  trust?: VendorTrust;
  /** The current bundle (file bytes or text). */
  bundle: unknown;
  /** Serials of devices to drop. */
  revoke?: string[];
  /** Devices to add (verified like sealBundle's); without PCR values they get the first kept recipient's. */
  add?: (ProvisioningRecord | RecipientInput)[];
  /** Replace the secrets (rotate them after a revocation if the revoked device ever opened the bundle). */
  secrets?: Map<string, Uint8Array> | Record<string, Uint8Array>;
  /** Replace the integrity digests (a new kernel). */
  integrity?: IntegrityDigests;
  /** Replace every recipient's PCR values (a new boot chain); added devices get them too. */
  pcrs?: PcrValues;
  now?: Date;
}

/**
 * Re-key a bundle: same bundle ID, epoch + 1, a new data key wrapped for the remaining (and added)
 * devices only — also the way to move a bundle to a new kernel (integrity, pcrs) or new secrets. The old data key is recovered from the vendor escrow; a revoked device still holds
 * the old file and its old wrap, but neither opens the new payload.
 */
export async function rekeyBundle(options: RekeyBundleOptions): Promise<BundleDocument> {
  const trust = await trustOf(options.keyset, options.trust);
  const old = await parseBundle(options.bundle);
  verifyBundleSignature(old, trust);
  const revoke = new Set(options.revoke ?? []);
  for (const serial of revoke) {
    if (!old.recipients.some((r) => r.serial === serial)) throw new SigilError('bundle.recipient_unknown', `device ${serial} is not a recipient of bundle ${old.bundleId}`, { serial });
  }
  if (old.epoch >= 0xffffffff) throw new SigilError('bundle.epoch_invalid', 'the bundle epoch cannot grow further');
  const dataKey = escrowDecrypt(options.keyset.privateKey('escrow'), old.vendorEscrow, escrowContext(old));
  let payload: BundlePayload;
  try {
    payload = decodePayload(decryptPayload(dataKey, old.payload, payloadAad(old)));
  } finally {
    dataKey.fill(0);
  }
  const replaced = options.pcrs ? checkPcrPolicy(options.pcrs) : undefined;
  const kept: Draft['recipients'] = old.recipients.filter((r) => !revoke.has(r.serial)).map((r) => ({ serial: r.serial, storageKey: r.storageKey, pcrPolicy: replaced ?? r.pcrPolicy }));
  for (const entry of (options.add ?? []).map(recipientInput)) {
    await checkRecord(entry.record, old.productId, trust);
    const pcrPolicy = entry.pcrs ? checkPcrPolicy(entry.pcrs) : (replaced ?? kept[0]?.pcrPolicy);
    if (!pcrPolicy) throw new SigilError('bundle.pcr_policy_invalid', `no PCR values for device ${entry.record.serial}`);
    const existing = kept.find((r) => r.serial === entry.record.serial);
    if (existing && !constantTimeEqual(existing.storageKey.name, entry.record.storageKey.name)) {
      throw new SigilError('bundle.recipient_duplicate', `device ${entry.record.serial} is already a recipient with another storage key`);
    }
    kept.push({ serial: entry.record.serial, storageKey: { publicArea: entry.record.storageKey.publicArea, name: entry.record.storageKey.name }, pcrPolicy });
  }
  if (kept.length === 0) throw new SigilError('bundle.no_recipients', 'revoking every recipient leaves nobody to seal for: delete the bundle instead');
  const draft: Draft = { bundleId: old.bundleId, productId: old.productId, epoch: old.epoch + 1, createdAt: (options.now ?? new Date()).toISOString(), recipients: kept };
  try {
    return await assemble(draft, { integrity: options.integrity ?? payload.integrity, secrets: options.secrets ? secretsMap(options.secrets) : payload.secrets }, options.keyset);
  } finally {
    for (const value of payload.secrets.values()) value.fill(0);
  }
}

export function revokeBundle(options: Omit<RekeyBundleOptions, 'add' | 'revoke'> & { revoke: string[] }): Promise<BundleDocument> {
  if (options.revoke.length === 0) throw new SigilError('bundle.recipient_unknown', 'name at least one device to revoke');
  return rekeyBundle(options);
}
