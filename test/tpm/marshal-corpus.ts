/** Valid samples of every TPM structure unmarshaler: the seeds the fuzz test and bench/tpm-fuzz mutate. */
import { TPM_ALG, TPM_ECC_CURVE, TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT } from '../../src/tpm/constants.ts';
import { marshal, type Codec } from '../../src/tpm/marshal/codec.ts';
import {
  TPM2B_CREATION_DATA,
  TPM2B_NV_PUBLIC,
  TPM2B_PUBLIC,
  TPMS_ATTEST,
  TPMS_CONTEXT,
  TPMT_SENSITIVE,
  TPMT_SIGNATURE,
  TPML_DIGEST_VALUES,
  TPML_PCR_SELECTION,
  TPMS_CAPABILITY_DATA,
  AES_128_CFB,
} from '../../src/tpm/structures/index.ts';

const bytes = (n: number, fill = 0xab) => new Uint8Array(n).fill(fill);
const clockInfo = { clock: 123456789n, resetCount: 3, restartCount: 1, safe: true };

/** One valid sample per unmarshaler; the fuzzer mutates these. */
export const corpus: [Codec<any>, Uint8Array][] = [
  [TPM2B_PUBLIC, marshal(TPM2B_PUBLIC, { type: TPM_ALG.RSA, nameAlg: TPM_ALG.SHA256, objectAttributes: TPMA_OBJECT.sign | TPMA_OBJECT.restricted, authPolicy: bytes(32), symmetric: { algorithm: TPM_ALG.NULL }, scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 }, keyBits: 2048, exponent: 0, unique: bytes(256) })],
  [TPM2B_PUBLIC, marshal(TPM2B_PUBLIC, { type: TPM_ALG.ECC, nameAlg: TPM_ALG.SHA256, objectAttributes: TPMA_OBJECT.decrypt | TPMA_OBJECT.restricted, authPolicy: new Uint8Array(0), symmetric: AES_128_CFB, scheme: { scheme: TPM_ALG.NULL }, curveId: TPM_ECC_CURVE.NIST_P256, kdf: { scheme: TPM_ALG.NULL }, unique: { x: bytes(32), y: bytes(32) } })],
  [TPM2B_PUBLIC, marshal(TPM2B_PUBLIC, { type: TPM_ALG.KEYEDHASH, nameAlg: TPM_ALG.SHA256, objectAttributes: TPMA_OBJECT.fixedTPM, authPolicy: bytes(32), scheme: { scheme: TPM_ALG.XOR, hashAlg: TPM_ALG.SHA256, kdf: TPM_ALG.KDF1_SP800_108 }, unique: bytes(32) })],
  [TPMS_ATTEST, marshal(TPMS_ATTEST, { magic: TPM_GENERATED_VALUE, qualifiedSigner: bytes(34), extraData: bytes(20), clockInfo, firmwareVersion: 7n, attested: { type: TPM_ST.ATTEST_QUOTE, pcrSelect: [{ hash: TPM_ALG.SHA256, pcrs: [0, 1, 7, 16] }], pcrDigest: bytes(32) } })],
  [TPMS_ATTEST, marshal(TPMS_ATTEST, { magic: TPM_GENERATED_VALUE, qualifiedSigner: bytes(34), extraData: bytes(8), clockInfo, firmwareVersion: 7n, attested: { type: TPM_ST.ATTEST_CERTIFY, name: bytes(34), qualifiedName: bytes(34) } })],
  [TPMS_ATTEST, marshal(TPMS_ATTEST, { magic: TPM_GENERATED_VALUE, qualifiedSigner: bytes(34), extraData: bytes(8), clockInfo, firmwareVersion: 7n, attested: { type: TPM_ST.ATTEST_NV, indexName: bytes(34), offset: 0, nvContents: bytes(12) } })],
  [TPMT_SIGNATURE, marshal(TPMT_SIGNATURE, { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r: bytes(32), s: bytes(32) })],
  [TPMT_SIGNATURE, marshal(TPMT_SIGNATURE, { sigAlg: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA384, sig: bytes(256) })],
  [TPMT_SIGNATURE, marshal(TPMT_SIGNATURE, { sigAlg: TPM_ALG.HMAC, hashAlg: TPM_ALG.SHA256, digest: bytes(32) })],
  [TPM2B_NV_PUBLIC, marshal(TPM2B_NV_PUBLIC, { nvIndex: 0x01c00002, nameAlg: TPM_ALG.SHA256, attributes: 0x12345678, authPolicy: bytes(32), dataSize: 1024 })],
  [TPM2B_CREATION_DATA, marshal(TPM2B_CREATION_DATA, { pcrSelect: [{ hash: TPM_ALG.SHA1, pcrs: [0, 2] }], pcrDigest: bytes(32), locality: 1, parentNameAlg: TPM_ALG.SHA256, parentName: bytes(34), parentQualifiedName: bytes(34), outsideInfo: bytes(3) })],
  [TPMS_CONTEXT, marshal(TPMS_CONTEXT, { sequence: 5n, savedHandle: 0x80000000, hierarchy: 0x40000001, contextBlob: bytes(900) })],
  [TPMT_SENSITIVE, marshal(TPMT_SENSITIVE, { sensitiveType: TPM_ALG.KEYEDHASH, authValue: bytes(4), seedValue: bytes(32), sensitive: bytes(40) })],
  [TPML_PCR_SELECTION, marshal(TPML_PCR_SELECTION, [{ hash: TPM_ALG.SHA1, pcrs: [1] }, { hash: TPM_ALG.SHA256, pcrs: [0, 23] }])],
  [TPML_DIGEST_VALUES, marshal(TPML_DIGEST_VALUES, [{ hashAlg: TPM_ALG.SHA1, digest: bytes(20) }, { hashAlg: TPM_ALG.SHA256, digest: bytes(32) }])],
  // GetCapability(PCRS) as swtpm answers it, hand-marshaled.
  [TPMS_CAPABILITY_DATA, new Uint8Array([0, 0, 0, 5, 0, 0, 0, 2, 0, 4, 3, 0xff, 0xff, 0xff, 0, 0x0b, 3, 0xff, 0xff, 0xff])],
];

