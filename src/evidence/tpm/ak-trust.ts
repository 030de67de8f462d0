import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { toHex } from '../../core/hex.ts';
import { buildCertificateChain, certificatePublicJwk, certificateSignedBy, sameCertificate, validAt } from '../../core/x509-cache.ts';
import { TPMA_OBJECT } from '../../tpm/constants.ts';
import { publicAreaToJwk } from '../../tpm/jwk.ts';
import { objectName } from '../../tpm/names.ts';
import type { TpmPublic } from '../../tpm/structures/public.ts';
import { activationSignatureValid, type ActivationRecord } from './activation-record.ts';
import type { TpmBundle } from './bundle.ts';
import { parseCertificate, verifyEkCertificate, type EkCertificateInfo } from './ek-certificate.ts';

/**
 * Why the verifier believes the attestation key is a key in a genuine TPM. Three ways, tried in
 * this order, the first that applies decides:
 *
 *  1. pinned: the AK's TPM name is in trust.pinnedAkNames (enrolled out of band);
 *  2. AK certificate: evidence.akCertificate chains to trust.akRoots (through the evidence's and
 *     trust's intermediates), is valid at `at`, and certifies exactly the AK public key;
 *  3. EK + activation: evidence.ekCertificate chains to trust.ekRoots, and an activation record
 *     (trust.activationRecords, or evidence.activation signed by a trust.activationKeys key) binds
 *     that EK certificate to the AK's name - the verifier ran MakeCredential/ActivateCredential.
 *
 * In every case the AK must be a restricted, fixedTPM signing key: only such a key refuses to
 * sign data that starts with TPM_GENERATED_VALUE, which is what makes a quote a quote.
 */
export interface AkTrust {
  /** Hex TPM names (nameAlg || H(TPMT_PUBLIC)) of AKs enrolled out of band. */
  pinnedAkNames?: string[];
  /** Roots for AK certificates (e.g. Google's EK/AK CA for GCE), DER or parsed. */
  akRoots?: (Uint8Array | x509.X509Certificate)[];
  /** Roots for EK certificates (TPM manufacturers' CAs). */
  ekRoots?: (Uint8Array | x509.X509Certificate)[];
  /** Extra intermediates for either chain. */
  intermediates?: (Uint8Array | x509.X509Certificate)[];
  /** Activation records from the verifier's own store (trusted as they are). */
  activationRecords?: ActivationRecord[];
  /** Public keys whose signatures make an activation record inside the evidence trusted. */
  activationKeys?: (CryptoKey | JsonWebKey)[];
  /** Oldest acceptable activation, in milliseconds before `at` (default: no limit). */
  activationMaxAgeMs?: number;
}

export type AkTrustedBy = 'pinned' | 'ak-certificate' | 'ek-activation';

export interface AkIdentity {
  name: string;
  trustedBy: AkTrustedBy;
  certificate?: { subject: string; issuer: string; serialNumber: string; notBefore: string; notAfter: string };
  ek?: EkCertificateInfo & { sha256: string };
  activatedAt?: string;
}

const REQUIRED = TPMA_OBJECT.sign | TPMA_OBJECT.restricted | TPMA_OBJECT.fixedTPM;

function certificates(list: (Uint8Array | x509.X509Certificate)[] | undefined, what: string): x509.X509Certificate[] {
  return (list ?? []).map((c) => (c instanceof Uint8Array ? parseCertificate(c, what) : c));
}

export async function establishAkTrust(evidence: TpmBundle, trust: AkTrust, at: Date): Promise<AkIdentity> {
  const { akPublic } = evidence;
  if ((akPublic.objectAttributes & REQUIRED) !== REQUIRED || akPublic.objectAttributes & TPMA_OBJECT.decrypt) {
    throw new SigilError('tpm.ak_attributes_invalid', 'the attestation key is not a restricted, fixedTPM signing-only key', {
      objectAttributes: `0x${akPublic.objectAttributes.toString(16)}`,
    });
  }
  const name = toHex(await objectName(akPublic));
  if (trust.pinnedAkNames?.map((n) => n.toLowerCase()).includes(name)) return { name, trustedBy: 'pinned' };
  if (evidence.akCertificate && trust.akRoots?.length) {
    const cert = await verifyChain(evidence.akCertificate, certificates(trust.akRoots, 'AK root'), [...evidence.akCertificateChain.map((c) => parseCertificate(c, 'AK chain certificate')), ...certificates(trust.intermediates, 'intermediate')], at);
    if (!(await certifiesKey(cert, akPublic))) throw new SigilError('tpm.ak_cert_key_mismatch', 'the AK certificate certifies a different key than the one that signed the quote');
    return {
      name,
      trustedBy: 'ak-certificate',
      certificate: { subject: cert.subject, issuer: cert.issuer, serialNumber: cert.serialNumber, notBefore: cert.notBefore.toISOString(), notAfter: cert.notAfter.toISOString() },
    };
  }
  if (evidence.ekCertificate && trust.ekRoots?.length) {
    const ek = await verifyEkCertificate(evidence.ekCertificate, { roots: certificates(trust.ekRoots, 'EK root'), intermediates: certificates(trust.intermediates, 'intermediate'), at });
    const ekSha256 = toHex(await digest('SHA-256', evidence.ekCertificate));
    const record = await findActivation(evidence, trust, ekSha256, name);
    const activatedAt = new Date(record.activatedAt);
    if (activatedAt.getTime() > at.getTime()) throw new SigilError('tpm.activation_in_future', 'the activation record is dated after the verification time', { activatedAt: record.activatedAt });
    if (trust.activationMaxAgeMs !== undefined && at.getTime() - activatedAt.getTime() > trust.activationMaxAgeMs) {
      throw new SigilError('tpm.activation_expired', 'the credential activation is older than allowed', { activatedAt: record.activatedAt });
    }
    return { name, trustedBy: 'ek-activation', ek: { ...ek, sha256: ekSha256 }, activatedAt: record.activatedAt };
  }
  throw new SigilError('tpm.ak_untrusted', 'the attestation key is neither pinned, nor certified by a trusted CA, nor activated against a trusted EK', { akName: name });
}

async function findActivation(evidence: TpmBundle, trust: AkTrust, ekSha256: string, akName: string): Promise<ActivationRecord> {
  const matches = (r: ActivationRecord) => r.ekCertificateSha256 === ekSha256 && r.akName === akName;
  const stored = trust.activationRecords?.find(matches);
  if (stored) return stored;
  const carried = evidence.activation;
  if (!carried) throw new SigilError('tpm.activation_missing', 'no credential-activation record binds this AK to the EK certificate', { akName });
  if (!matches(carried)) throw new SigilError('tpm.activation_mismatch', 'the activation record names a different AK or EK certificate', { akName, recordAkName: carried.akName });
  if (!(await activationSignatureValid(carried, trust.activationKeys ?? []))) {
    throw new SigilError('tpm.activation_signature_invalid', 'the activation record is not signed by a trusted verifier key');
  }
  return carried;
}

/** Build and check the chain: every signature and validity period at `at`, CA flags on issuers. */
async function verifyChain(leafDer: Uint8Array, roots: x509.X509Certificate[], intermediates: x509.X509Certificate[], at: Date): Promise<x509.X509Certificate> {
  const leaf = parseCertificate(leafDer, 'AK certificate');
  const chain = await buildCertificateChain(leaf, [...intermediates, ...roots]);
  const top = chain[chain.length - 1];
  if (!roots.some((root) => sameCertificate(root, top))) {
    throw new SigilError('tpm.ak_cert_untrusted', 'the AK certificate does not chain to a trusted root', { issuer: leaf.issuer, chainTop: top.subject });
  }
  for (let i = 0; i < chain.length; i++) {
    const issuer = chain[i + 1] ?? chain[i];
    if (i + 1 < chain.length && !isCa(issuer)) throw new SigilError('tpm.ak_cert_chain_invalid', `"${issuer.subject}" issues certificates but is not a CA`);
    // Signatures are memoized by content (core/x509-cache.ts); the validity period is checked against `at` every time.
    if (!(await certificateSignedBy(chain[i], issuer)) || !validAt(chain[i], at)) {
      throw new SigilError('tpm.ak_cert_chain_invalid', `certificate "${chain[i].subject}" fails its signature or validity check`, { at: at.toISOString() });
    }
  }
  return leaf;
}

function isCa(cert: x509.X509Certificate): boolean {
  const constraints = cert.getExtension(x509.BasicConstraintsExtension);
  return constraints?.ca === true;
}

async function certifiesKey(cert: x509.X509Certificate, publicArea: TpmPublic): Promise<boolean> {
  const jwk = publicAreaToJwk(publicArea);
  const certJwk = await certificatePublicJwk(cert);
  return jwk.kty === 'RSA' ? certJwk.n === jwk.n && certJwk.e === jwk.e : certJwk.x === jwk.x && certJwk.y === jwk.y && certJwk.crv === jwk.crv;
}
