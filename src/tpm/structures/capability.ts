import { TPM_CAP } from '../constants.ts';
import { list, struct, u16, u32, type Codec } from '../marshal/codec.ts';
import { SigilError } from '../../core/errors.ts';
import { TPML_ALG, TPML_CC, TPML_HANDLE, TPML_PCR_SELECTION, type PcrSelection } from './basic.ts';

/** Capability data only ever comes from the TPM; Sigil never sends it. */
function notWritten(name: string): () => never {
  return () => {
    throw new SigilError('tpm.marshal_unsupported', `${name} is only ever read`);
  };
}

const TPML_ALG_PROPERTY = list('TPML_ALG_PROPERTY', struct('TPMS_ALG_PROPERTY', { alg: u16, algProperties: u32 }), 128);
const TPML_TAGGED_TPM_PROPERTY = list('TPML_TAGGED_TPM_PROPERTY', struct('TPMS_TAGGED_PROPERTY', { property: u32, value: u32 }), 256);
const TPMS_TAGGED_PCR_SELECT: Codec<{ tag: number; pcrs: number[] }> = {
  name: 'TPMS_TAGGED_PCR_SELECT',
  read(r) {
    const tag = r.u32();
    const size = r.u8();
    const bitmap = r.take(size);
    const pcrs: number[] = [];
    for (let i = 0; i < size * 8; i++) if (bitmap[i >> 3] & (1 << (i & 7))) pcrs.push(i);
    return { tag, pcrs };
  },
  write: notWritten('TPMS_TAGGED_PCR_SELECT'),
};
const TPML_TAGGED_PCR_PROPERTY = list('TPML_TAGGED_PCR_PROPERTY', TPMS_TAGGED_PCR_SELECT, 64);
const TPML_ECC_CURVE = list('TPML_ECC_CURVE', u16, 32);

/** TPMS_CAPABILITY_DATA (Part 2, 10.10.2) for the capabilities Sigil reads. */
export type CapabilityData =
  | { capability: typeof TPM_CAP.ALGS; algorithms: { alg: number; algProperties: number }[] }
  | { capability: typeof TPM_CAP.HANDLES; handles: number[] }
  | { capability: typeof TPM_CAP.COMMANDS; commands: number[] }
  | { capability: typeof TPM_CAP.PP_COMMANDS | typeof TPM_CAP.AUDIT_COMMANDS; commandCodes: number[] }
  | { capability: typeof TPM_CAP.PCRS; pcrs: PcrSelection[] }
  | { capability: typeof TPM_CAP.TPM_PROPERTIES; properties: { property: number; value: number }[] }
  | { capability: typeof TPM_CAP.PCR_PROPERTIES; pcrProperties: { tag: number; pcrs: number[] }[] }
  | { capability: typeof TPM_CAP.ECC_CURVES; curves: number[] };

export const TPMS_CAPABILITY_DATA: Codec<CapabilityData> = {
  name: 'TPMS_CAPABILITY_DATA',
  read(r) {
    const capability = r.u32();
    switch (capability) {
      case TPM_CAP.ALGS:
        return { capability, algorithms: TPML_ALG_PROPERTY.read(r) };
      case TPM_CAP.HANDLES:
        return { capability, handles: TPML_HANDLE.read(r) };
      case TPM_CAP.COMMANDS:
        return { capability, commands: TPML_CC.read(r) };
      case TPM_CAP.PP_COMMANDS:
      case TPM_CAP.AUDIT_COMMANDS:
        return { capability, commandCodes: TPML_CC.read(r) };
      case TPM_CAP.PCRS:
        return { capability, pcrs: TPML_PCR_SELECTION.read(r) };
      case TPM_CAP.TPM_PROPERTIES:
        return { capability, properties: TPML_TAGGED_TPM_PROPERTY.read(r) };
      case TPM_CAP.PCR_PROPERTIES:
        return { capability, pcrProperties: TPML_TAGGED_PCR_PROPERTY.read(r) };
      case TPM_CAP.ECC_CURVES:
        return { capability, curves: TPML_ECC_CURVE.read(r) };
      default:
        return r.fail(`unsupported capability 0x${capability.toString(16)}`, { capability }, 'tpm.response_malformed');
    }
  },
  write: notWritten('TPMS_CAPABILITY_DATA'),
};

export { TPML_ALG };
