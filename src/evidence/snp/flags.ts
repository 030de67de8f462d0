/**
 * Bit fields of the attestation report, decoded by name (SEV-SNP Firmware ABI 1.58). Unknown
 * bits are kept (as `reservedBits`) rather than rejected: the signature covers them, and policy
 * decides what to do with them. Decoding here holds no policy.
 */

/** GUEST_POLICY (table 9): what the guest owner allowed at launch. */
export interface GuestPolicy {
  abiMinor: number;
  abiMajor: number;
  /** bit 16: the host may run the guest with SMT enabled. */
  smt: boolean;
  /** bit 17: reserved, must be one. */
  reservedOne: boolean;
  /** bit 18: a migration agent may be associated with the guest. */
  migrateMa: boolean;
  /** bit 19: the host may debug (decrypt) the guest. */
  debug: boolean;
  /** bit 20: the guest may only be activated on one socket. */
  singleSocket: boolean;
  /** bit 21: CXL may be populated with devices or memory. */
  cxlAllow: boolean;
  /** bit 22: AES-256-XTS memory encryption is required. */
  memAes256Xts: boolean;
  /** bit 23: running average power limit (RAPL) must be disabled. */
  raplDis: boolean;
  /** bit 24: ciphertext hiding for DRAM must be enabled. */
  ciphertextHiding: boolean;
  /** bit 25: page swap and page move commands are disabled for the guest. */
  pageSwapDisable: boolean;
  /** bits 26-63 as a hex u64 (zero on every firmware Sigil knows). */
  reservedBits: string;
  /** The raw u64 as hex. */
  hex: string;
}

const bit = (value: bigint, index: number) => ((value >> BigInt(index)) & 1n) === 1n;

export function decodeGuestPolicy(value: bigint): GuestPolicy {
  return {
    abiMinor: Number(value & 0xffn),
    abiMajor: Number((value >> 8n) & 0xffn),
    smt: bit(value, 16),
    reservedOne: bit(value, 17),
    migrateMa: bit(value, 18),
    debug: bit(value, 19),
    singleSocket: bit(value, 20),
    cxlAllow: bit(value, 21),
    memAes256Xts: bit(value, 22),
    raplDis: bit(value, 23),
    ciphertextHiding: bit(value, 24),
    pageSwapDisable: bit(value, 25),
    reservedBits: (value >> 26n << 26n).toString(16),
    hex: value.toString(16),
  };
}

/** PLATFORM_INFO (table 23, offset 0x40): the platform's state when the report was made. */
export interface PlatformInfo {
  /** bit 0: SMT is enabled on the platform. */
  smtEnabled: boolean;
  /** bit 1: transparent SME is enabled. */
  tsmeEnabled: boolean;
  /** bit 2: the platform uses error-correcting memory. */
  eccEnabled: boolean;
  /** bit 3: RAPL is disabled. */
  raplDisabled: boolean;
  /** bit 4: ciphertext hiding for DRAM is enabled. */
  ciphertextHidingEnabled: boolean;
  /** bit 5: the DRAM alias check completed since the last reset (BadRAM, CVE-2024-21944). */
  aliasCheckComplete: boolean;
  /** bit 7: SEV-TIO is enabled. */
  tioEnabled: boolean;
  reservedBits: string;
  hex: string;
}

export function decodePlatformInfo(value: bigint): PlatformInfo {
  const known = 0b1011_1111n;
  return {
    smtEnabled: bit(value, 0),
    tsmeEnabled: bit(value, 1),
    eccEnabled: bit(value, 2),
    raplDisabled: bit(value, 3),
    ciphertextHidingEnabled: bit(value, 4),
    aliasCheckComplete: bit(value, 5),
    tioEnabled: bit(value, 7),
    reservedBits: (value & ~known).toString(16),
    hex: value.toString(16),
  };
}

export type SigningKeyKind = 'vcek' | 'vlek' | 'none' | 'reserved';

/** The u32 at 0x48: AUTHOR_KEY_EN (bit 0), MASK_CHIP_KEY (bit 1), SIGNING_KEY (bits 2-4). */
export interface KeyInfo {
  /** The ID block was certified by an author key; AUTHOR_KEY_DIGEST is its digest. */
  authorKeyEnabled: boolean;
  /** The host masked CHIP_ID (it reads as zeros). */
  maskChipKey: boolean;
  /** SIGNING_KEY: 0 VCEK, 1 VLEK, 7 none (unsigned), 2-6 reserved. */
  signingKey: SigningKeyKind;
  signingKeyValue: number;
  reservedBits: number;
}

export function decodeKeyInfo(value: number): KeyInfo {
  const signingKeyValue = (value >>> 2) & 0b111;
  const signingKey: SigningKeyKind = signingKeyValue === 0 ? 'vcek' : signingKeyValue === 1 ? 'vlek' : signingKeyValue === 7 ? 'none' : 'reserved';
  return {
    authorKeyEnabled: (value & 1) === 1,
    maskChipKey: (value & 2) === 2,
    signingKey,
    signingKeyValue,
    reservedBits: (value >>> 5) << 5 >>> 0,
  };
}
