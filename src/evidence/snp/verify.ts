import 'reflect-metadata';
import type * as x509 from '@peculiar/x509';
import { bytesEqual } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import { verified, type Verified } from '../verifier.ts';
import { parseCrl, verifyEndorsementChain } from './chain.ts';
import { commonName, describeEndorsement, parseCertificates, type EndorsementInfo } from './endorsement.ts';
import type { GuestPolicy, PlatformInfo } from './flags.ts';
import { assertProduct, productFromCpuid, type SnpCpuid, type SnpProduct } from './product.ts';
import { parseSnpReport, type FirmwareVersion, type SnpReport } from './report.ts';
import type { AmdAuthority } from './roots.ts';
import { reportKeyFromSpki, verifyReportSignature, type ReportKey } from './signature.ts';
import { decodeTcb, tcbComponents, type TcbVersion } from './tcb.ts';

/** What the verifier needs besides the report. */
export interface SnpTrust {
  /** Verification time: certificates and CRLs are checked at this instant. */
  at: Date;
  /**
   * The VCEK or VLEK (DER or PEM), and/or a PEM bundle / DER list with it and its ASK/ASVK (and
   * optionally the ARK, which must then be the pinned one). Without intermediates the embedded
   * AMD ones are used.
   */
  endorsementKey?: Uint8Array | string;
  chain?: Uint8Array | string | Uint8Array[];
  /** CRLs (DER or PEM), e.g. AMD KDS vcek/v1/{product}/crl; each must verify and be current. */
  crls?: (Uint8Array | string)[];
  /** Required for version-2 reports whose certificate names no product; checked otherwise. */
  product?: SnpProduct;
  /** Replaces the embedded AMD authorities; for a private PKI in tests only. */
  authorities?: Readonly<Record<SnpProduct, AmdAuthority>>;
}

export interface SnpClaims {
  product: SnpProduct;
  signingKey: 'vcek' | 'vlek';
  reportVersion: number;
  guestSvn: number;
  policy: GuestPolicy;
  familyId: string;
  imageId: string;
  vmpl: number;
  currentTcb: TcbVersion;
  reportedTcb: TcbVersion;
  committedTcb: TcbVersion;
  launchTcb: TcbVersion;
  platformInfo: PlatformInfo;
  authorKeyEnabled: boolean;
  maskChipKey: boolean;
  reportData: string;
  measurement: string;
  hostData: string;
  idKeyDigest: string;
  authorKeyDigest: string;
  reportId: string;
  reportIdMa: string;
  chipId: string;
  cpuid?: SnpCpuid;
  currentVersion: FirmwareVersion;
  committedVersion: FirmwareVersion;
  launchMitVector?: string;
  currentMitVector?: string;
  endorsement: {
    subject: string;
    issuer: string;
    productName?: string;
    notBefore: string;
    notAfter: string;
    cspId?: string;
    /** The CN of the pinned root the chain ended in ("ARK-Milan"). */
    root: string;
    crlChecked: boolean;
    /** False only when the host masked CHIP_ID, so the VCEK's hwID could not be compared. */
    chipIdChecked: boolean;
  };
}

/**
 * The AMD extensions of a leaf, read once per parsed certificate (a pure function of its bytes;
 * certificates are shared by content, core/x509-cache.ts). Used read-only here: claims copy the
 * values they take. describeEndorsement, exported, still reads afresh for other callers.
 */
const endorsements = new WeakMap<x509.X509Certificate, EndorsementInfo>();

function endorsementOf(leaf: x509.X509Certificate): EndorsementInfo {
  let info = endorsements.get(leaf);
  if (!info) endorsements.set(leaf, (info = describeEndorsement(leaf)));
  return info;
}

/** The leaf's key (core/signature.ts caches the imported key by these bytes). */
function reportKey(leaf: x509.X509Certificate): Promise<ReportKey> {
  return reportKeyFromSpki(new Uint8Array(leaf.publicKey.rawData));
}

function collectCertificates(trust: SnpTrust): x509.X509Certificate[] {
  const certs: x509.X509Certificate[] = [];
  if (trust.endorsementKey !== undefined) certs.push(...parseCertificates(trust.endorsementKey, 'endorsement key certificate'));
  if (Array.isArray(trust.chain)) for (const der of trust.chain) certs.push(...parseCertificates(der, 'certificate chain'));
  else if (trust.chain !== undefined) certs.push(...parseCertificates(trust.chain, 'certificate chain'));
  return certs;
}

/** The product: from the report's CPUID (v3+), the certificate, and the caller; all given must agree. */
function resolveProduct(report: SnpReport, endorsement: EndorsementInfo, trust: SnpTrust): SnpProduct {
  const sources: [string, SnpProduct | undefined][] = [
    ['report CPUID', report.cpuid ? productFromCpuid(report.cpuid) : undefined],
    ['endorsement certificate', endorsement.product],
    ['caller', trust.product === undefined ? undefined : assertProduct(trust.product)],
  ];
  if (report.cpuid && !sources[0][1]) {
    throw new SigilError('snp.product_unknown', `CPUID family 0x${report.cpuid.family.toString(16)} model 0x${report.cpuid.model.toString(16)} is not a product Sigil knows`, { cpuid: report.cpuid });
  }
  const known = sources.filter((s): s is [string, SnpProduct] => s[1] !== undefined);
  if (known.length === 0) throw new SigilError('snp.product_unknown', 'the product (Milan, Genoa, Turin) cannot be told from this report or certificate: pass it');
  for (const [source, product] of known) {
    if (product !== known[0][1]) {
      throw new SigilError('snp.product_mismatch', `the ${known[0][0]} says ${known[0][1]} but the ${source} says ${product}`, Object.fromEntries(known));
    }
  }
  return known[0][1];
}

/** The endorsement certificate's TCB must be the report's REPORTED_TCB, the TCB its key was derived for. */
function checkTcbExtensions(report: SnpReport, endorsement: EndorsementInfo, product: SnpProduct): void {
  const reported = decodeTcb(report.reportedTcb, product);
  for (const component of tcbComponents(product)) {
    const certified = endorsement.tcb[component];
    if (certified === undefined) {
      throw new SigilError('snp.tcb_mismatch', `the ${endorsement.kind.toUpperCase()} has no ${component} SPL extension`, { component });
    }
    if (certified !== reported[component]) {
      throw new SigilError('snp.tcb_mismatch', `the report's reported TCB ${component} SPL is ${reported[component]} but the ${endorsement.kind.toUpperCase()} was issued for ${certified}`, {
        component,
        reported: reported[component],
        certified,
      });
    }
  }
}

/** A VCEK's hwID is the chip's CHIP_ID (Turin and later: its first 8 bytes, the rest of CHIP_ID zero). */
function checkChipId(report: SnpReport, endorsement: EndorsementInfo): boolean {
  if (endorsement.kind !== 'vcek') return false;
  if (report.keyInfo.maskChipKey && report.chipId.every((b) => b === 0)) return false;
  const hwId = endorsement.hwId;
  if (!hwId) throw new SigilError('snp.chip_id_mismatch', 'the VCEK has no hwID extension');
  const head = report.chipId.subarray(0, hwId.length);
  const rest = report.chipId.subarray(hwId.length);
  if ((hwId.length !== 64 && hwId.length !== 8) || !bytesEqual(head, hwId) || rest.some((b) => b !== 0)) {
    throw new SigilError('snp.chip_id_mismatch', 'the VCEK was issued for a different chip than the report names', {
      hwId: toHex(hwId),
      chipId: toHex(report.chipId),
    });
  }
  return true;
}

/**
 * Verify a parsed report: the signing key named by the report (VCEK or VLEK) chains to the
 * pinned ARK, signs the report, and was issued for this report's TCB (and chip, for a VCEK).
 */
export async function verifySnp(report: SnpReport, trust: SnpTrust): Promise<Verified<SnpClaims>> {
  try {
    return await verifyWithCertificates(report, trust, collectCertificates(trust));
  } catch (error) {
    // Certificate objects are parsed lazily in places; anything untyped escaping is a bad certificate.
    throw asSigilError(error, 'snp.certificate_malformed', 'a certificate could not be processed');
  }
}

async function verifyWithCertificates(report: SnpReport, trust: SnpTrust, certs: x509.X509Certificate[]): Promise<Verified<SnpClaims>> {
  if (!(trust.at instanceof Date) || Number.isNaN(trust.at.getTime())) throw new SigilError('snp.trust_invalid', 'a verification time (at) is required');
  const signingKey = report.keyInfo.signingKey;
  if (signingKey === 'none') throw new SigilError('snp.report_unsigned', 'the report says it is not signed (SIGNING_KEY = 7)');
  if (signingKey === 'reserved') throw new SigilError('snp.signing_key_invalid', `SIGNING_KEY ${report.keyInfo.signingKeyValue} is reserved`);
  const leaves = certs.filter((c) => commonName(c.subject) === (signingKey === 'vcek' ? 'SEV-VCEK' : 'SEV-VLEK'));
  if (leaves.length === 0) {
    const other = certs.some((c) => /^SEV-V(CE|LE)K$/.test(commonName(c.subject)));
    throw new SigilError(other ? 'snp.signing_key_mismatch' : 'snp.endorsement_key_missing', `the report is signed by its ${signingKey.toUpperCase()}, which was not supplied`, { signingKey });
  }
  const leaf = leaves[0];
  const endorsement = endorsementOf(leaf);
  const product = resolveProduct(report, endorsement, trust);
  const crls = (trust.crls ?? []).map(parseCrl);
  const chain = await verifyEndorsementChain(leaf, { kind: signingKey, product, supplied: certs.filter((c) => c !== leaf), at: trust.at, crls, authorities: trust.authorities });
  await verifyReportSignature(report, await reportKey(leaf));
  checkTcbExtensions(report, endorsement, product);
  const chipIdChecked = checkChipId(report, endorsement);
  return verified('snp', claimsOf(report, product, signingKey, endorsement, { root: commonName(chain.ark.subject), crlChecked: chain.crlChecked, chipIdChecked }), trust.at);
}

function claimsOf(report: SnpReport, product: SnpProduct, signingKey: 'vcek' | 'vlek', endorsement: EndorsementInfo, chain: { root: string; crlChecked: boolean; chipIdChecked: boolean }): SnpClaims {
  const tcb = (value: bigint) => decodeTcb(value, product);
  return {
    product,
    signingKey,
    reportVersion: report.version,
    guestSvn: report.guestSvn,
    policy: report.policy,
    familyId: toHex(report.familyId),
    imageId: toHex(report.imageId),
    vmpl: report.vmpl,
    currentTcb: tcb(report.currentTcb),
    reportedTcb: tcb(report.reportedTcb),
    committedTcb: tcb(report.committedTcb),
    launchTcb: tcb(report.launchTcb),
    platformInfo: report.platformInfo,
    authorKeyEnabled: report.keyInfo.authorKeyEnabled,
    maskChipKey: report.keyInfo.maskChipKey,
    reportData: toHex(report.reportData),
    measurement: toHex(report.measurement),
    hostData: toHex(report.hostData),
    idKeyDigest: toHex(report.idKeyDigest),
    authorKeyDigest: toHex(report.authorKeyDigest),
    reportId: toHex(report.reportId),
    reportIdMa: toHex(report.reportIdMa),
    chipId: toHex(report.chipId),
    ...(report.cpuid ? { cpuid: report.cpuid } : {}),
    currentVersion: report.currentVersion,
    committedVersion: report.committedVersion,
    ...(report.launchMitVector !== undefined ? { launchMitVector: report.launchMitVector.toString(16).padStart(16, '0') } : {}),
    ...(report.currentMitVector !== undefined ? { currentMitVector: report.currentMitVector.toString(16).padStart(16, '0') } : {}),
    endorsement: {
      subject: endorsement.subject,
      issuer: endorsement.issuer,
      ...(endorsement.productName !== undefined ? { productName: endorsement.productName } : {}),
      notBefore: endorsement.notBefore.toISOString(),
      notAfter: endorsement.notAfter.toISOString(),
      ...(endorsement.cspId !== undefined ? { cspId: endorsement.cspId } : {}),
      ...chain,
    },
  };
}

export interface VerifySnpReportOptions {
  at: Date;
  /** The VCEK (DER or PEM). */
  vcek?: Uint8Array | string;
  /** The VLEK (DER or PEM). */
  vlek?: Uint8Array | string;
  /** A chain: PEM bundle or DER list (leaf and/or ASK/ASVK, ARK). */
  chain?: Uint8Array | string | Uint8Array[];
  crl?: Uint8Array | string | (Uint8Array | string)[];
  product?: SnpProduct;
}

/** parse + verify in one call: raw 1184-byte report → verified claims. */
export async function verifySnpReport(bytes: Uint8Array, options: VerifySnpReportOptions): Promise<Verified<SnpClaims>> {
  const report = parseSnpReport(bytes);
  const crls = options.crl === undefined ? [] : Array.isArray(options.crl) ? options.crl : [options.crl];
  const keys = [options.vcek, options.vlek].filter((k): k is Uint8Array | string => k !== undefined);
  const chain: (Uint8Array | string)[] = [...keys];
  if (Array.isArray(options.chain)) chain.push(...options.chain);
  else if (options.chain !== undefined) chain.push(options.chain);
  const certificates = chain.flatMap((c) => parseCertificates(c, 'certificate chain'));
  try {
    return await verifyWithCertificates(report, { at: options.at, crls, ...(options.product ? { product: options.product } : {}) }, certificates);
  } catch (error) {
    throw asSigilError(error, 'snp.certificate_malformed', 'a certificate could not be processed');
  }
}
