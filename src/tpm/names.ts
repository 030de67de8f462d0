import { concatBytes } from '../core/bytes.ts';
import { digest } from '../core/hash.ts';
import { Writer } from '../core/bytes.ts';
import { hashAlg } from './algorithms.ts';
import { marshal } from './marshal/codec.ts';
import { TPMS_NV_PUBLIC, type NvPublic } from './structures/nv.ts';
import { TPMT_PUBLIC, type TpmPublic } from './structures/public.ts';

/** Name of an object: nameAlg ‖ H_nameAlg(TPMT_PUBLIC) (Part 1, 16). */
export async function objectName(publicArea: TpmPublic): Promise<Uint8Array> {
  return nameOf(publicArea.nameAlg, marshal(TPMT_PUBLIC, publicArea));
}

/** Name of an NV index: nameAlg ‖ H_nameAlg(TPMS_NV_PUBLIC). */
export async function nvName(nvPublic: NvPublic): Promise<Uint8Array> {
  return nameOf(nvPublic.nameAlg, marshal(TPMS_NV_PUBLIC, nvPublic));
}

async function nameOf(nameAlg: number, marshaled: Uint8Array): Promise<Uint8Array> {
  const info = hashAlg(nameAlg);
  return concatBytes(new Writer(2).u16(nameAlg).finish(), await digest(info.name, marshaled));
}
