import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { buildCertificateChain, certificateFromDer, certificatePublicJwk, certificateSignedBy, sameCertificate, validAt } from '../../core/x509-cache.ts';
import { publicAreaToJwk } from '../../tpm/jwk.ts';
import type { TpmPublic } from '../../tpm/structures/public.ts';

/**
 * EK certificates (TCG EK Credential Profile): parse, chain to a configured manufacturer CA
 * bundle, and check that the certified key is the EK the TPM actually holds. EK certificates
 * carry the TPM manufacturer, model and version in a directoryName SAN (OIDs 2.23.133.2.1-3).
 */
export interface EkCertificateInfo {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  tpmManufacturer?: string;
  tpmModel?: string;
  tpmVersion?: string;
}

const TPM_MANUFACTURER = '2.23.133.2.1';
const TPM_MODEL = '2.23.133.2.2';
const TPM_VERSION = '2.23.133.2.3';

/** Parsed once per distinct DER (core/x509-cache.ts). */
export function parseCertificate(der: Uint8Array, what = 'certificate'): x509.X509Certificate {
  try {
    return certificateFromDer(der);
  } catch (error) {
    throw asSigilError(error, 'x509.certificate_malformed', `the ${what} is not a valid DER X.509 certificate`);
  }
}

/** PEM text (one or more certificates) or DER → certificates. */
export function parseCertificates(input: Uint8Array | string): x509.X509Certificate[] {
  if (typeof input !== 'string') return [parseCertificate(input)];
  const blocks = [...input.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)];
  if (blocks.length === 0) throw new SigilError('x509.pem_invalid', 'no PEM certificate found');
  return blocks.map((m) => parseCertificate(fromBase64(m[1])));
}

export function describeEkCertificate(cert: x509.X509Certificate): EkCertificateInfo {
  const info: EkCertificateInfo = {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  for (const name of san?.names.items ?? []) {
    if (name.type !== 'dn') continue;
    // The directoryName value is rendered as "2.23.133.2.1=id:...,..." by @peculiar/x509.
    for (const part of name.value.split(/[+,]/)) {
      const [oid, value] = part.split('=').map((s) => s.trim());
      if (oid === TPM_MANUFACTURER) info.tpmManufacturer = value;
      if (oid === TPM_MODEL) info.tpmModel = value;
      if (oid === TPM_VERSION) info.tpmVersion = value;
    }
  }
  return info;
}

/**
 * Validate the EK certificate: a chain to one of `roots` through `intermediates`, every signature
 * and validity period at `at`, and the certified public key equal to `ekPublic` when given.
 */
export async function verifyEkCertificate(
  ekCertDer: Uint8Array,
  options: { roots: x509.X509Certificate[]; intermediates?: x509.X509Certificate[]; at?: Date; ekPublic?: TpmPublic },
): Promise<EkCertificateInfo> {
  const cert = parseCertificate(ekCertDer, 'EK certificate');
  const at = options.at ?? new Date();
  const chain = await buildCertificateChain(cert, [...(options.intermediates ?? []), ...options.roots]);
  const top = chain[chain.length - 1];
  if (!options.roots.some((root) => sameCertificate(root, top))) {
    throw new SigilError('tpm.ek_cert_untrusted', 'the EK certificate does not chain to a trusted EK CA', { issuer: cert.issuer, chainTop: top.subject });
  }
  for (let i = 0; i < chain.length; i++) {
    const issuer = chain[i + 1] ?? chain[i];
    // The EK certificate's own signature algorithm may be RSA-PSS or ECDSA; @peculiar/x509 maps both.
    // Signatures are memoized by content; the validity period is checked against `at` every time.
    const ok = (await certificateSignedBy(chain[i], issuer)) && validAt(chain[i], at);
    if (!ok) {
      throw new SigilError('tpm.ek_cert_invalid', `certificate "${chain[i].subject}" fails its signature or validity check`, { at: at.toISOString() });
    }
  }
  if (options.ekPublic) await assertCertifiesKey(cert, options.ekPublic);
  return describeEkCertificate(cert);
}

async function assertCertifiesKey(cert: x509.X509Certificate, ekPublic: TpmPublic): Promise<void> {
  const jwk = publicAreaToJwk(ekPublic);
  const certJwk = await certificatePublicJwk(cert);
  const same = jwk.kty === 'RSA' ? certJwk.n === jwk.n : certJwk.x === jwk.x && certJwk.y === jwk.y;
  if (!same) throw new SigilError('tpm.ek_cert_key_mismatch', 'the EK certificate certifies a different key than the TPM holds');
}
