import { struct, u16, u64, u32, u8, sized, type CodecType } from '../marshal/codec.ts';
import { TPM2B_CONTEXT_DATA, TPM2B_DATA, TPM2B_DIGEST, TPM2B_NAME, TPML_PCR_SELECTION } from './basic.ts';

/** TPMS_CREATION_DATA (Part 2, 15.1): the state an object was created in, hashed into its ticket. */
export const TPMS_CREATION_DATA = struct('TPMS_CREATION_DATA', {
  pcrSelect: TPML_PCR_SELECTION,
  pcrDigest: TPM2B_DIGEST,
  locality: u8,
  parentNameAlg: u16,
  parentName: TPM2B_NAME,
  parentQualifiedName: TPM2B_NAME,
  outsideInfo: TPM2B_DATA,
});
export const TPM2B_CREATION_DATA = sized('TPM2B_CREATION_DATA', TPMS_CREATION_DATA);
export type CreationData = CodecType<typeof TPMS_CREATION_DATA>;

/** TPMS_CONTEXT (Part 2, 14.5): a saved session or object, opaque outside the TPM. */
export const TPMS_CONTEXT = struct('TPMS_CONTEXT', {
  sequence: u64,
  savedHandle: u32,
  hierarchy: u32,
  contextBlob: TPM2B_CONTEXT_DATA,
});
export type SavedContext = CodecType<typeof TPMS_CONTEXT>;
