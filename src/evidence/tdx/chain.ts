import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { fromBase64 } from '../../core/hex.ts';
import { certificateFromDer, certificateSignedBy, contentId, sameCertificate, validity } from '../../core/x509-cache.ts';
import { assertSignedDerFraming } from './der.ts';

/**
 * Certificate chains of Intel's DCAP PKI: PCK leaf ← PCK Platform/Processor CA ← Intel SGX Root CA,
 * and TCB signing certificate ← root. Each link's issuer name, CA flag and ECDSA signature are
 * checked, every certificate must be valid at `at`, and the top must be one of the trusted roots
 * (byte-equal; by default only the embedded, pinned Intel root). Parsing and link signatures are
 * memoized by content (core/x509-cache.ts); validity dates are checked against `at` every time.
 *
 * Error codes carry the chain's name: `tdx.pck_chain_invalid`, `tdx.tcb_signing_chain_expired`, ...
 */
export type ChainName = 'pck_chain' | 'tcb_signing_chain';

const MAX_CHAIN = 4;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;

/**
 * Chains by their exact PEM text: the issuer chains of the collateral and a platform's PCK chain
 * recur with every quote, and this skips the PEM scan and base64 decoding too. Only successful
 * parses are kept (the certificates themselves live in core/x509-cache.ts); bounded.
 *
 * A PCK chain arrives as a new string with every quote, and a Map keyed by the whole text would
 * hash all of its ~4 KB each time: entries are bucketed by a number computed from the length and
 * a sample of the leaf's text, and a hit needs the whole text to be equal (compared natively).
 */
const parsedChains: Record<ChainName, Map<number, { pem: string; certs: x509.X509Certificate[] }[]>> = { pck_chain: new Map(), tcb_signing_chain: new Map() };
const PARSED_CHAINS = 64;
const BUCKET_SIZE = 8;

function sampleHash(pem: string): number {
  let h = pem.length;
  // 48 characters from the start of the leaf's base64 (its serial number and names), 3 apart.
  for (let i = 28; i < 28 + 48 * 3 && i < pem.length; i += 3) h = (Math.imul(h, 31) + pem.charCodeAt(i)) | 0;
  return h;
}

/** Certificates from PEM text that holds nothing else: stray text means a damaged chain. */
export function parsePemCertificates(pem: string, chain: ChainName): x509.X509Certificate[] {
  const parsed = parsedChains[chain];
  const sample = sampleHash(pem);
  let bucket = parsed.get(sample);
  const hit = bucket?.find((entry) => entry.pem === pem);
  if (hit) return [...hit.certs];
  const certs = parsePem(pem, chain);
  if (!bucket) {
    if (parsed.size >= PARSED_CHAINS) parsed.delete(parsed.keys().next().value!);
    parsed.set(sample, (bucket = []));
  }
  bucket.push({ pem, certs });
  if (bucket.length > BUCKET_SIZE) bucket.shift();
  return [...certs];
}

function parsePem(pem: string, chain: ChainName): x509.X509Certificate[] {
  const blocks = [...pem.matchAll(PEM_BLOCK)];
  if (blocks.length === 0) throw new SigilError(`tdx.${chain}_malformed`, `the ${label(chain)} holds no PEM certificate`);
  if (blocks.length > MAX_CHAIN) throw new SigilError(`tdx.${chain}_malformed`, `the ${label(chain)} holds ${blocks.length} certificates`);
  if (pem.replace(PEM_BLOCK, '').trim() !== '') throw new SigilError(`tdx.${chain}_malformed`, `the ${label(chain)} holds text outside its PEM certificates`);
  return blocks.map((block, index) => parseCertificate(block[1], chain, index));
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
    const cert = certificateFromDer(der);
    // Decode now every part used later, so a damaged field fails here as "malformed" (on a
    // certificate parsed before, these getters return what they memoized).
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

/**
 * Chains (by their certificates' contents) whose links all held: issuer names, CA flags and
 * signatures do not depend on the time, so a chain seen before only has its dates checked. A
 * chain with a broken link is never remembered and fails the full walk, in its order, every time.
 */
const soundChains = new Set<string>();
const SOUND_CHAINS = 256;

async function verifyLinks(certs: x509.X509Certificate[], options: { chain: ChainName; at: Date; roots: x509.X509Certificate[] }): Promise<x509.X509Certificate[]> {
  const { chain: name, at, roots } = options;
  const chain = [...certs];
  const top = chain[chain.length - 1];
  if (chain.length < 2 || !roots.some((root) => sameCertificate(root, top))) {
    throw new SigilError(`tdx.${name}_untrusted`, `the ${label(name)} does not end at a trusted Intel SGX Root CA`, { top: top.subject, length: chain.length });
  }
  const key = chain.map(contentId).join(',');
  if (soundChains.has(key)) {
    for (let i = 0; i < chain.length; i++) checkDates(chain[i], i, name, at);
    return chain;
  }
  await walk(chain, name, at);
  if (soundChains.size >= SOUND_CHAINS) soundChains.delete(soundChains.values().next().value!);
  soundChains.add(key);
  return chain;
}

function checkDates(cert: x509.X509Certificate, index: number, name: ChainName, at: Date): void {
  const { notBefore, notAfter } = validity(cert);
  const time = at.getTime();
  if (time < notBefore || time > notAfter) {
    throw new SigilError(`tdx.${name}_expired`, `"${cert.subject}" is not valid at ${at.toISOString()}`, {
      index,
      notBefore: cert.notBefore.toISOString(),
      notAfter: cert.notAfter.toISOString(),
      at: at.toISOString(),
    });
  }
}

/** Every link in order: issuer name, CA flag, signature (below the pinned root), dates. */
async function walk(chain: x509.X509Certificate[], name: ChainName, at: Date): Promise<void> {
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
    if (i < chain.length - 1 && !(await certificateSignedBy(cert, issuer))) {
      throw new SigilError(`tdx.${name}_invalid`, `the signature on "${cert.subject}" does not verify with "${issuer.subject}"`, { index: i });
    }
    checkDates(cert, i, name, at);
  }
}

/** The certificate's subject common name (CN=...), or ''. */
export function commonName(cert: x509.X509Certificate): string {
  return /(?:^|,\s*)CN=([^,]+)/.exec(cert.subject)?.[1]?.trim() ?? '';
}
