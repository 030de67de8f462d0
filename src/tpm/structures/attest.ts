import { TPM_ST } from '../constants.ts';
import { bool, type Codec } from '../marshal/codec.ts';
import {
  TPM2B_DATA,
  TPM2B_DIGEST,
  TPM2B_MAX_NV_BUFFER,
  TPM2B_NAME,
  TPML_PCR_SELECTION,
  TPMS_CLOCK_INFO,
  type ClockInfo,
  type PcrSelection,
} from './basic.ts';

/**
 * TPMS_ATTEST (Part 2, 10.12.12): what Quote, Certify, CertifyCreation, NV_Certify... sign.
 * The verifier parses these bytes from the wire, so every field is bounds-checked.
 */
export type Attested =
  | { type: typeof TPM_ST.ATTEST_QUOTE; pcrSelect: PcrSelection[]; pcrDigest: Uint8Array }
  | { type: typeof TPM_ST.ATTEST_CERTIFY; name: Uint8Array; qualifiedName: Uint8Array }
  | { type: typeof TPM_ST.ATTEST_CREATION; objectName: Uint8Array; creationHash: Uint8Array }
  | { type: typeof TPM_ST.ATTEST_NV; indexName: Uint8Array; offset: number; nvContents: Uint8Array }
  | { type: typeof TPM_ST.ATTEST_NV_DIGEST; indexName: Uint8Array; nvDigest: Uint8Array }
  | { type: typeof TPM_ST.ATTEST_TIME; time: bigint; clockInfo: ClockInfo; firmwareVersion: bigint }
  | { type: typeof TPM_ST.ATTEST_COMMAND_AUDIT; auditCounter: bigint; digestAlg: number; auditDigest: Uint8Array; commandDigest: Uint8Array }
  | { type: typeof TPM_ST.ATTEST_SESSION_AUDIT; exclusiveSession: boolean; sessionDigest: Uint8Array };

export interface Attest {
  magic: number;
  qualifiedSigner: Uint8Array;
  extraData: Uint8Array;
  clockInfo: ClockInfo;
  firmwareVersion: bigint;
  attested: Attested;
}

export const TPMS_ATTEST: Codec<Attest> = {
  name: 'TPMS_ATTEST',
  read(r) {
    const magic = r.u32();
    const type = r.u16();
    const qualifiedSigner = TPM2B_NAME.read(r);
    const extraData = TPM2B_DATA.read(r);
    const clockInfo = TPMS_CLOCK_INFO.read(r);
    const firmwareVersion = r.u64();
    let attested: Attested;
    switch (type) {
      case TPM_ST.ATTEST_QUOTE:
        attested = { type, pcrSelect: TPML_PCR_SELECTION.read(r), pcrDigest: TPM2B_DIGEST.read(r) };
        break;
      case TPM_ST.ATTEST_CERTIFY:
        attested = { type, name: TPM2B_NAME.read(r), qualifiedName: TPM2B_NAME.read(r) };
        break;
      case TPM_ST.ATTEST_CREATION:
        attested = { type, objectName: TPM2B_NAME.read(r), creationHash: TPM2B_DIGEST.read(r) };
        break;
      case TPM_ST.ATTEST_NV:
        attested = { type, indexName: TPM2B_NAME.read(r), offset: r.u16(), nvContents: TPM2B_MAX_NV_BUFFER.read(r) };
        break;
      case TPM_ST.ATTEST_NV_DIGEST:
        attested = { type, indexName: TPM2B_NAME.read(r), nvDigest: TPM2B_DIGEST.read(r) };
        break;
      case TPM_ST.ATTEST_TIME:
        attested = { type, time: r.u64(), clockInfo: TPMS_CLOCK_INFO.read(r), firmwareVersion: r.u64() };
        break;
      case TPM_ST.ATTEST_COMMAND_AUDIT:
        attested = { type, auditCounter: r.u64(), digestAlg: r.u16(), auditDigest: TPM2B_DIGEST.read(r), commandDigest: TPM2B_DIGEST.read(r) };
        break;
      case TPM_ST.ATTEST_SESSION_AUDIT:
        attested = { type, exclusiveSession: bool.read(r), sessionDigest: TPM2B_DIGEST.read(r) };
        break;
      default:
        return r.fail(`unknown attestation type 0x${type.toString(16)}`, { type }, 'tpm.attest_malformed');
    }
    return { magic, qualifiedSigner, extraData, clockInfo, firmwareVersion, attested };
  },
  write(w, v) {
    w.u32(v.magic).u16(v.attested.type);
    TPM2B_NAME.write(w, v.qualifiedSigner);
    TPM2B_DATA.write(w, v.extraData);
    TPMS_CLOCK_INFO.write(w, v.clockInfo);
    w.u64(v.firmwareVersion);
    const a = v.attested;
    switch (a.type) {
      case TPM_ST.ATTEST_QUOTE:
        TPML_PCR_SELECTION.write(w, a.pcrSelect);
        TPM2B_DIGEST.write(w, a.pcrDigest);
        break;
      case TPM_ST.ATTEST_CERTIFY:
        TPM2B_NAME.write(w, a.name);
        TPM2B_NAME.write(w, a.qualifiedName);
        break;
      case TPM_ST.ATTEST_CREATION:
        TPM2B_NAME.write(w, a.objectName);
        TPM2B_DIGEST.write(w, a.creationHash);
        break;
      case TPM_ST.ATTEST_NV:
        TPM2B_NAME.write(w, a.indexName);
        w.u16(a.offset);
        TPM2B_MAX_NV_BUFFER.write(w, a.nvContents);
        break;
      case TPM_ST.ATTEST_NV_DIGEST:
        TPM2B_NAME.write(w, a.indexName);
        TPM2B_DIGEST.write(w, a.nvDigest);
        break;
      case TPM_ST.ATTEST_TIME:
        w.u64(a.time);
        TPMS_CLOCK_INFO.write(w, a.clockInfo);
        w.u64(a.firmwareVersion);
        break;
      case TPM_ST.ATTEST_COMMAND_AUDIT:
        w.u64(a.auditCounter).u16(a.digestAlg);
        TPM2B_DIGEST.write(w, a.auditDigest);
        TPM2B_DIGEST.write(w, a.commandDigest);
        break;
      case TPM_ST.ATTEST_SESSION_AUDIT:
        bool.write(w, a.exclusiveSession);
        TPM2B_DIGEST.write(w, a.sessionDigest);
        break;
    }
  },
};
