/**
 * The initial VMSA page (VMCB save area, AMD64 APM vol. 2, table B-4 "VMSA layout, state save
 * area for SEV-ES") that the launch measures once per vCPU. Offsets below are the APM's; fields
 * not written stay zero. The register values are what KVM (QEMU), EC2 and GCE put there at reset,
 * as sev-snp-measure, virtee/sev and Google's gce-tcb-verifier reconstruct them.
 */
import { SigilError } from '../../core/errors.ts';
import { PAGE_SIZE } from './gctx.ts';

export type VmmType = 'QEMU' | 'ec2' | 'gce';
export const VMM_TYPES: readonly VmmType[] = ['QEMU', 'ec2', 'gce'];
export const BSP_EIP = 0xffff_fff0;

const SEGMENT = { es: 0x00, cs: 0x10, ss: 0x20, ds: 0x30, fs: 0x40, gs: 0x50, gdtr: 0x60, ldtr: 0x70, idtr: 0x80, tr: 0x90 } as const;
const FIELD = {
  efer: 0xd0,
  cr4: 0x148,
  cr0: 0x158,
  dr7: 0x160,
  dr6: 0x168,
  rflags: 0x170,
  rip: 0x178,
  g_pat: 0x268,
  rdx: 0x310,
  sev_features: 0x3b0,
  xcr0: 0x3e8,
  mxcsr: 0x408, // u32
  x87_fcw: 0x410, // u16
} as const;

class VmsaWriter {
  readonly page = new Uint8Array(PAGE_SIZE);
  private readonly view = new DataView(this.page.buffer);

  segment(name: keyof typeof SEGMENT, selector: number, attrib: number, limit: number, base: number): this {
    const at = SEGMENT[name];
    this.view.setUint16(at, selector, true);
    this.view.setUint16(at + 2, attrib, true);
    this.view.setUint32(at + 4, limit >>> 0, true);
    this.view.setBigUint64(at + 8, BigInt(base), true);
    return this;
  }

  u64(name: Exclude<keyof typeof FIELD, 'mxcsr' | 'x87_fcw'>, value: number | bigint): this {
    this.view.setBigUint64(FIELD[name], BigInt(value), true);
    return this;
  }

  fpu(mxcsr: number, fcw: number): this {
    this.view.setUint32(FIELD.mxcsr, mxcsr, true);
    this.view.setUint16(FIELD.x87_fcw, fcw, true);
    return this;
  }
}

export interface VmsaOptions {
  /** Reset EIP: BSP_EIP for the boot CPU, the SEV-ES reset block's EIP for the others. */
  eip: number;
  /** SEV_FEATURES: 0 for SEV-ES; the guest features (bit 0 SNPActive, …) for SNP. */
  sevFeatures: bigint;
  /** CPUID(1).EAX, passed in RDX at reset (QEMU). */
  vcpuSignature: number;
  vmmType: VmmType;
  /** EC2 before sev-snp-measure 4a02bf0 (and virtee/sev) used RDX = 0; EC2 now boots with 0x600. */
  ec2LegacyRdxZero?: boolean;
}

/** The real-mode reset state of one vCPU, as the VMM hands it to LAUNCH_UPDATE_VMSA. */
export function resetVmsa(options: VmsaOptions): Uint8Array {
  const { eip, vmmType } = options;
  let cs = 0x9b;
  let ss = 0x93;
  let tr = 0x8b;
  let rdx: number = options.vcpuSignature;
  let mxcsr = 0x1f80;
  let fcw = 0x37f;
  let gPat = 0x0007_0406_0007_0406n; // PAT reset value (APM vol. 2, A.3)
  if (vmmType === 'ec2') {
    cs = eip === BSP_EIP ? 0x9a : 0x9b;
    ss = 0x92;
    tr = 0x83;
    rdx = options.ec2LegacyRdxZero ? 0 : 0x600;
    mxcsr = 0;
    fcw = 0;
  } else if (vmmType === 'gce') {
    // gce-tcb-verifier: the GCE hypervisor overwrites PAT and does not pass the CPU signature.
    rdx = 0x600;
    gPat = 0x0007_0106n;
    mxcsr = 0;
    fcw = 0;
  } else if (vmmType !== 'QEMU') {
    throw new SigilError('measure.vmm_type_unknown', `unknown VMM type "${String(vmmType)}" (QEMU, ec2, gce)`, { vmmType });
  }
  return new VmsaWriter()
    .segment('es', 0, 0x93, 0xffff, 0)
    .segment('cs', 0xf000, cs, 0xffff, (eip & 0xffff0000) >>> 0)
    .segment('ss', 0, ss, 0xffff, 0)
    .segment('ds', 0, 0x93, 0xffff, 0)
    .segment('fs', 0, 0x93, 0xffff, 0)
    .segment('gs', 0, 0x93, 0xffff, 0)
    .segment('gdtr', 0, 0, 0xffff, 0)
    .segment('idtr', 0, 0, 0xffff, 0)
    .segment('ldtr', 0, 0x82, 0xffff, 0)
    .segment('tr', 0, tr, 0xffff, 0)
    .u64('efer', 0x1000) // KVM sets EFER.SVME
    .u64('cr4', 0x40) // KVM sets CR4.MCE
    .u64('cr0', 0x10)
    .u64('dr7', 0x400)
    .u64('dr6', 0xffff0ff0)
    .u64('rflags', 0x2)
    .u64('rip', eip & 0xffff)
    .u64('g_pat', gPat)
    .u64('rdx', rdx)
    .u64('sev_features', options.sevFeatures)
    .u64('xcr0', 0x1)
    .fpu(mxcsr, fcw).page;
}

/**
 * The VMSA Coconut SVSM starts every vCPU with: 32-bit protected mode at the SVSM entry point.
 * QUIRK kept on purpose: sev-snp-measure passes the FPU control word under a misspelt field
 * name, so its SVSM VMSA has x87_fcw = 0 — and the asserted SVSM measurements depend on that.
 */
export function svsmVmsa(eip: number, vcpuSignature: number): Uint8Array {
  return new VmsaWriter()
    .segment('es', 16, 0xc93, 0xffffffff, 0)
    .segment('cs', 8, 0xc9b, 0xffffffff, 0)
    .segment('ss', 16, 0xc93, 0xffffffff, 0)
    .segment('ds', 16, 0xc93, 0xffffffff, 0)
    .segment('fs', 16, 0xc93, 0xffffffff, 0)
    .segment('gs', 0, 0x93, 0xffff, 0)
    .segment('gdtr', 0, 0, 0xffff, 0)
    .segment('idtr', 0, 0, 0xffff, 0)
    .segment('ldtr', 0, 0x82, 0xffff, 0)
    .segment('tr', 0, 0x8b, 0xffff, 0)
    .u64('efer', 0x1000)
    .u64('cr4', 0x40)
    .u64('cr0', 0x11)
    .u64('dr7', 0x400)
    .u64('dr6', 0xffff0ff0)
    .u64('rflags', 0x2)
    .u64('rip', eip)
    .u64('g_pat', 0x0007_0406_0007_0406n)
    .u64('rdx', vcpuSignature)
    .u64('sev_features', 0x1n)
    .u64('xcr0', 0x1)
    .fpu(0x1f80, 0).page;
}
