/**
 * AMD SEV, SEV-ES and SEV-SNP launch digests, computed the way QEMU/KVM (or EC2, GCE) launches
 * the guest, so that a verifier can predict the MEASUREMENT an attestation report will carry.
 *
 * SNP: GCTX over (1) the firmware pages as NORMAL pages at 4 GiB - size, (2) the SEV metadata
 * sections in their listed order, (3) one VMSA page per vCPU. SEV and SEV-ES: SHA-256 over the
 * firmware, the SEV hashes table (direct boot) and, for SEV-ES, the VMSA pages.
 */
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { LaunchDigest, PAGE_SIZE, PAGE_TYPE } from './gctx.ts';
import { FOUR_GIB, hasSection, parseSevFirmware, SEV_SECTION, type SevFirmware, type SevMetadataSection } from './ovmf.ts';
import { sevHashesPage, sevHashesTable, type KernelHashes } from './sev-hashes.ts';
import { BSP_EIP, resetVmsa, svsmVmsa, type VmmType } from './vmsa.ts';

const MAX_VCPUS = 512;

export interface SnpInputs {
  firmware: SevFirmware;
  vcpus: number;
  vcpuSignature: number;
  /** The VMSA's SEV_FEATURES (sev-snp-measure --guest-features; 0x1 = SNPActive). */
  guestFeatures: bigint;
  vmmType?: VmmType;
  /** Measured direct boot: the kernel, initrd and command-line hashes QEMU puts in the table. */
  kernel?: KernelHashes;
  /** Start from this precomputed OVMF hash instead of measuring `firmware.data`. */
  ovmfHash?: Uint8Array;
  ec2LegacyRdxZero?: boolean;
}

function checkVcpus(vcpus: number): void {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new SigilError('measure.vcpus_invalid', `vCPU count ${vcpus} is not between 1 and ${MAX_VCPUS}`, { vcpus });
  }
}

function firmwareData(firmware: SevFirmware): Uint8Array {
  if (!firmware.data) throw new SigilError('measure.ovmf_missing', 'the firmware bytes are needed (no OVMF hash was given)');
  return firmware.data;
}

/** The reset VMSA of each vCPU: the BSP at the reset vector, the APs at the SEV-ES reset block. */
function vmsaPages(firmware: SevFirmware, vcpus: number, make: (eip: number) => Uint8Array): Uint8Array[] {
  checkVcpus(vcpus);
  const pages = [make(BSP_EIP)];
  if (vcpus > 1) {
    if (!firmware.sevEsResetEip) throw new SigilError('measure.sev_no_reset_block', "Can't find SEV_ES_RESET_BLOCK_GUID entry in OVMF table (needed to start more than one vCPU)");
    const ap = make(firmware.sevEsResetEip);
    for (let i = 1; i < vcpus; i++) pages.push(ap);
  }
  return pages;
}

async function measureSection(gctx: LaunchDigest, section: SevMetadataSection, inputs: SnpInputs): Promise<void> {
  const { firmware, kernel, vmmType = 'QEMU' } = inputs;
  switch (section.type) {
    case SEV_SECTION.SNP_SEC_MEM:
      // GCE marks the firmware's scratch memory unmeasured instead of zero-filled.
      await gctx.contentlessPages(vmmType === 'gce' ? PAGE_TYPE.UNMEASURED : PAGE_TYPE.ZERO, section.gpa, section.size);
      return;
    case SEV_SECTION.SNP_SECRETS:
      await gctx.update(PAGE_TYPE.SECRETS, section.gpa);
      return;
    case SEV_SECTION.CPUID:
      // EC2 inserts the CPUID page after every other section (see measureSnpSections).
      if (vmmType !== 'ec2') await gctx.update(PAGE_TYPE.CPUID, section.gpa);
      return;
    case SEV_SECTION.SVSM_CAA:
      await gctx.contentlessPages(PAGE_TYPE.ZERO, section.gpa, section.size);
      return;
    case SEV_SECTION.SNP_KERNEL_HASHES:
      if (!kernel) {
        await gctx.contentlessPages(PAGE_TYPE.ZERO, section.gpa, section.size);
        return;
      }
      if (firmware.sevHashesTableGpa === undefined) throw new SigilError('measure.sev_no_hashes_table', "Can't find SEV_HASH_TABLE_RV_GUID entry in OVMF table");
      if (section.size !== PAGE_SIZE) throw new SigilError('measure.sev_hashes_section_invalid', `the SNP_KERNEL_HASHES section is ${section.size} bytes, not one page`, { size: section.size });
      await gctx.normalPages(section.gpa, sevHashesPage(kernel, firmware.sevHashesTableGpa & 0xfff));
      return;
    default:
      throw new SigilError('measure.ovmf_section_unknown', `unknown OVMF metadata section type ${section.type}`, { type: section.type, gpa: section.gpa });
  }
}

/** The SEV metadata sections, in the order the image lists them (QEMU and dstack do not sort). */
export async function measureSnpSections(gctx: LaunchDigest, inputs: SnpInputs): Promise<void> {
  const { firmware, kernel, vmmType = 'QEMU' } = inputs;
  for (const section of firmware.sections) await measureSection(gctx, section, inputs);
  if (vmmType === 'ec2') {
    for (const section of firmware.sections) if (section.type === SEV_SECTION.CPUID) await gctx.update(PAGE_TYPE.CPUID, section.gpa);
  }
  if (kernel && !hasSection(firmware, SEV_SECTION.SNP_KERNEL_HASHES)) {
    throw new SigilError('measure.snp_no_kernel_hashes_section', "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section");
  }
}

/** The SNP launch digest (attestation report MEASUREMENT, 48 bytes). */
export async function snpLaunchDigest(inputs: SnpInputs): Promise<Uint8Array> {
  const { firmware, vmmType = 'QEMU' } = inputs;
  const pages = vmsaPages(firmware, inputs.vcpus, (eip) =>
    resetVmsa({ eip, sevFeatures: inputs.guestFeatures, vcpuSignature: inputs.vcpuSignature, vmmType, ec2LegacyRdxZero: inputs.ec2LegacyRdxZero }),
  );
  const gctx = new LaunchDigest(inputs.ovmfHash);
  if (!inputs.ovmfHash) await gctx.normalPages(firmware.gpa, firmwareData(firmware));
  await measureSnpSections(gctx, inputs);
  for (const page of pages) await gctx.vmsaPage(page);
  return gctx.value;
}

/** The GCTX after the firmware pages alone: what --snp-ovmf-hash takes to skip re-hashing them. */
export async function snpOvmfHash(firmware: SevFirmware): Promise<Uint8Array> {
  const gctx = new LaunchDigest();
  await gctx.normalPages(firmware.gpa, firmwareData(firmware));
  return gctx.value;
}

export interface SevInputs {
  firmware: SevFirmware;
  kernel?: KernelHashes;
}

async function sevHashParts(inputs: SevInputs): Promise<Uint8Array[]> {
  const parts = [firmwareData(inputs.firmware)];
  if (inputs.kernel) {
    if (!inputs.firmware.sevHashesTableGpa) throw new SigilError('measure.sev_no_hashes_table', "Kernel specified but OVMF doesn't support kernel/initrd/cmdline measurement");
    parts.push(sevHashesTable(inputs.kernel));
  }
  return parts;
}

/** SEV LAUNCH_MEASURE digest (32 bytes): SHA-256 over the firmware and the hashes table. */
export async function sevLaunchDigest(inputs: SevInputs): Promise<Uint8Array> {
  return digest('SHA-256', ...(await sevHashParts(inputs)));
}

/** SEV-ES: as SEV, then every VMSA page. SEV-ES VMSAs carry SEV_FEATURES = 0. */
export async function sevEsLaunchDigest(inputs: SevInputs & { vcpus: number; vcpuSignature: number; vmmType?: VmmType }): Promise<Uint8Array> {
  const vmmType = inputs.vmmType ?? 'QEMU';
  const pages = vmsaPages(inputs.firmware, inputs.vcpus, (eip) => resetVmsa({ eip, sevFeatures: 0n, vcpuSignature: inputs.vcpuSignature, vmmType }));
  return digest('SHA-256', ...(await sevHashParts(inputs)), ...pages);
}

export interface SvsmInputs {
  /** The OVMF image loaded beside the SVSM: its bytes, or its SNP OVMF hash and size. */
  ovmf: { data: Uint8Array } | { hash: Uint8Array; size: number };
  svsm: Uint8Array;
  /** Size of the OVMF variable store mapped just below the OVMF code. */
  ovmfVarsSize: number;
  vcpus: number;
  vcpuSignature: number;
}

/**
 * Coconut SVSM launch (QEMU): OVMF pages, SVSM image pages ending below the OVMF variable store,
 * the SVSM's own metadata sections, then one SVSM VMSA per vCPU.
 */
export async function svsmLaunchDigest(inputs: SvsmInputs): Promise<Uint8Array> {
  checkVcpus(inputs.vcpus);
  const ovmfSize = 'data' in inputs.ovmf ? inputs.ovmf.data.length : inputs.ovmf.size;
  if (!Number.isInteger(inputs.ovmfVarsSize) || inputs.ovmfVarsSize < 0 || inputs.ovmfVarsSize % PAGE_SIZE !== 0) {
    throw new SigilError('measure.svsm_vars_size_invalid', `the OVMF variable store size ${inputs.ovmfVarsSize} is not a whole number of pages`, { ovmfVarsSize: inputs.ovmfVarsSize });
  }
  if (!Number.isInteger(ovmfSize) || ovmfSize <= 0 || ovmfSize % PAGE_SIZE !== 0 || ovmfSize + inputs.ovmfVarsSize >= FOUR_GIB) {
    throw new SigilError('measure.ovmf_size_invalid', `OVMF size ${ovmfSize} is not a whole number of pages below 4 GiB`, { size: ovmfSize });
  }
  const ovmfGpa = FOUR_GIB - ovmfSize;
  const svsm = parseSevFirmware(inputs.svsm, { endAt: ovmfGpa - inputs.ovmfVarsSize });
  if (svsm.svsmEntryOffset === undefined) throw new SigilError('measure.svsm_no_info', "Can't find SVSM_INFO_GUID entry in SVSM table");
  const gctx = new LaunchDigest('hash' in inputs.ovmf ? inputs.ovmf.hash : undefined);
  if ('data' in inputs.ovmf) await gctx.normalPages(ovmfGpa, inputs.ovmf.data);
  await gctx.normalPages(svsm.gpa, inputs.svsm);
  await measureSnpSections(gctx, { firmware: svsm, vcpus: inputs.vcpus, vcpuSignature: inputs.vcpuSignature, guestFeatures: 1n });
  const page = svsmVmsa(svsm.svsmEntryOffset + svsm.gpa, inputs.vcpuSignature);
  for (let i = 0; i < inputs.vcpus; i++) await gctx.vmsaPage(page);
  return gctx.value;
}
