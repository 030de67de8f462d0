import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { SigilError } from '../../core/errors.ts';
import { crlFrom, crlIssuer, crlSignedBy, revokedEntry } from '../../core/x509-cache.ts';
import { assertSignedDerFraming } from './der.ts';

/**
 * Intel's CRLs: the Root CA CRL (revokes PCK CAs and the TCB signing certificate) and the PCK CRL
 * of the Platform or Processor CA (revokes PCK certificates). A CRL is used only when its issuer
 * is the expected CA, its signature verifies with that CA's key, and `at` lies within
 * thisUpdate..nextUpdate. Parsing and the signature check are memoized by content
 * (core/x509-cache.ts); the dates are checked against `at` every time.
 */
export type CrlName = 'root_ca_crl' | 'pck_crl';

/** DER bytes or PEM text → CRL. */
export function parseCrl(bytes: Uint8Array | string, name: CrlName): x509.X509Crl {
  let crl: x509.X509Crl;
  try {
    crl = crlFrom(bytes);
  } catch (error) {
    throw new SigilError(`tdx.${name}_malformed`, `the ${crlLabel(name)} is not a valid DER or PEM CRL`, {}, { cause: error });
  }
  assertSignedDerFraming(new Uint8Array(crl.rawData), `tdx.${name}_malformed`, crlLabel(name));
  return crl;
}

function crlLabel(name: CrlName): string {
  return name === 'root_ca_crl' ? 'Root CA CRL' : 'PCK CRL';
}

export async function checkCrl(crl: x509.X509Crl, options: { name: CrlName; issuer: x509.X509Certificate; at: Date }): Promise<void> {
  const { name, issuer, at } = options;
  if (crlIssuer(crl) !== issuer.subject) {
    throw new SigilError(`tdx.${name}_issuer_mismatch`, `the ${crlLabel(name)} is issued by "${crlIssuer(crl)}", expected "${issuer.subject}"`);
  }
  const ok = await crlSignedBy(crl, issuer);
  if (!ok) throw new SigilError(`tdx.${name}_signature_invalid`, `the ${crlLabel(name)} signature does not verify with "${issuer.subject}"`);
  const nextUpdate = crl.nextUpdate;
  if (at < crl.thisUpdate || !nextUpdate || at > nextUpdate) {
    throw new SigilError(`tdx.${name}_expired`, `the ${crlLabel(name)} is not current at ${at.toISOString()}`, {
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: nextUpdate?.toISOString(),
      at: at.toISOString(),
    });
  }
}

/** Throws `code` when `cert` is on `crl`. */
export function assertNotRevoked(crl: x509.X509Crl, cert: x509.X509Certificate, code: string, what: string): void {
  const entry = revokedEntry(crl, cert);
  if (entry) {
    throw new SigilError(code, `the ${what} "${cert.subject}" (serial ${cert.serialNumber}) is revoked`, {
      serialNumber: cert.serialNumber,
      revocationDate: entry.revocationDate?.toISOString(),
      reason: entry.reason,
    });
  }
}
