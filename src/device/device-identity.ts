import type * as x509 from '@peculiar/x509';
import { SigilError } from '../core/errors.ts';
import { TPMA_OBJECT } from '../tpm/constants.ts';
import { tpmPublicToKeyObject } from '../tpm/public-key.ts';
import type { TpmPublic } from '../tpm/structures/public.ts';
import { eccSigningTemplate } from '../tpm/templates.ts';
import { nvReadAll } from '../tpm/tpm-nv.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { certifiesKey, parseCertificateDer, platformClaims, verifyChain } from './certificates.ts';
import { DEVICE_CERT_NV_INDEX, IDENTITY_KEY_HANDLE, handleText } from './identifiers.ts';
import type { VendorTrust } from './trust.ts';

/**
 * The device identity: a TPM-resident ECC P-256 signing key that can never leave the TPM
 * (fixedTPM: no duplication at all; fixedParent: not even under another parent of the same TPM;
 * sensitiveDataOrigin: the TPM made the private key, nobody else ever saw it), persistent at
 * 0x81000003 under the SRK, and its certificate from the vendor's manufacturing CA in NV 0x01500100.
 * The key has an empty authValue and noDA, like a DevID: any process allowed to use the TPM may
 * sign with it, nobody can extract it.
 */
export const IDENTITY_KEY_ATTRIBUTES =
  TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.noDA | TPMA_OBJECT.sign;

export function identityKeyTemplate(): TpmPublic {
  return eccSigningTemplate(undefined, { attributes: IDENTITY_KEY_ATTRIBUTES });
}

export interface DeviceIdentity {
  productId: string;
  serial: string;
  vendor?: string;
  certificate: x509.X509Certificate;
  identityPublic: TpmPublic;
  identityName: Uint8Array;
}

/** The device certificate's DER from NV (readable by anyone: AUTHREAD with an empty authValue). */
export async function readDeviceCertificate(tpm: Tpm): Promise<Uint8Array> {
  try {
    return await nvReadAll(tpm, DEVICE_CERT_NV_INDEX);
  } catch (error) {
    if (error instanceof SigilError && error.code === 'tpm.rc.handle') {
      throw new SigilError('device.not_provisioned', `this TPM holds no device certificate (NV ${handleText(DEVICE_CERT_NV_INDEX)}): provision it first`);
    }
    throw error;
  }
}

/** Check that a certificate names a product and serial and was issued by the manufacturing CA. */
export async function verifyDeviceCertificate(cert: x509.X509Certificate, trust: VendorTrust, at?: Date): Promise<{ productId: string; serial: string; vendor?: string }> {
  await verifyChain(cert, { roots: [trust.root], intermediates: [trust.manufacturingCa], issuer: trust.manufacturingCa, at, code: 'device.certificate', what: 'device certificate' });
  const claims = platformClaims(cert);
  if (!claims.productId || !claims.serial) {
    throw new SigilError('device.certificate_invalid', 'the device certificate carries no product ID or serial number');
  }
  return { productId: claims.productId, serial: claims.serial, vendor: claims.vendor };
}

/**
 * Who this device is, checked: the certificate in NV chains to the vendor's manufacturing CA,
 * names a product and serial, and certifies the key that sits in the TPM at 0x81000003 — with
 * the attributes that keep it there.
 */
export async function readDeviceIdentity(tpm: Tpm, trust: VendorTrust): Promise<DeviceIdentity> {
  const certificate = parseCertificateDer(await readDeviceCertificate(tpm), 'device certificate', 'device.certificate_invalid');
  const claims = await verifyDeviceCertificate(certificate, trust);
  if (!(await tpm.persistentExists(IDENTITY_KEY_HANDLE))) {
    throw new SigilError('device.not_provisioned', `this TPM holds no device identity key at ${handleText(IDENTITY_KEY_HANDLE)}`);
  }
  const { publicArea, name } = await tpm.readPublic(IDENTITY_KEY_HANDLE);
  if ((publicArea.objectAttributes & IDENTITY_KEY_ATTRIBUTES) !== IDENTITY_KEY_ATTRIBUTES) {
    throw new SigilError('device.identity_key_invalid', `the key at ${handleText(IDENTITY_KEY_HANDLE)} lacks the fixedTPM/fixedParent/sensitiveDataOrigin attributes of a device identity`);
  }
  if (!certifiesKey(certificate, tpmPublicToKeyObject(publicArea))) {
    throw new SigilError('device.identity_key_mismatch', 'the device certificate certifies another key than the identity key in this TPM');
  }
  return { ...claims, certificate, identityPublic: publicArea, identityName: name };
}
