/**
 * The vCPU signature SEV-ES/SNP VMSAs carry in RDX at reset: CPUID Fn0000_0001_EAX (family,
 * model, stepping; AMD CPUID specification #25481). The names are QEMU's built-in EPYC models.
 */
import { SigilError } from '../../core/errors.ts';

export function cpuSignature(family: number, model: number, stepping: number): number {
  for (const [name, value] of Object.entries({ family, model, stepping })) {
    if (!Number.isInteger(value) || value < 0 || value > 0x10e) throw new SigilError('measure.vcpu_invalid', `vCPU ${name} ${value} is out of range`, { [name]: value });
  }
  const familyLow = family > 0xf ? 0xf : family;
  const familyHigh = family > 0xf ? (family - 0xf) & 0xff : 0;
  return ((familyHigh << 20) | (((model >> 4) & 0xf) << 16) | (familyLow << 8) | ((model & 0xf) << 4) | (stepping & 0xf)) >>> 0;
}

const EPYC = cpuSignature(23, 1, 2);
const ROME = cpuSignature(23, 49, 0);
const MILAN = cpuSignature(25, 1, 1);
const GENOA = cpuSignature(25, 17, 0);
const TURIN = cpuSignature(26, 0, 0);

export const VCPU_SIGNATURES: Record<string, number> = {
  EPYC: EPYC,
  'EPYC-v1': EPYC,
  'EPYC-v2': EPYC,
  'EPYC-IBPB': EPYC,
  'EPYC-v3': EPYC,
  'EPYC-v4': EPYC,
  'EPYC-Rome': ROME,
  'EPYC-Rome-v1': ROME,
  'EPYC-Rome-v2': ROME,
  'EPYC-Rome-v3': ROME,
  'EPYC-Milan': MILAN,
  'EPYC-Milan-v1': MILAN,
  'EPYC-Milan-v2': MILAN,
  'EPYC-Genoa': GENOA,
  'EPYC-Genoa-v1': GENOA,
  'EPYC-Turin': TURIN,
};

/** Look a QEMU vCPU model up by name (case-insensitive, as dstack accepts "epyc-v4"). */
export function vcpuSignatureOf(type: string): number {
  const key = Object.keys(VCPU_SIGNATURES).find((k) => k.toLowerCase() === type.toLowerCase());
  if (key === undefined) {
    throw new SigilError('measure.vcpu_type_unknown', `unknown vCPU type "${type}" (known: ${Object.keys(VCPU_SIGNATURES).join(', ')})`, { type });
  }
  return VCPU_SIGNATURES[key];
}
