import { sized, struct, u16, u32, type CodecType } from '../marshal/codec.ts';
import { TPM2B_DIGEST } from './basic.ts';

/** TPMS_NV_PUBLIC (Part 2, 13.5): an NV index's definition; its name is nameAlg ‖ H(this). */
export const TPMS_NV_PUBLIC = struct('TPMS_NV_PUBLIC', {
  nvIndex: u32,
  nameAlg: u16,
  attributes: u32,
  authPolicy: TPM2B_DIGEST,
  dataSize: u16,
});
export const TPM2B_NV_PUBLIC = sized('TPM2B_NV_PUBLIC', TPMS_NV_PUBLIC);
export type NvPublic = CodecType<typeof TPMS_NV_PUBLIC>;
