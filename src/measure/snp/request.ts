/**
 * One entry point with sev-snp-measure's options and rules, over bytes rather than paths, so the
 * CLI only reads files and the same checks hold for library callers.
 */
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { fromHex, toHex } from '../../core/hex.ts';
import type { ReferenceValue, SourceArtefact } from '../reference-values/document.ts';
import { sevEsLaunchDigest, sevLaunchDigest, snpLaunchDigest, snpOvmfHash, svsmLaunchDigest } from './launch-digest.ts';
import { parseSevFirmware } from './ovmf.ts';
import { kernelHashes, type KernelHashes } from './sev-hashes.ts';
import { cpuSignature, vcpuSignatureOf } from './vcpu-types.ts';
import { VMM_TYPES, type VmmType } from './vmsa.ts';

export type SevMode = 'sev' | 'seves' | 'snp' | 'snp:ovmf-hash' | 'snp:svsm';
export const SEV_MODES: readonly SevMode[] = ['sev', 'seves', 'snp', 'snp:ovmf-hash', 'snp:svsm'];

export interface SevRequest {
  mode: SevMode;
  ovmf?: Uint8Array;
  vcpus?: number;
  vcpuType?: string;
  vcpuSig?: number;
  vcpuFamily?: number;
  vcpuModel?: number;
  vcpuStepping?: number;
  guestFeatures?: bigint;
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  append?: string;
  vmmType?: string;
  snpOvmfHash?: string;
  svsm?: Uint8Array;
  ovmfVarsSize?: number;
  /** snp:svsm with --snp-ovmf-hash and no OVMF file: the OVMF size. */
  ovmfSize?: number;
  ec2LegacyRdxZero?: boolean;
}

export interface SevResult {
  mode: SevMode;
  measurement: Uint8Array;
  /** The same value as a reference value, with its artefacts' digests (not for snp:ovmf-hash, a seed). */
  referenceValue?: ReferenceValue;
}

function usage(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('measure.usage', message, details);
}

function vmmTypeOf(text: string | undefined): VmmType {
  if (text === undefined) return 'QEMU';
  const found = VMM_TYPES.find((t) => t.toLowerCase() === text.toLowerCase());
  return found ?? usage(`unknown VMM type "${text}" (${VMM_TYPES.join(', ')})`, { vmmType: text });
}

/** sev-snp-measure's precedence: family/model/stepping, then --vcpu-sig, then --vcpu-type. */
function signatureOf(r: SevRequest, vmmType: VmmType): number {
  if (r.vcpuFamily !== undefined) return cpuSignature(r.vcpuFamily, r.vcpuModel ?? 0, r.vcpuStepping ?? 0);
  if (r.vcpuSig !== undefined) {
    if (!Number.isInteger(r.vcpuSig) || r.vcpuSig < 0 || r.vcpuSig > 0xffffffff) usage(`vCPU signature ${r.vcpuSig} is not a 32-bit value`);
    return r.vcpuSig;
  }
  if (r.vcpuType !== undefined) return vcpuSignatureOf(r.vcpuType);
  if (vmmType === 'gce') return 0; // GCE does not pass the signature
  return usage(`missing --vcpu-type or --vcpu-sig or --vcpu-family in guest mode '${r.mode}'`);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return toHex(await digest('SHA-256', bytes));
}

export async function measureSev(r: SevRequest): Promise<SevResult> {
  if (!SEV_MODES.includes(r.mode)) usage(`unknown mode "${r.mode}" (${SEV_MODES.join(', ')})`);
  if (r.snpOvmfHash && r.mode !== 'snp' && r.mode !== 'snp:svsm') usage('SNP OVMF hash only works with SNP');
  if ((r.initrd || r.append) && !r.kernel) usage('--initrd and --append need --kernel');
  if (r.mode === 'snp' && r.vcpus === undefined) usage(`missing --vcpus N in guest mode '${r.mode}'`);
  const vmmType = vmmTypeOf(r.vmmType);
  const sources: SourceArtefact[] = [];
  const parameters: Record<string, string | number | boolean> = { mode: r.mode };
  if (r.ovmf) sources.push({ name: 'ovmf', sha256: await sha256Hex(r.ovmf) });
  let kernel: KernelHashes | undefined;
  if (r.kernel && r.mode !== 'snp:ovmf-hash' && r.mode !== 'snp:svsm') {
    kernel = await kernelHashes(r.kernel, r.initrd, r.append);
    sources.push({ name: 'kernel', sha256: toHex(kernel.kernel) }, { name: 'initrd', sha256: toHex(kernel.initrd) }, { name: 'cmdline', sha256: toHex(kernel.cmdline) });
  }
  const seed = r.snpOvmfHash ? fromHex(r.snpOvmfHash) : undefined;
  let measurement: Uint8Array;
  if (r.mode === 'snp:svsm') {
    if (!r.svsm) usage('snp:svsm needs --svsm');
    if (r.ovmfVarsSize === undefined) usage('snp:svsm needs --vars-size or --vars-file');
    const vcpuSignature = signatureOf(r, vmmType);
    if (vmmType !== 'QEMU') usage('SVSM mode is only implemented for QEMU');
    sources.push({ name: 'svsm', sha256: await sha256Hex(r.svsm) });
    const ovmf = seed ? { hash: seed, size: r.ovmf?.length ?? r.ovmfSize ?? usage('snp:svsm with an OVMF hash needs --ovmf or --ovmf-size') } : { data: r.ovmf ?? usage('snp:svsm needs --ovmf') };
    measurement = await svsmLaunchDigest({ ovmf, svsm: r.svsm, ovmfVarsSize: r.ovmfVarsSize, vcpus: r.vcpus ?? 1, vcpuSignature });
    Object.assign(parameters, { vcpus: r.vcpus ?? 1, vcpuSignature, ovmfVarsSize: r.ovmfVarsSize });
  } else {
    if (!r.ovmf) usage('--ovmf is required');
    const firmware = parseSevFirmware(r.ovmf);
    if (r.mode === 'snp:ovmf-hash') {
      measurement = await snpOvmfHash(firmware);
    } else if (r.mode === 'sev') {
      measurement = await sevLaunchDigest({ firmware, kernel });
    } else {
      const vcpuSignature = signatureOf(r, vmmType);
      const vcpus = r.vcpus ?? 1;
      Object.assign(parameters, { vcpus, vcpuSignature, vmmType });
      if (r.mode === 'seves') {
        measurement = await sevEsLaunchDigest({ firmware, kernel, vcpus, vcpuSignature, vmmType });
      } else {
        const guestFeatures = r.guestFeatures ?? 1n;
        parameters.guestFeatures = `0x${guestFeatures.toString(16)}`;
        if (r.ec2LegacyRdxZero) parameters.ec2LegacyRdxZero = true;
        measurement = await snpLaunchDigest({ firmware, kernel, vcpus, vcpuSignature, guestFeatures, vmmType, ovmfHash: seed, ec2LegacyRdxZero: r.ec2LegacyRdxZero });
      }
    }
  }
  if (r.mode === 'snp:ovmf-hash') return { mode: r.mode, measurement };
  const kind = r.mode === 'sev' || r.mode === 'seves' ? 'sev-measurement' : 'snp-measurement';
  return { mode: r.mode, measurement, referenceValue: { kind, value: toHex(measurement), label: `${r.mode} launch digest`, sources, parameters } };
}
