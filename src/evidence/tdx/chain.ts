import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { bytesEqual } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { assertSignedDerFraming } from './der.ts';
import { BoundedMap, PassedPairs } from './memo.ts';

/**
 * Certificate chains of Intel's DCAP PKI: PCK leaf ← PCK Platform/Processor CA ← Intel SGX Root CA,
 * and TCB signing certificate ← root. Each link's issuer name, CA flag and ECDSA signature are
 * checked, every certificate must be valid at `at`, and the top must be one of the trusted roots
 * (byte-equal; by default only the embedded, pinned Intel root).
 *
 * Error codes carry the chain's name: `tdx.pck_chain_invalid`, `tdx.tcb_signing_chain_expired`, ...
 */
export type ChainName = 'pck_chain' | 'tcb_signing_chain';

const MAX_CHAIN = 4;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;

const parsedCertificates = new BoundedMap<string, x509.X509Certificate>(128);
const verifiedLinks = new PassedPairs<x509.X509Certificate, x509.X509Certificate>();

/** Certificates from PEM text that holds nothing else: stray text means a damaged chain. */
export function parsePemCertificates(pem: string, chain: ChainName): x509.X509Certificate[] {
  const blocks = [...pem.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw new SigilError(`tdx.${chain}_malformed`, `the ${label(chain)} holds no PEM certificate`);
  if (blocks.length > MAX_CHAIN) throw new SigilError(`tdx.${chain}_malformed`, `the ${label(chain)} holds ${blocks.length} certificates`);
  if (pem.replace(PEM_BLOCK, '').trim() !== '') throw new SigilError(`tdx.${chain}_malformed`, `the ${label(chain)} holds text outside its PEM certificates`);
  return blocks.map((block, index) => {
    // Certificates are remembered by their exact base64 text (intermediates and roots recur).
    const key = block[1].replace(/\s/g, '');
    let cert = parsedCertificates.get(key);
    if (!cert) {
      cert = parseCertificate(key, chain, index);
      parsedCertificates.set(key, cert);
    }
    return cert;
  });
}

function parseCertificate(base64: string, chain: ChainName, index: number): x509.X509Certificate {
  let der: Uint8Array;
  try {
    der = fromBase64(base64);
  } catch (error) {
    throw new SigilError(`tdx.${chain}_malformed`, `certificate ${index} of the ${label(chain)} is not base64`, { index }, { cause: error });
  }
  assertSignedDerFraming(der, `tdx.${chain}_malformed`, `certificate ${index} of the ${label(chain)}`);
  try {
    const cert = new x509.X509Certificate(der as Uint8Array<ArrayBuffer>);
    // Decode now every part used later, so a damaged field fails here as "malformed".
    void [cert.subject, cert.issuer, cert.serialNumber, cert.notBefore, cert.notAfter, cert.publicKey.rawData];
    for (const extension of cert.extensions) void extension.value;
    cert.getExtension(x509.BasicConstraintsExtension);
    return cert;
  } catch (error) {
    throw new SigilError(`tdx.${chain}_malformed`, `certificate ${index} of the ${label(chain)} is not valid DER X.509`, { index }, { cause: error });
  }
}

function label(chain: ChainName): string {
  return chain === 'pck_chain' ? 'PCK certificate chain' : 'TCB signing chain';
}

function raw(cert: x509.X509Certificate): Uint8Array {
  return new Uint8Array(cert.rawData);
}

/** Verify `certs` (leaf first, root last) up to a trusted root; returns them. */
export async function verifyChain(
  certs: x509.X509Certificate[],
  options: { chain: ChainName; at: Date; roots: x509.X509Certificate[] },
): Promise<x509.X509Certificate[]> {
  try {
    return await verifyLinks(certs, options);
  } catch (error) {
    throw asSigilError(error, `tdx.${options.chain}_malformed`, `the ${label(options.chain)} could not be decoded`);
  }
}

async function verifyLinks(certs: x509.X509Certificate[], options: { chain: ChainName; at: Date; roots: x509.X509Certificate[] }): Promise<x509.X509Certificate[]> {
  const { chain: name, at, roots } = options;
  const chain = [...certs];
  const top = chain[chain.length - 1];
  if (chain.length < 2 || !roots.some((root) => bytesEqual(raw(root), raw(top)))) {
    throw new SigilError(`tdx.${name}_untrusted`, `the ${label(name)} does not end at a trusted Intel SGX Root CA`, { top: top.subject, length: chain.length });
  }
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i];
    const issuer = chain[Math.min(i + 1, chain.length - 1)];
    if (cert.issuer !== issuer.subject) {
      throw new SigilError(`tdx.${name}_invalid`, `"${cert.subject}" is not issued by "${issuer.subject}"`, { index: i });
    }
    if (i > 0) {
      const constraints = cert.getExtension(x509.BasicConstraintsExtension);
      if (!constraints?.ca) throw new SigilError(`tdx.${name}_invalid`, `"${cert.subject}" issues certificates but is not a CA`, { index: i });
    }
    // The root is trusted by pin; its self-signature adds nothing, so only the links below are verified.
    if (i < chain.length - 1 && !verifiedLinks.has(cert, issuer)) {
      let ok = false;
      try {
        ok = await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
      } catch {
        ok = false;
      }
      if (ok) verifiedLinks.add(cert, issuer);
      else throw new SigilError(`tdx.${name}_invalid`, `the signature on "${cert.subject}" does not verify with "${issuer.subject}"`, { index: i });
    }
    if (at < cert.notBefore || at > cert.notAfter) {
      throw new SigilError(`tdx.${name}_expired`, `"${cert.subject}" is not valid at ${at.toISOString()}`, {
        index: i,
        notBefore: cert.notBefore.toISOString(),
        notAfter: cert.notAfter.toISOString(),
        at: at.toISOString(),
      });
    }
  }
  return chain;
}

/** The certificate's subject common name (CN=...), or ''. */
export function commonName(cert: x509.X509Certificate): string {
  return /(?:^|,\s*)CN=([^,]+)/.exec(cert.subject)?.[1]?.trim() ?? '';
}
