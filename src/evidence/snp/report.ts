import { Reader } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { decodeGuestPolicy, decodeKeyInfo, decodePlatformInfo, type GuestPolicy, type KeyInfo, type PlatformInfo } from './flags.ts';
import { u32le, u64le, u8 } from './little-endian.ts';
import type { SnpCpuid } from './product.ts';

/**
 * ATTESTATION_REPORT, SEV-SNP Firmware ABI 1.58 (AMD pub. 56860), table 23. 1184 bytes,
 * little-endian; the signature at 0x2A0 covers bytes 0x000..0x29F.
 *
 *   0x000 VERSION u32          0x004 GUEST_SVN u32         0x008 POLICY u64
 *   0x010 FAMILY_ID [16]       0x020 IMAGE_ID [16]         0x030 VMPL u32
 *   0x034 SIGNATURE_ALGO u32   0x038 CURRENT_TCB u64       0x040 PLATFORM_INFO u64
 *   0x048 AUTHOR_KEY_EN/MASK_CHIP_KEY/SIGNING_KEY u32      0x04C reserved u32
 *   0x050 REPORT_DATA [64]     0x090 MEASUREMENT [48]      0x0C0 HOST_DATA [32]
 *   0x0E0 ID_KEY_DIGEST [48]   0x110 AUTHOR_KEY_DIGEST [48]
 *   0x140 REPORT_ID [32]       0x160 REPORT_ID_MA [32]     0x180 REPORTED_TCB u64
 *   0x188 CPUID_FAM_ID u8, 0x189 CPUID_MOD_ID u8, 0x18A CPUID_STEP u8 (version 3+; reserved in 2)
 *   0x18B reserved [21]        0x1A0 CHIP_ID [64]          0x1E0 COMMITTED_TCB u64
 *   0x1E8 CURRENT_BUILD, CURRENT_MINOR, CURRENT_MAJOR u8, reserved u8
 *   0x1EC COMMITTED_BUILD, COMMITTED_MINOR, COMMITTED_MAJOR u8, reserved u8
 *   0x1F0 LAUNCH_TCB u64
 *   0x1F8 LAUNCH_MIT_VECTOR u64, 0x200 CURRENT_MIT_VECTOR u64 (version 5+; reserved before)
 *   0x208 reserved [152]       0x2A0 SIGNATURE [512]: R [72] LE, S [72] LE, reserved [368]
 *
 * Version 2 is ABI ≤ 1.54, 3 adds the CPUID fields (1.55), 4 is not public (AMD embargo; its
 * public fields are those of 3), 5 adds the mitigation vectors (1.58). Later versions are parsed
 * with the version-5 layout: AMD only ever carves new fields out of reserved space.
 */
export const SNP_REPORT_SIZE = 0x4a0;
export const SNP_SIGNED_SIZE = 0x2a0;
export const SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1;

export interface FirmwareVersion {
  major: number;
  minor: number;
  build: number;
}

export interface SnpReport {
  /** The bytes the firmware signed (0x000..0x29F). */
  signedBytes: Uint8Array;
  version: number;
  guestSvn: number;
  policy: GuestPolicy;
  policyValue: bigint;
  familyId: Uint8Array;
  imageId: Uint8Array;
  vmpl: number;
  signatureAlgo: number;
  currentTcb: bigint;
  platformInfo: PlatformInfo;
  platformInfoValue: bigint;
  keyInfo: KeyInfo;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: bigint;
  /** Present from version 3 on. */
  cpuid?: SnpCpuid;
  chipId: Uint8Array;
  committedTcb: bigint;
  currentVersion: FirmwareVersion;
  committedVersion: FirmwareVersion;
  launchTcb: bigint;
  /** Present from version 5 on. */
  launchMitVector?: bigint;
  currentMitVector?: bigint;
  /** Signature R and S as stored: 72-byte little-endian, zero-extended. */
  signatureR: Uint8Array;
  signatureS: Uint8Array;
}

function firmwareVersion(r: Reader): FirmwareVersion {
  const build = u8(r);
  const minor = u8(r);
  const major = u8(r);
  r.skip(1); // reserved
  return { major, minor, build };
}

/** Parse a raw 1184-byte report. Untrusted input: only SigilError('snp.*') comes out. */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  if (!(bytes instanceof Uint8Array)) throw new SigilError('snp.report_malformed', 'an SNP report must be bytes');
  if (bytes.length < SNP_REPORT_SIZE) {
    throw new SigilError('snp.report_truncated', `an SNP report is ${SNP_REPORT_SIZE} bytes, got ${bytes.length}`, { length: bytes.length });
  }
  if (bytes.length > SNP_REPORT_SIZE) {
    throw new SigilError('snp.report_trailing_bytes', `an SNP report is ${SNP_REPORT_SIZE} bytes, got ${bytes.length}`, { length: bytes.length });
  }
  try {
    // One private copy; every field is a view of it (owned) rather than a copy of its own.
    const own = bytes.slice();
    const r = new Reader(own, { errorCode: 'snp.report_truncated', what: 'SNP report', owned: true });
    const version = u32le(r);
    if (version < 2) throw new SigilError('snp.report_version_unsupported', `SNP report version ${version} predates the ABI Sigil supports (2 and later)`, { version });
    const guestSvn = u32le(r);
    const policyValue = u64le(r);
    const familyId = r.take(16);
    const imageId = r.take(16);
    const vmpl = u32le(r);
    const signatureAlgo = u32le(r);
    const currentTcb = u64le(r);
    const platformInfoValue = u64le(r);
    const keyInfo = decodeKeyInfo(u32le(r));
    r.skip(4); // 0x04C reserved
    const reportData = r.take(64);
    const measurement = r.take(48);
    const hostData = r.take(32);
    const idKeyDigest = r.take(48);
    const authorKeyDigest = r.take(48);
    const reportId = r.take(32);
    const reportIdMa = r.take(32);
    const reportedTcb = u64le(r);
    const cpuidBytes = r.take(3); // 0x188
    r.skip(21); // 0x18B reserved
    const chipId = r.take(64); // 0x1A0
    const committedTcb = u64le(r); // 0x1E0
    const currentVersion = firmwareVersion(r); // 0x1E8
    const committedVersion = firmwareVersion(r); // 0x1EC
    const launchTcb = u64le(r); // 0x1F0
    const launchMitVector = u64le(r); // 0x1F8
    const currentMitVector = u64le(r); // 0x200
    r.skip(SNP_SIGNED_SIZE - 0x208); // reserved to 0x29F
    const signatureR = r.take(72); // 0x2A0
    const signatureS = r.take(72); // 0x2E8
    r.skip(368); // reserved to 0x4A0
    r.end();
    return {
      signedBytes: own.subarray(0, SNP_SIGNED_SIZE),
      version,
      guestSvn,
      policy: decodeGuestPolicy(policyValue),
      policyValue,
      familyId,
      imageId,
      vmpl,
      signatureAlgo,
      currentTcb,
      platformInfo: decodePlatformInfo(platformInfoValue),
      platformInfoValue,
      keyInfo,
      reportData,
      measurement,
      hostData,
      idKeyDigest,
      authorKeyDigest,
      reportId,
      reportIdMa,
      reportedTcb,
      ...(version >= 3 ? { cpuid: { family: cpuidBytes[0], model: cpuidBytes[1], stepping: cpuidBytes[2] } } : {}),
      chipId,
      committedTcb,
      currentVersion,
      committedVersion,
      launchTcb,
      ...(version >= 5 ? { launchMitVector, currentMitVector } : {}),
      signatureR,
      signatureS,
    };
  } catch (error) {
    throw asSigilError(error, 'snp.report_malformed', 'the SNP report could not be parsed');
  }
}
