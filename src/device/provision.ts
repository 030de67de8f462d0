import type * as x509 from '@peculiar/x509';
import { randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { verifyEkCertificate } from '../evidence/tpm/ek-certificate.ts';
import { auth } from '../tpm/command.ts';
import { certify } from '../tpm/commands/attestation.ts';
import { evictControl } from '../tpm/commands/context.ts';
import { hierarchyChangeAuth } from '../tpm/commands/hierarchy.ts';
import { nvDefineSpace, nvReadPublic, nvWrite } from '../tpm/commands/nv.ts';
import { create, load } from '../tpm/commands/object.ts';
import { TPM_ALG, TPM_NT, TPM_RH, TPMA_NV, nvTypeBits } from '../tpm/constants.ts';
import { makeCredential } from '../tpm/credential.ts';
import { tpmPublicToKeyObject, verifyTpmSignature } from '../tpm/public-key.ts';
import { HmacSession } from '../tpm/session/hmac.ts';
import { activateCredential } from '../tpm/tpm-attest.ts';
import { createAttestationKey, endorsementKey, provisionStorageKey, readEkCertificate, type KeyType } from '../tpm/tpm-keys.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { certificatePem, issueCertificate, parseCertificateDer } from './certificates.ts';
import { identityKeyTemplate } from './device-identity.ts';
import { checkEscrowKey, escrowEncrypt } from './escrow.ts';
import { ATTESTATION_KEY_HANDLE, DEVICE_CERT_NV_INDEX, IDENTITY_KEY_HANDLE, RELEASE_FLOOR_NV_INDEX, checkProductId, checkSerial, handleText } from './identifiers.ts';
import type { Keyset } from './keyset.ts';
import { identityQualifyingData, ownershipContext, recordKeyJson, RECORD_FORMAT, type Hierarchy } from './provisioning-record.ts';
import { defineReleaseFloor } from './release-floor.ts';
import { marshal } from '../tpm/marshal/codec.ts';
import { TPM2B_PUBLIC } from '../tpm/structures/public.ts';
import { TPMT_SIGNATURE } from '../tpm/structures/signature.ts';

/**
 * Manufacturing (`sigil device provision`): on a TPM nobody owns yet, in this order —
 *  1. read the EK and its certificate; validate the certificate against the TPM vendor's CAs
 *  2. define the release-floor counter (0x01500101) at the initial release
 *  3. persist the SRK (0x81000001)
 *  4. create the device identity key under the SRK, TPM-resident, persistent at 0x81000003
 *  5. create the AK (0x81000004), prove it shares the TPM with the EK (MakeCredential /
 *     ActivateCredential), and have it certify the identity key (TPM2_Certify)
 *  6. issue the device certificate (product ID and serial inside) and store it in NV 0x01500100
 *  7. take ownership last: random 32-byte owner and lockout authorizations (and endorsement with
 *     lockEndorsement) set with HierarchyChangeAuth over a parameter-encrypted session, escrowed to
 *     the vendor in the record, never written anywhere in clear
 * and return the provisioning record. Every step before 7 uses empty hierarchy authorizations, so
 * a run that fails part-way leaves a TPM that `tpm2_clear` returns to the start.
 *
 * Endorsement stays open by default: the EK's policy is PolicySecret(TPM_RH_ENDORSEMENT), so a
 * random endorsementAuth held only by the vendor would stop the device from ever activating a
 * credential for a broker again. lockEndorsement closes it for deployments that do not need that.
 */
export interface ProvisionOptions {
  keyset: Keyset;
  productId: string;
  serial: string;
  /** TPM vendor EK CAs. Required unless allowUnverifiedEk is set (loudly). */
  ekRoots?: x509.X509Certificate[];
  ekIntermediates?: x509.X509Certificate[];
  /** Provision a TPM whose EK certificate cannot be validated (development TPMs only). */
  allowUnverifiedEk?: boolean;
  ekType?: KeyType;
  initialRelease?: number;
  lockEndorsement?: boolean;
  now?: Date;
}

export interface ProvisionResult {
  /** The provisioning record (JSON-ready; format sigil.provisioning-record.v1). */
  record: Record<string, unknown>;
  productId: string;
  serial: string;
  deviceCertificate: x509.X509Certificate;
}

async function refuseIfProvisioned(tpm: Tpm): Promise<void> {
  for (const handle of [IDENTITY_KEY_HANDLE, ATTESTATION_KEY_HANDLE]) {
    if (await tpm.persistentExists(handle)) throw new SigilError('device.already_provisioned', `this TPM already holds a key at ${handleText(handle)}: it was provisioned before`);
  }
  try {
    await tpm.client.run(nvReadPublic(DEVICE_CERT_NV_INDEX));
    throw new SigilError('device.already_provisioned', `this TPM already holds NV ${handleText(DEVICE_CERT_NV_INDEX)} (device certificate)`);
  } catch (error) {
    if (!(error instanceof SigilError) || error.code !== 'tpm.rc.handle') throw error;
  }
}

function randomAuth(): Uint8Array {
  // The TPM drops trailing zero bytes of an authValue; keep all 32 meaningful.
  const value = new Uint8Array(randomBytes(32));
  if (value[31] === 0) value[31] = 1;
  return value;
}

export async function provisionDevice(tpm: Tpm, options: ProvisionOptions): Promise<ProvisionResult> {
  const productId = checkProductId(options.productId);
  const serial = checkSerial(options.serial);
  const keyset = options.keyset;
  keyset.productCertificate(productId); // the product must exist before a device of it does
  if (!options.ekRoots && !options.allowUnverifiedEk) {
    throw new SigilError('device.ek_ca_required', 'give the TPM vendor EK CA certificates (--ek-ca), or --allow-unverified-ek for a development TPM');
  }
  // Everything that can fail without the TPM fails here, before anything on the TPM changes.
  const escrowKey = checkEscrowKey(keyset.escrowPublicKey());
  const manufacturingKey = keyset.privateKey('manufacturing-ca');
  const manufacturingCertificate = keyset.certificate('manufacturing-ca');
  await refuseIfProvisioned(tpm);
  const ekType = options.ekType ?? 'rsa';

  // 1. EK and its certificate.
  const ek = await endorsementKey(tpm, ekType);
  try {
    const ekCertDer = await readEkCertificate(tpm, ekType);
    if (options.ekRoots) {
      if (!ekCertDer) throw new SigilError('device.ek_certificate_missing', `the TPM holds no ${ekType.toUpperCase()} EK certificate`);
      await verifyEkCertificate(ekCertDer, { roots: options.ekRoots, intermediates: options.ekIntermediates, ekPublic: ek.publicArea, at: options.now });
    }

    // 2. Anti-rollback floor first: on a TPM whose counters already ran high it is what fails.
    const releaseFloor = await defineReleaseFloor(tpm, options.initialRelease ?? 1);

    // 3-5. SRK, identity key, AK.
    const srk = await provisionStorageKey(tpm);
    const identity = await tpm.client.run(create(auth(srk.handle), { inPublic: identityKeyTemplate() }));
    const identityLoaded = await tpm.client.run(load(auth(srk.handle), identity.outPrivate, identity.outPublic));
    try {
      await tpm.client.run(evictControl(auth(TPM_RH.OWNER), identityLoaded.handle, IDENTITY_KEY_HANDLE));
    } finally {
      await tpm.flush(identityLoaded.handle);
    }
    const ak = await createAttestationKey(tpm, srk, 'ecc');
    try {
      await tpm.client.run(evictControl(auth(TPM_RH.OWNER), ak.handle, ATTESTATION_KEY_HANDLE));
    } finally {
      await tpm.flush(ak.handle);
    }
    const akPersistent = { ...ak, handle: ATTESTATION_KEY_HANDLE, transient: false };
    const challenge = new Uint8Array(randomBytes(32));
    const activated = await activateCredential(tpm, akPersistent, ek, await makeCredential({ ekPublic: ek.publicArea, objectName: ak.name, credential: challenge }));
    if (!constantTimeEqual(activated, challenge)) throw new SigilError('device.ak_activation_failed', 'the AK could not be shown to live in the same TPM as the EK');
    const qualifyingData = await identityQualifyingData(productId, serial);
    const certified = await tpm.client.run(certify(auth(IDENTITY_KEY_HANDLE), auth(ATTESTATION_KEY_HANDLE), qualifyingData));
    if (!verifyTpmSignature(ak.publicArea, certified.attestBytes, certified.signature)) {
      throw new SigilError('device.certification_invalid', 'the AK signature over the identity key does not verify');
    }

    // 6. Device certificate into NV.
    const identityPublic = identity.outPublic;
    const deviceCertificate = await issueCertificate({
      role: 'device',
      commonName: serial,
      vendor: keyset.vendor,
      productId,
      serial,
      subjectKey: tpmPublicToKeyObject(identityPublic),
      issuerKey: manufacturingKey,
      issuerCertificate: manufacturingCertificate,
      notBefore: options.now,
    });
    const der = new Uint8Array(deviceCertificate.rawData);
    const nvAttributes = nvTypeBits(TPM_NT.ORDINARY) | TPMA_NV.OWNERWRITE | TPMA_NV.AUTHREAD | TPMA_NV.OWNERREAD | TPMA_NV.NO_DA;
    await tpm.client.run(nvDefineSpace(auth(TPM_RH.OWNER), new Uint8Array(0), { nvIndex: DEVICE_CERT_NV_INDEX, nameAlg: TPM_ALG.SHA256, attributes: nvAttributes, authPolicy: new Uint8Array(0), dataSize: der.length }));
    for (let offset = 0; offset < der.length; offset += 1024) {
      await tpm.client.run(nvWrite(auth(TPM_RH.OWNER), DEVICE_CERT_NV_INDEX, der.subarray(offset, offset + 1024), offset));
    }

    // 7. Ownership, last.
    const hierarchies: Hierarchy[] = options.lockEndorsement ? ['owner', 'endorsement', 'lockout'] : ['owner', 'lockout'];
    const auths: Record<string, string> = {};
    const handles: Record<Hierarchy, number> = { owner: TPM_RH.OWNER, endorsement: TPM_RH.ENDORSEMENT, lockout: TPM_RH.LOCKOUT };
    const encrypting = await HmacSession.start(tpm.client, { salt: { handle: srk.handle, publicArea: srk.publicArea }, decrypt: true });
    try {
      for (const hierarchy of hierarchies) {
        const value = randomAuth();
        await tpm.client.run(hierarchyChangeAuth(auth(handles[hierarchy]), value), { extraSessions: [encrypting] });
        auths[hierarchy] = toHex(value);
        value.fill(0);
      }
    } finally {
      await encrypting.flush(tpm.client).catch(() => undefined);
    }
    const plaintext = new TextEncoder().encode(JSON.stringify(auths));
    const ownershipEscrow = escrowEncrypt(escrowKey, plaintext, ownershipContext(productId, serial, ek.name));
    plaintext.fill(0);
    for (const key of Object.keys(auths)) auths[key] = '';

    const record = {
      format: RECORD_FORMAT,
      vendor: keyset.vendor,
      productId,
      serial,
      provisionedAt: (options.now ?? new Date()).toISOString(),
      deviceCertificate: certificatePem(deviceCertificate),
      identityKey: recordKeyJson({ handle: IDENTITY_KEY_HANDLE, publicArea: identityPublic, name: identityLoaded.name }),
      attestationKey: recordKeyJson({ handle: ATTESTATION_KEY_HANDLE, publicArea: ak.publicArea, name: ak.name }),
      storageKey: recordKeyJson({ handle: srk.handle, publicArea: srk.publicArea, name: srk.name }),
      identityCertification: { qualifyingData: toHex(qualifyingData), attest: toHex(certified.attestBytes), signature: toHex(marshal(TPMT_SIGNATURE, certified.signature)) },
      endorsementKey: {
        type: ekType,
        public: toHex(marshal(TPM2B_PUBLIC, ek.publicArea)),
        name: toHex(ek.name),
        certificate: ekCertDer ? certificatePem(parseCertificateDer(ekCertDer, 'EK certificate')) : null,
      },
      nvIndexes: { deviceCertificate: handleText(DEVICE_CERT_NV_INDEX), releaseFloor: handleText(RELEASE_FLOOR_NV_INDEX) },
      releaseFloor,
      ownership: { hierarchies, escrow: ownershipEscrow },
    };
    return { record, productId, serial, deviceCertificate };
  } finally {
    await tpm.flush(ek.handle).catch(() => undefined);
  }
}
