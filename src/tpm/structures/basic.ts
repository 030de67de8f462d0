import type { Reader, Writer } from '../../core/bytes.ts';
import { hashAlg } from '../algorithms.ts';
import { bool, list, struct, tpm2b, u16, u32, u64, type Codec, type CodecType } from '../marshal/codec.ts';

/** Simple TPM2B types (Part 2, 10.4). Sizes are the largest the spec allows for each. */
export const TPM2B_DIGEST = tpm2b('TPM2B_DIGEST', 64);
export const TPM2B_NONCE = tpm2b('TPM2B_NONCE', 64);
export const TPM2B_AUTH = tpm2b('TPM2B_AUTH', 64);
export const TPM2B_DATA = tpm2b('TPM2B_DATA', 128);
export const TPM2B_NAME = tpm2b('TPM2B_NAME', 68);
export const TPM2B_MAX_BUFFER = tpm2b('TPM2B_MAX_BUFFER', 2048);
export const TPM2B_MAX_NV_BUFFER = tpm2b('TPM2B_MAX_NV_BUFFER', 2048);
export const TPM2B_SENSITIVE_DATA = tpm2b('TPM2B_SENSITIVE_DATA', 256);
export const TPM2B_PUBLIC_KEY_RSA = tpm2b('TPM2B_PUBLIC_KEY_RSA', 512);
export const TPM2B_PRIVATE_KEY_RSA = tpm2b('TPM2B_PRIVATE_KEY_RSA', 256);
export const TPM2B_ECC_PARAMETER = tpm2b('TPM2B_ECC_PARAMETER', 128);
export const TPM2B_ENCRYPTED_SECRET = tpm2b('TPM2B_ENCRYPTED_SECRET', 512);
export const TPM2B_ID_OBJECT = tpm2b('TPM2B_ID_OBJECT', 256);
export const TPM2B_PRIVATE = tpm2b('TPM2B_PRIVATE', 2048);
export const TPM2B_CONTEXT_DATA = tpm2b('TPM2B_CONTEXT_DATA', 5120);
export const TPM2B_ATTEST = tpm2b('TPM2B_ATTEST', 2048);
export const TPM2B_EVENT = tpm2b('TPM2B_EVENT', 1024);
export const TPM2B_TIMEOUT = tpm2b('TPM2B_TIMEOUT', 8);
export const TPM2B_SYM_KEY = tpm2b('TPM2B_SYM_KEY', 32);
export const TPM2B_OPERAND = tpm2b('TPM2B_OPERAND', 64);

/** TPMS_PCR_SELECTION: one bank and a bitmap of PCRs (bit n of byte n/8). */
export interface PcrSelection {
  hash: number;
  pcrs: number[];
}

export const TPMS_PCR_SELECTION: Codec<PcrSelection> = {
  name: 'TPMS_PCR_SELECTION',
  read(r: Reader) {
    const hash = r.u16();
    const size = r.u8();
    if (size > 32) r.fail(`sizeofSelect ${size} is too large`, {}, 'tpm.response_malformed');
    const bitmap = r.take(size);
    const pcrs: number[] = [];
    for (let i = 0; i < size * 8; i++) if (bitmap[i >> 3] & (1 << (i & 7))) pcrs.push(i);
    return { hash, pcrs };
  },
  write(w: Writer, v: PcrSelection) {
    // At least 3 bytes (24 PCRs): PC Client TPMs reject shorter bitmaps.
    const size = Math.max(3, Math.ceil((Math.max(-1, ...v.pcrs) + 1) / 8));
    const bitmap = new Uint8Array(size);
    for (const p of v.pcrs) bitmap[p >> 3] |= 1 << (p & 7);
    w.u16(v.hash).u8(size).bytes(bitmap);
  },
};

export const TPML_PCR_SELECTION = list('TPML_PCR_SELECTION', TPMS_PCR_SELECTION, 16);
export const TPML_DIGEST = list('TPML_DIGEST', TPM2B_DIGEST, 8);

/** TPMT_HA: a hash algorithm and a digest whose length that algorithm fixes. */
export interface TaggedHash {
  hashAlg: number;
  digest: Uint8Array;
}

export const TPMT_HA: Codec<TaggedHash> = {
  name: 'TPMT_HA',
  read(r) {
    const alg = r.u16();
    const info = (() => {
      try {
        return hashAlg(alg);
      } catch {
        return r.fail(`unknown hash algorithm 0x${alg.toString(16)}`, {}, 'tpm.response_malformed');
      }
    })();
    return { hashAlg: alg, digest: r.take(info.size) };
  },
  write(w, v) {
    w.u16(v.hashAlg).bytes(v.digest);
  },
};

export const TPML_DIGEST_VALUES = list('TPML_DIGEST_VALUES', TPMT_HA, 16);

/** Tickets (Part 2, 10.7): proof from the TPM that it did something, bound to a hierarchy. */
export const TPMT_TK = struct('TPMT_TK', { tag: u16, hierarchy: u32, digest: TPM2B_DIGEST });
export type Ticket = CodecType<typeof TPMT_TK>;

export const TPML_HANDLE = list('TPML_HANDLE', u32, 254);
export const TPML_CC = list('TPML_CC', u32, 256);
export const TPML_ALG = list('TPML_ALG', u16, 128);
export const TPMS_CLOCK_INFO = struct('TPMS_CLOCK_INFO', {
  clock: u64,
  resetCount: u32,
  restartCount: u32,
  safe: bool,
});
export type ClockInfo = CodecType<typeof TPMS_CLOCK_INFO>;
