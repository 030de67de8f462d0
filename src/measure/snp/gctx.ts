/**
 * The SEV-SNP launch digest (the report's MEASUREMENT): every SNP_LAUNCH_UPDATE folds one 4 KiB
 * page into the guest context's digest as SHA-384 over a PAGE_INFO structure (SEV-SNP Firmware
 * ABI spec, section 8.17 SNP_LAUNCH_UPDATE, table "PAGE_INFO structure"):
 *   0x00  DIGEST_CUR  48 bytes   the launch digest so far
 *   0x30  CONTENTS    48 bytes   SHA-384 of the page (NORMAL, VMSA) or zeros (other types)
 *   0x60  LENGTH      u16 = 0x70
 *   0x62  PAGE_TYPE   u8
 *   0x63  IMI_PAGE    u8 (0: not an incoming migration image page)
 *   0x64  VMPL3/2/1_PERMS u8 x3, then 1 reserved byte (all 0)
 *   0x68  GPA         u64 LE
 */
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';

export const PAGE_SIZE = 4096;
export const PAGE_TYPE = { NORMAL: 1, VMSA: 2, ZERO: 3, UNMEASURED: 4, SECRETS: 5, CPUID: 6 } as const;
/**
 * KVM records VMSA pages at GPA (u64)-1; the firmware page-aligns it and keeps the bits below
 * the 48-bit guest physical address width used by sev-snp-measure (0xFFFFFFFFF000).
 */
export const VMSA_GPA = 0xffff_ffff_f000;
const PAGE_INFO_LENGTH = 0x70;
const ZEROS_48 = new Uint8Array(48);

export class LaunchDigest {
  private readonly pageInfo = new Uint8Array(PAGE_INFO_LENGTH);
  private readonly view = new DataView(this.pageInfo.buffer);

  /** Starts from 48 zero bytes, or from a precomputed digest (an OVMF hash) to continue from. */
  constructor(seed?: Uint8Array) {
    if (seed !== undefined && seed.length !== 48) {
      throw new SigilError('measure.snp_seed_invalid', `a launch digest seed is 48 bytes, got ${seed.length}`, { length: seed.length });
    }
    if (seed) this.pageInfo.set(seed, 0);
    this.view.setUint16(0x60, PAGE_INFO_LENGTH, true);
  }

  get value(): Uint8Array {
    return this.pageInfo.slice(0, 48);
  }

  /** One PAGE_INFO step. `contents` is the page's SHA-384, or zeros for page types without one. */
  async update(pageType: number, gpa: number, contents: Uint8Array = ZEROS_48): Promise<void> {
    this.pageInfo.set(contents, 0x30);
    this.pageInfo[0x62] = pageType;
    this.view.setBigUint64(0x68, BigInt(gpa), true);
    this.pageInfo.set(await digest('SHA-384', this.pageInfo), 0);
  }

  async normalPages(gpa: number, data: Uint8Array): Promise<void> {
    if (data.length % PAGE_SIZE !== 0) throw new SigilError('measure.snp_unaligned', `${data.length} bytes are not whole pages`, { length: data.length });
    for (let offset = 0; offset < data.length; offset += PAGE_SIZE) {
      await this.update(PAGE_TYPE.NORMAL, gpa + offset, await digest('SHA-384', data.subarray(offset, offset + PAGE_SIZE)));
    }
  }

  /** Pages measured by type and address only (zero, unmeasured, secrets, CPUID). */
  async contentlessPages(pageType: number, gpa: number, length: number): Promise<void> {
    if (length % PAGE_SIZE !== 0) throw new SigilError('measure.snp_unaligned', `a section of ${length} bytes is not whole pages`, { gpa, length });
    for (let offset = 0; offset < length; offset += PAGE_SIZE) await this.update(pageType, gpa + offset);
  }

  async vmsaPage(page: Uint8Array): Promise<void> {
    await this.update(PAGE_TYPE.VMSA, VMSA_GPA, await digest('SHA-384', page));
  }
}
