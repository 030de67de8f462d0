import { bool } from '../marshal/codec.ts';
import { defineCommand } from '../command.ts';
import { TPM_CC, TPM_SU } from '../constants.ts';
import { TPM2B_DIGEST, TPML_ALG } from '../structures/basic.ts';
import { TPMS_CAPABILITY_DATA, type CapabilityData } from '../structures/capability.ts';

/** Startup, Shutdown, SelfTest, GetRandom, GetCapability (Part 3, sections 9, 10, 16, 30). */

export function startup(type: number = TPM_SU.CLEAR) {
  return defineCommand({ code: TPM_CC.Startup, parameters: (w) => w.u16(type) });
}

export function shutdown(type: number = TPM_SU.CLEAR) {
  return defineCommand({ code: TPM_CC.Shutdown, parameters: (w) => w.u16(type) });
}

export function selfTest(fullTest = true) {
  return defineCommand({ code: TPM_CC.SelfTest, parameters: (w) => bool.write(w, fullTest) });
}

export function incrementalSelfTest(algorithms: number[]) {
  return defineCommand({ code: TPM_CC.IncrementalSelfTest, parameters: (w) => TPML_ALG.write(w, algorithms), parse: (r) => TPML_ALG.read(r) });
}

export function getRandom(bytesRequested: number) {
  return defineCommand({
    code: TPM_CC.GetRandom,
    parameters: (w) => w.u16(bytesRequested),
    encryptableResponse: true,
    parse: (r) => TPM2B_DIGEST.read(r),
  });
}

export interface GetCapabilityResult {
  moreData: boolean;
  data: CapabilityData;
}

export function getCapability(capability: number, property: number, propertyCount: number) {
  return defineCommand<GetCapabilityResult>({
    code: TPM_CC.GetCapability,
    parameters: (w) => w.u32(capability).u32(property).u32(propertyCount),
    parse: (r) => ({ moreData: bool.read(r), data: TPMS_CAPABILITY_DATA.read(r) }),
  });
}
