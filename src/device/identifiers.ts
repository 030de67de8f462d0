import { SigilError } from '../core/errors.ts';

/**
 * Where a provisioned device keeps what Sigil put in its TPM, and the names in its certificates.
 * Every value here is part of the on-device format: changing one strands every device made before.
 *
 * Persistent handles (owner range, TCG handle registry 0x81000000-0x817FFFFF):
 *   0x81000001  storage root key (SRK), ECC P-256, TCG Provisioning Guidance template
 *   0x81000003  device identity key: ECC P-256 signing key, fixedTPM|fixedParent|sensitiveDataOrigin
 *   0x81000004  attestation key (AK): restricted ECC P-256 signing key
 * NV indexes:
 *   0x01500100  device certificate, DER, exactly the certificate's length; owner-written, readable by anyone
 *   0x01500101  release floor: TPM_NT_COUNTER, the lowest release (boot policy or manifest) the device accepts
 */
export const IDENTITY_KEY_HANDLE = 0x81000003;
export const ATTESTATION_KEY_HANDLE = 0x81000004;
export const DEVICE_CERT_NV_INDEX = 0x01500100;
export const RELEASE_FLOOR_NV_INDEX = 0x01500101;

/**
 * Product ID and serial in certificates. The device certificate carries
 *   - the serial in the subject's serialNumber attribute (2.5.4.5, PrintableString), as IEEE 802.1AR
 *     and the TCG device-identity guidance place a DevID's serial, and
 *   - a subjectAltName directoryName (the shape EK certificates use for TPM facts) holding the TCG
 *     Platform Certificate attributes tcg-at-platformManufacturerStr (2.23.133.5.1.1, the vendor),
 *     tcg-at-platformModel (2.23.133.5.1.4, the **product ID**) and tcg-at-platformSerial
 *     (2.23.133.5.1.6, the serial again), each a UTF8String.
 * A product certificate carries the same directoryName with platformManufacturerStr and
 * platformModel only. Readers require the subject serialNumber and platformSerial to agree.
 * (Standard OIDs only: Sigil has no enterprise number, and 2.25 UUID arcs do not survive
 * @peculiar/x509's OID encoder.)
 */
export const OID = {
  serialNumber: '2.5.4.5',
  platformManufacturer: '2.23.133.5.1.1',
  platformModel: '2.23.133.5.1.4',
  platformSerial: '2.23.133.5.1.6',
  subjectAltName: '2.5.29.17',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
} as const;

/**
 * Product IDs and serials: 1-64 characters of letters, digits, '.' and '-', starting with a letter
 * or digit. That keeps them PrintableString-safe, file-name-safe and unambiguous inside a
 * distinguished-name string.
 */
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;

export function checkProductId(value: unknown, code = 'device.product_id_invalid'): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    throw new SigilError(code, 'a product ID is 1-64 letters, digits, "." or "-", starting with a letter or digit', { value: String(value).slice(0, 80) });
  }
  return value;
}

export function checkSerial(value: unknown, code = 'device.serial_invalid'): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    throw new SigilError(code, 'a serial number is 1-64 letters, digits, "." or "-", starting with a letter or digit', { value: String(value).slice(0, 80) });
  }
  return value;
}

/** Handles and indexes in JSON files are written "0x81000003". */
export function handleText(handle: number): string {
  return `0x${handle.toString(16).padStart(8, '0')}`;
}
