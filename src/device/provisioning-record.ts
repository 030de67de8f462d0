import type * as x509 from '@peculiar/x509';
import type { KeyObject } from 'node:crypto';
import { constantTimeEqual, Reader } from '../core/bytes.ts';
import { digest } from '../core/hash.ts';
import { SigilError, asSigilError } from '../core/errors.ts';
import { fromHex, toHex } from '../core/hex.ts';
import { verifyEkCertificate } from '../evidence/tpm/ek-certificate.ts';
import { TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT } from '../tpm/constants.ts';
import { marshal, unmarshal } from '../tpm/marshal/codec.ts';
import { objectName } from '../tpm/names.ts';
import { tpmPublicToKeyObject, verifyTpmSignature } from '../tpm/public-key.ts';
import { TPMS_ATTEST } from '../tpm/structures/attest.ts';
import { TPM2B_PUBLIC, type TpmPublic } from '../tpm/structures/public.ts';
import { TPMT_SIGNATURE, type TpmSignature } from '../tpm/structures/signature.ts';
import { certifiesKey, parseCertificatePem } from './certificates.ts';
import { IDENTITY_KEY_ATTRIBUTES, verifyDeviceCertificate } from './device-identity.ts';
import { escrowDecrypt, parseEscrowBlob, type EscrowBlob } from './escrow.ts';
import { ATTESTATION_KEY_HANDLE, DEVICE_CERT_NV_INDEX, IDENTITY_KEY_HANDLE, RELEASE_FLOOR_NV_INDEX, checkProductId, checkSerial, handleText } from './identifiers.ts';
import { field, hexField, integerField, optionalField, parseJsonObject, type Json } from './json-input.ts';
import { assertProductBinding, type VendorTrust } from './trust.ts';

/**
 * The provisioning record: what manufacturing hands the broker for enrolment, as JSON
 * ("sigil.provisioning-record.v1"). Nothing in it is secret; the hierarchy authorizations travel
 * escrowed to the vendor (escrow.ts). Fields:
 *   vendor, productId, serial, provisionedAt (ISO 8601)
 *   deviceCertificate      PEM, from the manufacturing CA (product ID and serial inside)
 *   identityKey, attestationKey, storageKey   { handle "0x8100000N", public: hex TPM2B_PUBLIC, name: hex }
 *   identityCertification  { qualifyingData, attest, signature }: TPM2_Certify of the identity key by
 *                          the AK (TPMS_ATTEST and TPMT_SIGNATURE, hex); qualifyingData =
 *                          SHA-256("sigil identity v1" ‖ 0 ‖ productId ‖ 0 ‖ serial)
 *   endorsementKey         { type "rsa"|"ecc", public, name, certificate: PEM or null }
 *   nvIndexes              { deviceCertificate: "0x01500100", releaseFloor: "0x01500101" }
 *   releaseFloor           the release the anti-rollback counter was raised to
 *   ownership              { hierarchies: ["owner", "lockout", ...], escrow: EscrowBlob }
 * The escrow plaintext is JSON { "owner": hex, "lockout": hex[, "endorsement": hex] }, its context
 * "sigil ownership v1" ‖ 0 ‖ productId ‖ 0 ‖ serial ‖ 0 ‖ EK name.
 */
export const RECORD_FORMAT = 'sigil.provisioning-record.v1';
const CODE = 'device.record_invalid';

export type Hierarchy = 'owner' | 'endorsement' | 'lockout';

export interface RecordKey {
  handle: number;
  publicArea: TpmPublic;
  name: Uint8Array;
}

export interface ProvisioningRecord {
  vendor: string;
  productId: string;
  serial: string;
  provisionedAt: string;
  deviceCertificate: x509.X509Certificate;
  identityKey: RecordKey;
  attestationKey: RecordKey;
  storageKey: RecordKey;
  identityCertification: { qualifyingData: Uint8Array; attest: Uint8Array; signature: TpmSignature; signatureBytes: Uint8Array };
  endorsementKey: { type: 'rsa' | 'ecc'; publicArea: TpmPublic; name: Uint8Array; certificate?: x509.X509Certificate };
  releaseFloor: number;
  ownership: { hierarchies: Hierarchy[]; escrow: EscrowBlob };
}

export function identityQualifyingData(productId: string, serial: string): Promise<Uint8Array> {
  return digest('SHA-256', new TextEncoder().encode(`sigil identity v1\0${productId}\0${serial}`));
}

export function ownershipContext(productId: string, serial: string, ekName: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode(`sigil ownership v1\0${productId}\0${serial}\0`);
  const out = new Uint8Array(head.length + ekName.length);
  out.set(head);
  out.set(ekName, head.length);
  return out;
}

export function recordKeyJson(key: RecordKey): Json {
  return { handle: handleText(key.handle), public: toHex(marshal(TPM2B_PUBLIC, key.publicArea)), name: toHex(key.name) };
}

function recordKey(doc: Json, name: string): RecordKey {
  const entry = field(doc, name, 'object', CODE);
  const handleTextValue = field(entry, 'handle', 'string', CODE);
  if (!/^0x81[0-9a-f]{6}$/i.test(handleTextValue)) throw new SigilError(CODE, `"${name}.handle" is not a persistent handle`);
  const publicArea = unmarshal(TPM2B_PUBLIC, hexField(entry, 'public', CODE, { max: 1024 }), CODE);
  return { handle: Number.parseInt(handleTextValue.slice(2), 16), publicArea, name: hexField(entry, 'name', CODE, { max: 66 }) };
}

export function parseProvisioningRecord(input: unknown): ProvisioningRecord {
  try {
    const doc = parseJsonObject(input, CODE, 'provisioning record');
    if (doc.format !== RECORD_FORMAT) throw new SigilError(CODE, `not a Sigil provisioning record (format ${RECORD_FORMAT})`);
    const certification = field(doc, 'identityCertification', 'object', CODE);
    const signatureBytes = hexField(certification, 'signature', CODE, { max: 1024 });
    const ek = field(doc, 'endorsementKey', 'object', CODE);
    const ekType = field(ek, 'type', 'string', CODE);
    if (ekType !== 'rsa' && ekType !== 'ecc') throw new SigilError(CODE, 'endorsementKey.type must be "rsa" or "ecc"');
    const ekCertificate = optionalField(ek, 'certificate', 'string', CODE);
    const ownership = field(doc, 'ownership', 'object', CODE);
    const hierarchies = field(ownership, 'hierarchies', 'array', CODE);
    if (hierarchies.length > 3 || hierarchies.some((h) => h !== 'owner' && h !== 'endorsement' && h !== 'lockout') || new Set(hierarchies).size !== hierarchies.length) {
      throw new SigilError(CODE, 'ownership.hierarchies lists hierarchies other than owner, endorsement, lockout');
    }
    const provisionedAt = field(doc, 'provisionedAt', 'string', CODE);
    if (Number.isNaN(Date.parse(provisionedAt))) throw new SigilError(CODE, 'provisionedAt is not a date');
    const nv = field(doc, 'nvIndexes', 'object', CODE);
    if (nv.deviceCertificate !== handleText(DEVICE_CERT_NV_INDEX) || nv.releaseFloor !== handleText(RELEASE_FLOOR_NV_INDEX)) {
      throw new SigilError(CODE, 'nvIndexes names indexes this version of Sigil does not use');
    }
    return {
      vendor: field(doc, 'vendor', 'string', CODE),
      productId: checkProductId(field(doc, 'productId', 'string', CODE), CODE),
      serial: checkSerial(field(doc, 'serial', 'string', CODE), CODE),
      provisionedAt,
      deviceCertificate: parseCertificatePem(field(doc, 'deviceCertificate', 'string', CODE), 'device certificate', CODE),
      identityKey: recordKey(doc, 'identityKey'),
      attestationKey: recordKey(doc, 'attestationKey'),
      storageKey: recordKey(doc, 'storageKey'),
      identityCertification: {
        qualifyingData: hexField(certification, 'qualifyingData', CODE, { size: 32 }),
        attest: hexField(certification, 'attest', CODE, { max: 1024 }),
        signature: unmarshal(TPMT_SIGNATURE, signatureBytes, CODE),
        signatureBytes,
      },
      endorsementKey: {
        type: ekType,
        publicArea: unmarshal(TPM2B_PUBLIC, hexField(ek, 'public', CODE, { max: 1024 }), CODE),
        name: hexField(ek, 'name', CODE, { max: 66 }),
        certificate: ekCertificate === undefined ? undefined : parseCertificatePem(ekCertificate, 'EK certificate', CODE),
      },
      releaseFloor: integerField(doc, 'releaseFloor', CODE, 1),
      ownership: { hierarchies: hierarchies as Hierarchy[], escrow: parseEscrowBlob(field(ownership, 'escrow', 'object', CODE), CODE) },
    };
  } catch (error) {
    throw asSigilError(error, CODE, 'the provisioning record could not be read');
  }
}

export interface RecordTrust {
  trust: VendorTrust;
  /** EK CA certificates; with them the EK certificate must validate and certify the record's EK. */
  ekRoots?: x509.X509Certificate[];
  ekIntermediates?: x509.X509Certificate[];
  at?: Date;
}

async function assertName(key: RecordKey, what: string): Promise<void> {
  if (!constantTimeEqual(await objectName(key.publicArea), key.name)) throw new SigilError('device.record_inconsistent', `the ${what} name does not match its public area`);
}

/**
 * What a broker checks before enrolling a device, trusting nothing in the record itself: the
 * device certificate chains to the manufacturing CA and names a known product, it certifies the
 * identity key, the identity key is TPM-resident (fixedTPM | fixedParent | sensitiveDataOrigin),
 * and the AK — a restricted TPM key — certified that very key (TPM2_Certify). With EK CAs, the EK
 * certificate validates too. The AK ↔ EK link is the broker's credential activation, not this.
 */
export async function verifyProvisioningRecord(record: ProvisioningRecord, options: RecordTrust): Promise<void> {
  const claims = await verifyDeviceCertificate(record.deviceCertificate, options.trust, options.at);
  if (claims.productId !== record.productId || claims.serial !== record.serial) {
    throw new SigilError('device.record_inconsistent', 'the record names another product or serial than its device certificate', { certificate: claims, record: { productId: record.productId, serial: record.serial } });
  }
  assertProductBinding({ device: claims.productId, artefact: record.productId, what: 'provisioning record', trust: options.trust });
  for (const [key, what] of [
    [record.identityKey, 'identity key'],
    [record.attestationKey, 'attestation key'],
    [record.storageKey, 'storage key'],
  ] as const) {
    await assertName(key, what);
  }
  if (record.identityKey.handle !== IDENTITY_KEY_HANDLE || record.attestationKey.handle !== ATTESTATION_KEY_HANDLE) {
    throw new SigilError('device.record_inconsistent', 'the record places the identity key or AK at handles Sigil does not use');
  }
  const identityAttributes = record.identityKey.publicArea.objectAttributes;
  if ((identityAttributes & IDENTITY_KEY_ATTRIBUTES) !== IDENTITY_KEY_ATTRIBUTES) {
    throw new SigilError('device.identity_key_invalid', 'the identity key is not fixedTPM | fixedParent | sensitiveDataOrigin: it could exist outside the TPM');
  }
  if (!certifiesKey(record.deviceCertificate, tpmPublicToKeyObject(record.identityKey.publicArea))) {
    throw new SigilError('device.identity_key_mismatch', 'the device certificate certifies another key than the identity key');
  }
  const akAttributes = record.attestationKey.publicArea.objectAttributes;
  const akRequired = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.restricted | TPMA_OBJECT.sign;
  if ((akAttributes & akRequired) !== akRequired) throw new SigilError('device.record_inconsistent', 'the attestation key is not a restricted TPM-resident signing key');
  const certification = record.identityCertification;
  if (!constantTimeEqual(certification.qualifyingData, await identityQualifyingData(record.productId, record.serial))) {
    throw new SigilError('device.certification_invalid', 'the identity certification was made for another product or serial');
  }
  let attest;
  try {
    const reader = new Reader(certification.attest, { errorCode: 'device.certification_invalid', what: 'TPMS_ATTEST' });
    attest = TPMS_ATTEST.read(reader);
    reader.end();
  } catch (error) {
    throw asSigilError(error, 'device.certification_invalid', 'the identity certification is not a TPMS_ATTEST');
  }
  if (attest.magic !== TPM_GENERATED_VALUE || attest.attested.type !== TPM_ST.ATTEST_CERTIFY) {
    throw new SigilError('device.certification_invalid', 'the identity certification is not a TPM-generated TPM2_Certify');
  }
  if (!constantTimeEqual(attest.attested.name, record.identityKey.name) || !constantTimeEqual(attest.extraData, certification.qualifyingData)) {
    throw new SigilError('device.certification_invalid', 'the AK certified another key or another nonce than the record states');
  }
  let signed = false;
  try {
    signed = verifyTpmSignature(record.attestationKey.publicArea, certification.attest, certification.signature);
  } catch (error) {
    throw asSigilError(error, 'device.certification_invalid', 'the identity certification signature cannot be checked');
  }
  if (!signed) throw new SigilError('device.certification_invalid', "the identity certification is not signed by the record's attestation key");
  await assertName({ handle: 0, publicArea: record.endorsementKey.publicArea, name: record.endorsementKey.name }, 'endorsement key');
  if (options.ekRoots) {
    if (!record.endorsementKey.certificate) throw new SigilError('device.ek_certificate_missing', 'the record carries no EK certificate to validate');
    const der = new Uint8Array(record.endorsementKey.certificate.rawData);
    await verifyEkCertificate(der, { roots: options.ekRoots, intermediates: options.ekIntermediates, ekPublic: record.endorsementKey.publicArea, at: options.at });
  }
}

export interface HierarchyAuths {
  owner?: Uint8Array;
  endorsement?: Uint8Array;
  lockout?: Uint8Array;
}

/** Vendor side: open a record's escrowed hierarchy authorizations with the keyset's escrow key. */
export function openOwnershipEscrow(record: ProvisioningRecord, escrowKey: KeyObject): HierarchyAuths {
  const plaintext = escrowDecrypt(escrowKey, record.ownership.escrow, ownershipContext(record.productId, record.serial, record.endorsementKey.name));
  try {
    const doc = parseJsonObject(plaintext, 'device.escrow_invalid', 'escrowed authorizations');
    const out: HierarchyAuths = {};
    for (const hierarchy of record.ownership.hierarchies) {
      const value = field(doc, hierarchy, 'string', 'device.escrow_invalid');
      out[hierarchy] = fromHex(value);
    }
    return out;
  } finally {
    plaintext.fill(0);
  }
}
