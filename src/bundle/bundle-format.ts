import { sign as nodeSign, verify as nodeVerify, createPublicKey, type KeyObject } from 'node:crypto';
import { bytesEqual, concatBytes, constantTimeEqual } from '../core/bytes.ts';
import { SigilError, asSigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { TPM_ALG, TPMA_OBJECT } from '../tpm/constants.ts';
import { marshal, unmarshal } from '../tpm/marshal/codec.ts';
import { objectName } from '../tpm/names.ts';
import { TPM2B_PUBLIC, type TpmPublic } from '../tpm/structures/public.ts';
import { parseEscrowBlob, type EscrowBlob } from '../device/escrow.ts';
import { checkProductId, checkSerial } from '../device/identifiers.ts';
import { field, hexField, integerField, parseJsonObject } from '../device/json-input.ts';
import { assertProductBinding, productCertificate, type VendorTrust } from '../device/trust.ts';
import { parsePcrPolicyJson, pcrPolicyJson, pcrUnsealPolicy, type PcrPolicy, type PcrPolicyJson } from './pcr-policy.ts';
import { assertNonDuplicableStorageKey } from './storage-key.ts';

/**
 * The sealed bundle file ("sigil.sealed-bundle.v1"): JSON, exactly as `JSON.stringify(doc, null, 2)`
 * plus a newline writes it. See README.md in this folder for every field.
 *
 * Any change to the file is refused: the reader rebuilds the canonical text from what it parsed and
 * requires the file to be byte-for-byte that text (so reformatting, case changes in hex, or
 * equivalent JSON spellings are refused too), and the product key's signature covers the canonical
 * text of every field but the signature itself, whose r and s are checked by ECDSA.
 */
export const BUNDLE_FORMAT = 'sigil.sealed-bundle.v1';
export const INVALID = 'bundle.invalid';
export const MAX_RECIPIENTS = 2000;
export const MAX_PAYLOAD = 1024 * 1024;
const BUNDLE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const SIGNATURE_CONTEXT = `${BUNDLE_FORMAT} signature\0`;

export interface SealedKey {
  /** The KEYEDHASH sealed-data object holding the 32-byte data key (authPolicy = the PCR policy). */
  publicArea: TpmPublic;
  /** TPM2B_PRIVATE contents for TPM2_Import (outer wrapper only). */
  duplicate: Uint8Array;
  /** TPM2B_ENCRYPTED_SECRET contents: the import seed, protected to the recipient's storage key. */
  seed: Uint8Array;
}

export interface BundleRecipient {
  serial: string;
  storageKey: { publicArea: TpmPublic; name: Uint8Array };
  pcrPolicy: PcrPolicy;
  authPolicy: Uint8Array;
  sealedKey: SealedKey;
}

export interface SealedBundle {
  bundleId: string;
  productId: string;
  epoch: number;
  createdAt: string;
  recipients: BundleRecipient[];
  vendorEscrow: EscrowBlob;
  payload: { iv: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array };
  signature: { r: Uint8Array; s: Uint8Array };
}

export type Unsigned<T> = Omit<T, 'signature'>;

export interface RecipientDocument {
  serial: string;
  storageKey: { name: string; public: string };
  pcrs: PcrPolicyJson[];
  authPolicy: string;
  sealedKey: { public: string; duplicate: string; seed: string };
}

export interface BundleDocument {
  format: typeof BUNDLE_FORMAT;
  bundleId: string;
  productId: string;
  epoch: number;
  createdAt: string;
  recipients: RecipientDocument[];
  vendorEscrow: EscrowBlob;
  payload: { iv: string; ciphertext: string; tag: string };
  signature: { alg: 'ES256'; r: string; s: string };
}

export function checkBundleId(value: unknown, code = 'bundle.id_invalid'): string {
  if (typeof value !== 'string' || !BUNDLE_ID.test(value)) {
    throw new SigilError(code, 'a bundle ID is 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit', { value: String(value).slice(0, 80) });
  }
  return value;
}

function recipientDocument(r: BundleRecipient): RecipientDocument {
  return {
    serial: r.serial,
    storageKey: { name: toHex(r.storageKey.name), public: toHex(marshal(TPM2B_PUBLIC, r.storageKey.publicArea)) },
    pcrs: pcrPolicyJson(r.pcrPolicy),
    authPolicy: toHex(r.authPolicy),
    sealedKey: { public: toHex(marshal(TPM2B_PUBLIC, r.sealedKey.publicArea)), duplicate: toHex(r.sealedKey.duplicate), seed: toHex(r.sealedKey.seed) },
  };
}

/** Everything but the signature, in canonical key order: what the product key signs. */
export function unsignedDocument(bundle: Unsigned<SealedBundle>): Unsigned<BundleDocument> {
  return {
    format: BUNDLE_FORMAT,
    bundleId: bundle.bundleId,
    productId: bundle.productId,
    epoch: bundle.epoch,
    createdAt: bundle.createdAt,
    recipients: bundle.recipients.map(recipientDocument),
    vendorEscrow: { alg: bundle.vendorEscrow.alg, epk: bundle.vendorEscrow.epk, iv: bundle.vendorEscrow.iv, ciphertext: bundle.vendorEscrow.ciphertext, tag: bundle.vendorEscrow.tag },
    payload: { iv: toHex(bundle.payload.iv), ciphertext: toHex(bundle.payload.ciphertext), tag: toHex(bundle.payload.tag) },
  };
}

export function bundleDocument(bundle: SealedBundle): BundleDocument {
  return { ...unsignedDocument(bundle), signature: { alg: 'ES256', r: toHex(bundle.signature.r), s: toHex(bundle.signature.s) } };
}

/** The file's exact text. */
export function bundleText(document: BundleDocument): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

function signedMessage(bundle: Unsigned<SealedBundle>): Uint8Array {
  return new TextEncoder().encode(SIGNATURE_CONTEXT + JSON.stringify(unsignedDocument(bundle)));
}

/** ECDSA P-256 / SHA-256 by the product key, r ‖ s. */
export function signBundle(bundle: Unsigned<SealedBundle>, productKey: KeyObject): SealedBundle {
  const p1363 = nodeSign('sha256', signedMessage(bundle), { key: productKey, dsaEncoding: 'ieee-p1363' });
  if (p1363.length !== 64) throw new SigilError('bundle.signer_invalid', 'the product key must be an ECDSA P-256 key');
  return { ...bundle, signature: { r: new Uint8Array(p1363.subarray(0, 32)), s: new Uint8Array(p1363.subarray(32)) } };
}

/**
 * Product binding and signature: the bundle names a product the trust bundle certifies, the
 * device (when given) is that product, and that product's key signed every field.
 */
export function verifyBundleSignature(bundle: SealedBundle, trust: VendorTrust, deviceProductId?: string): void {
  const certificate = productCertificate(trust, bundle.productId);
  if (deviceProductId !== undefined) assertProductBinding({ device: deviceProductId, artefact: bundle.productId, what: 'sealed bundle', trust });
  const publicKey = createPublicKey({ key: Buffer.from(certificate.publicKey.rawData), format: 'der', type: 'spki' });
  let ok = false;
  try {
    ok = nodeVerify('sha256', signedMessage(bundle), { key: publicKey, dsaEncoding: 'ieee-p1363' }, concatBytes(bundle.signature.r, bundle.signature.s));
  } catch (error) {
    throw asSigilError(error, 'bundle.signature_invalid', 'the bundle signature cannot be checked');
  }
  if (!ok) throw new SigilError('bundle.signature_invalid', `the bundle is not signed by the product key of ${bundle.productId}: it was altered or signed by someone else`, { productId: bundle.productId });
}

/**
 * AES-256-GCM associated data: binds the payload to this bundle ID, epoch, product and the exact
 * recipient list (serial, storage key name, PCR policy of each), so re-signing a bundle with another
 * recipient list or epoch cannot reuse the ciphertext.
 */
export function payloadAad(bundle: Pick<SealedBundle, 'bundleId' | 'productId' | 'epoch' | 'recipients'>): Uint8Array {
  const recipients = bundle.recipients.map((r) => ({ serial: r.serial, storageKey: toHex(r.storageKey.name), authPolicy: toHex(r.authPolicy) }));
  return new TextEncoder().encode(JSON.stringify({ format: BUNDLE_FORMAT, productId: bundle.productId, bundleId: bundle.bundleId, epoch: bundle.epoch, recipients }));
}

/** The context the data key is escrowed to the vendor under. */
export function escrowContext(bundle: Pick<SealedBundle, 'bundleId' | 'productId' | 'epoch'>): Uint8Array {
  return new TextEncoder().encode(`${BUNDLE_FORMAT} escrow\0${bundle.productId}\0${bundle.bundleId}\0${bundle.epoch}`);
}

async function parseRecipient(value: unknown): Promise<BundleRecipient> {
  const doc = parseJsonObject(value, INVALID, 'bundle recipient');
  const serial = checkSerial(field(doc, 'serial', 'string', INVALID), INVALID);
  const storageDoc = field(doc, 'storageKey', 'object', INVALID);
  const storagePublic = unmarshal(TPM2B_PUBLIC, hexField(storageDoc, 'public', INVALID, { max: 1024 }), INVALID);
  const storageName = hexField(storageDoc, 'name', INVALID, { max: 66 });
  assertNonDuplicableStorageKey(storagePublic, INVALID, `storage key of recipient ${serial}`);
  if (!constantTimeEqual(await objectName(storagePublic), storageName)) throw new SigilError(INVALID, `the storage key name of recipient ${serial} does not match its public area`);
  const pcrPolicy = parsePcrPolicyJson(field(doc, 'pcrs', 'array', INVALID), INVALID);
  const authPolicy = hexField(doc, 'authPolicy', INVALID, { size: 32 });
  if (!constantTimeEqual(await pcrUnsealPolicy(pcrPolicy), authPolicy)) throw new SigilError(INVALID, `the authPolicy of recipient ${serial} is not PolicyPCR(its PCRs) + PolicyCommandCode(Unseal)`);
  const sealedDoc = field(doc, 'sealedKey', 'object', INVALID);
  const sealedPublic = unmarshal(TPM2B_PUBLIC, hexField(sealedDoc, 'public', INVALID, { max: 256 }), INVALID);
  const attributes = sealedPublic.objectAttributes;
  if (sealedPublic.type !== TPM_ALG.KEYEDHASH || sealedPublic.nameAlg !== TPM_ALG.SHA256 || !constantTimeEqual(sealedPublic.authPolicy, authPolicy)) {
    throw new SigilError(INVALID, `the sealed key of recipient ${serial} is not a SHA-256 sealed-data object under the stated policy`);
  }
  if (attributes & (TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign | TPMA_OBJECT.decrypt | TPMA_OBJECT.restricted) || !(attributes & TPMA_OBJECT.adminWithPolicy)) {
    throw new SigilError(INVALID, `the sealed key of recipient ${serial} could be used without its PCR policy`);
  }
  return {
    serial,
    storageKey: { publicArea: storagePublic, name: storageName },
    pcrPolicy,
    authPolicy,
    sealedKey: { publicArea: sealedPublic, duplicate: hexField(sealedDoc, 'duplicate', INVALID, { max: 1024 }), seed: hexField(sealedDoc, 'seed', INVALID, { max: 1024 }) },
  };
}

/**
 * Parse a bundle file (bytes or text; a parsed object is re-serialized first). Checks shape,
 * internal consistency (names, policies, PCRs 0-15 only) and canonical form; no trust decisions —
 * those are verifyBundleSignature's.
 */
export async function parseBundle(input: unknown): Promise<SealedBundle> {
  try {
    const bytes = input instanceof Uint8Array ? input : new TextEncoder().encode(typeof input === 'string' ? input : `${JSON.stringify(input, null, 2)}\n`);
    const doc = parseJsonObject(bytes, INVALID, 'sealed bundle');
    if (doc.format !== BUNDLE_FORMAT) throw new SigilError(INVALID, `not a Sigil sealed bundle (format ${BUNDLE_FORMAT})`);
    const createdAt = field(doc, 'createdAt', 'string', INVALID);
    if (!ISO_TIME.test(createdAt) || Number.isNaN(Date.parse(createdAt))) throw new SigilError(INVALID, 'createdAt is not an ISO 8601 UTC time');
    const recipientDocs = field(doc, 'recipients', 'array', INVALID);
    if (recipientDocs.length === 0 || recipientDocs.length > MAX_RECIPIENTS) throw new SigilError(INVALID, `a bundle has 1-${MAX_RECIPIENTS} recipients`);
    const recipients: BundleRecipient[] = [];
    for (const entry of recipientDocs) recipients.push(await parseRecipient(entry));
    for (let i = 1; i < recipients.length; i++) {
      if (recipients[i - 1].serial >= recipients[i].serial) throw new SigilError(INVALID, 'bundle recipients must be listed once each, in ascending serial order');
    }
    const payloadDoc = field(doc, 'payload', 'object', INVALID);
    const signatureDoc = field(doc, 'signature', 'object', INVALID);
    if (signatureDoc.alg !== 'ES256') throw new SigilError(INVALID, 'the bundle signature algorithm must be ES256');
    const bundle: SealedBundle = {
      bundleId: checkBundleId(field(doc, 'bundleId', 'string', INVALID), INVALID),
      productId: checkProductId(field(doc, 'productId', 'string', INVALID), INVALID),
      epoch: integerField(doc, 'epoch', INVALID, 1),
      createdAt,
      recipients,
      vendorEscrow: parseEscrowBlob(field(doc, 'vendorEscrow', 'object', INVALID), INVALID),
      payload: {
        iv: hexField(payloadDoc, 'iv', INVALID, { size: 12 }),
        ciphertext: hexField(payloadDoc, 'ciphertext', INVALID, { max: MAX_PAYLOAD + 4096 }),
        tag: hexField(payloadDoc, 'tag', INVALID, { size: 16 }),
      },
      signature: { r: hexField(signatureDoc, 'r', INVALID, { size: 32 }), s: hexField(signatureDoc, 's', INVALID, { size: 32 }) },
    };
    const canonical = new TextEncoder().encode(bundleText(bundleDocument(bundle)));
    if (!bytesEqual(canonical, bytes)) {
      throw new SigilError('bundle.not_canonical', 'the bundle file is not byte for byte what `sigil bundle seal` writes: it was altered or reformatted');
    }
    return bundle;
  } catch (error) {
    // One family of codes for the caller: bundle.* (e.g. an unmarshal error deep in a public area
    // becomes bundle.invalid, its own message kept).
    if (error instanceof SigilError && !error.code.startsWith('bundle.')) {
      throw new SigilError(INVALID, `the sealed bundle is malformed: ${error.message}`, { reason: error.code }, { cause: error });
    }
    throw asSigilError(error, INVALID, 'the sealed bundle could not be read');
  }
}

export function findRecipient(bundle: SealedBundle, serial: string): BundleRecipient | undefined {
  return bundle.recipients.find((r) => r.serial === serial);
}
