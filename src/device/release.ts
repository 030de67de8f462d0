import type * as x509 from '@peculiar/x509';
import { createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { SigilError } from '../core/errors.ts';
import { fromBase64, toBase64 } from '../core/hex.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { certificatePem, parseCertificatePem, platformClaims, verifyChain } from './certificates.ts';
import { readDeviceIdentity } from './device-identity.ts';
import { checkProductId } from './identifiers.ts';
import { field, integerField, optionalField, parseJsonObject } from './json-input.ts';
import { advanceReleaseFloor, assertNotRolledBack, checkRelease } from './release-floor.ts';
import { assertProductBinding, type VendorTrust } from './trust.ts';

/**
 * Signed release statements: the smallest signed manifest — "release N of product P" plus any
 * content — signed by the product's key, whose certificate (from the vendor's product CA) names
 * the product. The image chain's full product manifest (targets, digests) builds on the same three
 * checks this file makes: product binding, chain to the product CA, and the anti-rollback floor.
 *
 * Envelope (JSON, "sigil.signed-release.v1"):
 *   { "format": "sigil.signed-release.v1",
 *     "payload": base64 of the statement's exact UTF-8 JSON bytes,
 *     "signature": base64 DER ECDSA over those bytes (SHA-256 for P-256 keys),
 *     "certificate": PEM of the product certificate }
 * Statement: { "format": "sigil.release.v1", "productId", "release", "issuedAt" (ISO 8601),
 *              "expires"? (ISO 8601), "content"? (any JSON) }
 * The signature covers the payload bytes as they are, so nothing is re-serialised before checking.
 */
export const SIGNED_RELEASE_FORMAT = 'sigil.signed-release.v1';
export const RELEASE_FORMAT = 'sigil.release.v1';
const CODE = 'device.release_invalid';

export interface ReleaseStatement {
  productId: string;
  release: number;
  issuedAt: string;
  expires?: string;
  content?: unknown;
}

export interface SignedRelease {
  statement: ReleaseStatement;
  payload: Uint8Array;
  signature: Uint8Array;
  certificate: x509.X509Certificate;
}

export function signRelease(statement: ReleaseStatement, productKey: KeyObject, productCertificate: x509.X509Certificate): Record<string, string> {
  checkProductId(statement.productId);
  checkRelease(statement.release);
  const certified = platformClaims(productCertificate).productId;
  if (certified !== statement.productId) {
    throw new SigilError('device.product_mismatch', `the product key for ${certified} cannot sign a release of ${statement.productId}`, { certified, statement: statement.productId });
  }
  const payload = new TextEncoder().encode(JSON.stringify({ format: RELEASE_FORMAT, ...statement }));
  const signature = nodeSign('sha256', payload, productKey);
  return { format: SIGNED_RELEASE_FORMAT, payload: toBase64(payload), signature: toBase64(new Uint8Array(signature)), certificate: certificatePem(productCertificate) };
}

export function parseSignedRelease(input: unknown): SignedRelease {
  const envelope = parseJsonObject(input, CODE, 'signed release');
  if (envelope.format !== SIGNED_RELEASE_FORMAT) throw new SigilError(CODE, `not a Sigil signed release (format ${SIGNED_RELEASE_FORMAT})`);
  const base64 = (name: string, max: number) => {
    const text = field(envelope, name, 'string', CODE);
    if (text.length > max || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw new SigilError(CODE, `field "${name}" is not base64`);
    return fromBase64(text);
  };
  const payload = base64('payload', 1024 * 1024);
  const signature = base64('signature', 512);
  const certificate = parseCertificatePem(field(envelope, 'certificate', 'string', CODE), 'product certificate', CODE);
  const doc = parseJsonObject(payload, CODE, 'release statement');
  if (doc.format !== RELEASE_FORMAT) throw new SigilError(CODE, `the signed payload is not a release statement (format ${RELEASE_FORMAT})`);
  const issuedAt = field(doc, 'issuedAt', 'string', CODE);
  const expires = optionalField(doc, 'expires', 'string', CODE);
  for (const [name, value] of [['issuedAt', issuedAt], ['expires', expires]] as const) {
    if (value !== undefined && Number.isNaN(Date.parse(value))) throw new SigilError(CODE, `field "${name}" is not a date`);
  }
  return {
    statement: {
      productId: checkProductId(field(doc, 'productId', 'string', CODE), CODE),
      release: integerField(doc, 'release', CODE, 1),
      issuedAt,
      expires,
      content: doc.content,
    },
    payload,
    signature,
    certificate,
  };
}

/**
 * Check a signed release for this device: the certificate chains to the vendor's product CA and
 * is the trust bundle's certificate for the product; device certificate, product certificate and
 * statement name the same product; the signature holds; it has not expired.
 */
export async function verifySignedRelease(release: SignedRelease, trust: VendorTrust, deviceProductId: string, now = new Date()): Promise<ReleaseStatement> {
  await verifyChain(release.certificate, { roots: [trust.root], intermediates: [trust.productCa], issuer: trust.productCa, code: 'device.release_signer', what: 'release signing certificate', at: now });
  const certified = platformClaims(release.certificate).productId;
  if (certified !== release.statement.productId) {
    throw new SigilError('device.product_mismatch', `the release is for product ${release.statement.productId} but is signed with the certificate of product ${certified}`, {
      statement: release.statement.productId,
      certificate: certified,
    });
  }
  assertProductBinding({ device: deviceProductId, artefact: release.statement.productId, what: 'release', trust });
  const key = createPublicKey({ key: Buffer.from(release.certificate.publicKey.rawData), format: 'der', type: 'spki' });
  if (!nodeVerify('sha256', release.payload, key, release.signature)) {
    throw new SigilError('device.release_signature_invalid', 'the release signature does not verify with its product certificate');
  }
  if (release.statement.expires !== undefined && Date.parse(release.statement.expires) <= now.getTime()) {
    throw new SigilError('device.release_expired', `the release expired at ${release.statement.expires}`, { expires: release.statement.expires });
  }
  return release.statement;
}

/**
 * Accept a release on the device: verify it, refuse it when older than the floor, and raise the
 * floor to it, so every older release (and boot policy) is refused from now on.
 */
export async function acceptRelease(tpm: Tpm, trust: VendorTrust, input: unknown, now?: Date): Promise<{ statement: ReleaseStatement; floor: number }> {
  const release = parseSignedRelease(input);
  const identity = await readDeviceIdentity(tpm, trust);
  const statement = await verifySignedRelease(release, trust, identity.productId, now);
  await assertNotRolledBack(tpm, statement.release, 'release');
  return { statement, floor: await advanceReleaseFloor(tpm, statement.release) };
}
