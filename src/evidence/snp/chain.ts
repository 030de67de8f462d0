import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { fromBase64, toHex } from '../../core/hex.ts';
import { certificateSignedBy, crlFrom, crlIssuer, crlSignedBy, revokedEntry, sameCertificate } from '../../core/x509-cache.ts';
import { assertStrictSignedDer } from './der.ts';
import { commonName, parseCertificates, type EndorsementKind } from './endorsement.ts';
import type { SnpProduct } from './product.ts';
import { AMD_AUTHORITIES, type AmdAuthority } from './roots.ts';

/**
 * The endorsement chain: VCEK ← ASK ← ARK, or VLEK ← ASVK ← ARK. The ARK is always the pinned,
 * embedded one for the product; an intermediate may come from the caller (e.g. a KDS
 * cert_chain, the extended-report certificate table) or from the embedded copies, and must be
 * signed by that ARK. Every signature is RSASSA-PSS/SHA-384 (checked by @peculiar/x509 over
 * WebCrypto), every certificate must be valid at `at`, and a supplied CRL is applied. Parsing,
 * signatures and CRL lookups are memoized by content (core/x509-cache.ts); every date decision
 * (validity, CRL freshness, revocation date) is made against `at` on every call.
 */
export interface ChainOptions {
  kind: EndorsementKind;
  product: SnpProduct;
  /** Certificates the caller supplied besides the leaf (ASK/ASVK, ARK), in any order. */
  supplied: x509.X509Certificate[];
  at: Date;
  crls: x509.X509Crl[];
  /** Replaces the embedded AMD authorities (tests with a private PKI). Never from untrusted input. */
  authorities?: Readonly<Record<SnpProduct, AmdAuthority>>;
}

export interface ChainResult {
  ark: x509.X509Certificate;
  intermediate: x509.X509Certificate;
  crlChecked: boolean;
}

interface Anchor {
  ark: x509.X509Certificate;
  intermediates: Record<EndorsementKind, x509.X509Certificate>;
}

const anchorCache = new WeakMap<object, Map<SnpProduct, Promise<Anchor>>>();

function pemCertificate(pem: string): x509.X509Certificate {
  return parseCertificates(pem, 'embedded AMD certificate')[0];
}

/** Signature only (cached by both certificates' DER); a hostile certificate that makes a getter throw is "not signed by". */
function signedBy(child: x509.X509Certificate, issuer: x509.X509Certificate): Promise<boolean> {
  if (child.issuer !== issuer.subject) return Promise.resolve(false);
  return certificateSignedBy(child, issuer);
}

/** The pinned ARK (digest checked, self-signature checked) and the embedded ASK/ASVK it signed; once per process. */
function anchorFor(product: SnpProduct, authorities: Readonly<Record<SnpProduct, AmdAuthority>>): Promise<Anchor> {
  let perSet = anchorCache.get(authorities);
  if (!perSet) anchorCache.set(authorities, (perSet = new Map()));
  let anchor = perSet.get(product);
  if (!anchor) {
    anchor = (async () => {
      const authority = authorities[product];
      const ark = pemCertificate(authority.ark);
      const arkDigest = toHex(await digest('SHA-256', new Uint8Array(ark.rawData)));
      if (arkDigest !== authority.arkSha256) {
        throw new SigilError('snp.ark_untrusted', `the embedded ${product} ARK does not match its pinned SHA-256`, { expected: authority.arkSha256, actual: arkDigest });
      }
      const ask = pemCertificate(authority.ask);
      const asvk = pemCertificate(authority.asvk);
      if (!(await signedBy(ark, ark)) || !(await signedBy(ask, ark)) || !(await signedBy(asvk, ark))) {
        throw new SigilError('snp.ark_untrusted', `the embedded ${product} AMD certificates do not verify under their ARK`);
      }
      return { ark, intermediates: { vcek: ask, vlek: asvk } };
    })();
    perSet.set(product, anchor);
    anchor.catch(() => perSet.delete(product));
  }
  return anchor;
}

function assertValidAt(cert: x509.X509Certificate, at: Date, role: string): void {
  if (at < cert.notBefore || at > cert.notAfter) {
    throw new SigilError('snp.certificate_expired', `the ${role} certificate "${commonName(cert.subject)}" is not valid at ${at.toISOString()} (valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`, {
      role,
      at: at.toISOString(),
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
    });
  }
}

const isSelfIssued = (cert: x509.X509Certificate) => cert.subject === cert.issuer;

/** Verify `leaf` up to the product's pinned ARK; returns the chain used. */
export async function verifyEndorsementChain(leaf: x509.X509Certificate, options: ChainOptions): Promise<ChainResult> {
  const { kind, product, at } = options;
  const chainError = `snp.${kind}_chain_invalid`;
  const anchor = await anchorFor(product, options.authorities ?? AMD_AUTHORITIES);
  const ark = anchor.ark;
  // A supplied root must be the pinned one: a chain that brings its own ARK is refused loudly.
  for (const cert of options.supplied) {
    if (isSelfIssued(cert) && !sameCertificate(cert, ark)) {
      throw new SigilError('snp.ark_untrusted', `the supplied root "${commonName(cert.subject)}" is not AMD's pinned ${product} ARK`, { subject: cert.subject });
    }
  }
  const expectedName = kind === 'vcek' ? `SEV-${product}` : `SEV-VLEK-${product}`;
  const embedded = anchor.intermediates[kind];
  const candidates = [...options.supplied.filter((c) => !isSelfIssued(c) && c.subject === leaf.issuer), embedded];
  let intermediate: x509.X509Certificate | undefined;
  for (const candidate of candidates) {
    if (commonName(candidate.subject) !== expectedName) continue;
    const trusted = sameCertificate(candidate, embedded) || (await signedBy(candidate, ark));
    if (trusted && (await signedBy(leaf, candidate))) {
      intermediate = candidate;
      break;
    }
  }
  if (!intermediate) {
    throw new SigilError(chainError, `the ${kind.toUpperCase()} is not signed by AMD's ${expectedName} key under the pinned ARK-${product}`, {
      issuer: leaf.issuer,
      product,
    });
  }
  assertValidAt(leaf, at, kind.toUpperCase());
  assertValidAt(intermediate, at, kind === 'vcek' ? 'ASK' : 'ASVK');
  assertValidAt(ark, at, 'ARK');
  for (const crl of options.crls) await applyCrl(crl, [ark, intermediate, leaf], at);
  return { ark, intermediate, crlChecked: options.crls.length > 0 };
}

/** DER bytes or PEM text → CRL. */
export function parseCrl(input: Uint8Array | string): x509.X509Crl {
  try {
    if (typeof input === 'string') {
      const match = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(input);
      if (!match) throw new SigilError('snp.crl_malformed', 'no PEM "X509 CRL" block found');
      let der: Uint8Array;
      try {
        der = fromBase64(match[1]);
      } catch (error) {
        throw new SigilError('snp.crl_malformed', 'the PEM CRL is not valid base64', {}, { cause: error });
      }
      input = der;
    }
    assertStrictSignedDer(input, 'crl');
    return crlFrom(input);
  } catch (error) {
    throw asSigilError(error, 'snp.crl_malformed', 'the CRL is not a valid X.509 CRL');
  }
}

/**
 * AMD KDS serves one CRL per product (vcek/v1/{product}/crl), signed by the ARK, listing revoked
 * ASKs/ASVKs. The CRL must be signed by a certificate of this chain and current at `at`; every
 * certificate that issuer issued is looked up in it.
 */
async function applyCrl(crl: x509.X509Crl, chain: x509.X509Certificate[], at: Date): Promise<void> {
  let issuer: x509.X509Certificate | undefined;
  const crlName = crlIssuer(crl);
  for (const cert of chain) {
    if (cert.subject !== crlName) continue;
    if (await crlSignedBy(crl, cert)) {
      issuer = cert;
      break;
    }
  }
  if (!issuer) throw new SigilError('snp.crl_invalid', `the CRL from "${commonName(crlName)}" is not signed by a certificate of this chain`, { issuer: crlName });
  if (at < crl.thisUpdate || (crl.nextUpdate && at > crl.nextUpdate)) {
    throw new SigilError('snp.crl_not_current', `the CRL is not current at ${at.toISOString()}`, {
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: crl.nextUpdate?.toISOString(),
    });
  }
  for (const cert of chain) {
    if (cert === issuer || cert.issuer !== issuer.subject) continue;
    const entry = revokedEntry(crl, cert);
    if (entry && entry.revocationDate <= at) {
      throw new SigilError('snp.certificate_revoked', `the certificate "${commonName(cert.subject)}" (serial ${cert.serialNumber}) is revoked since ${entry.revocationDate.toISOString()}`, {
        subject: cert.subject,
        serialNumber: cert.serialNumber,
      });
    }
  }
}
