import type { Reader } from '../../core/bytes.ts';
import { u16le, u32le } from './le.ts';

/**
 * The 48-byte quote header, Intel "TDX DCAP Quote Generation Library and Quote Verification
 * Library" (rev. 0.9+), Appendix A.3 (quote v4) and A.4 (quote v5), little-endian:
 *
 *   0x00  u16  version                     4 or 5
 *   0x02  u16  attestation key type        2 = ECDSA-256-with-P-256 curve
 *   0x04  u32  TEE type                    0x00000000 SGX, 0x00000081 TDX
 *   0x08  u16  reserved (QE SVN in v3)
 *   0x0A  u16  reserved (PCE SVN in v3)
 *   0x0C  16   QE vendor ID                939a7233-f79c-4ca9-940a-0db3957f0607 for Intel's QE
 *   0x1C  20   user data                   first 16 bytes: platform identifier chosen by the QE
 */
export interface QuoteHeader {
  version: number;
  attestationKeyType: number;
  teeType: number;
  qeSvn: number;
  pceSvn: number;
  qeVendorId: Uint8Array;
  userData: Uint8Array;
}

export const QUOTE_HEADER_SIZE = 48;
export const ATTESTATION_KEY_ECDSA_P256 = 2;
export const TEE_TYPE_SGX = 0x00000000;
export const TEE_TYPE_TDX = 0x00000081;
/** Intel's quoting enclave vendor ID. */
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';

export function readQuoteHeader(reader: Reader): QuoteHeader {
  return {
    version: u16le(reader),
    attestationKeyType: u16le(reader),
    teeType: u32le(reader),
    qeSvn: u16le(reader),
    pceSvn: u16le(reader),
    qeVendorId: reader.take(16),
    userData: reader.take(20),
  };
}
