import { SigilError } from '../../core/errors.ts';

/**
 * What systemd-stub measures, per version. systemd keeps one enum (src/fundamental/tpm-pcr.h in
 * v252-v254, src/fundamental/uki.h from v255) whose order IS the PCR 11 measurement order
 * ("PLEASE DO NOT REORDER"); each release only ever inserted names into it:
 *   v252  .linux .osrel .cmdline .initrd .splash .dtb .pcrsig .pcrpkey        (Debian 12's stub)
 *   v253  + .uname after .dtb                                                  (ukify --uname)
 *   v254  + .sbat after .uname          (systemd PR #28187: ukify merges SBAT, the stub measures it)
 *   v256  + .ucode after .initrd                                               (ukify --microcode)
 *   v257  + .profile after .pcrpkey, then .dtbauto .hwids                      (multi-profile UKIs)
 *   v258  + .efifw after .hwids
 * `.pcrsig` is never measured (it signs the result). The spelling is `.pcrpkey`; a `.pcrkey`
 * section is not a UKI section and no stub measures it.
 *
 * Section lookup also changed: up to v253 src/boot/efi/pe.c matched a header name by
 * memcmp(name, wanted, strlen(wanted)) — a prefix match, later sections overriding earlier ones;
 * current pe.c compares whole names (pe_section_name_equal) and keeps the first match. Sigil models
 * both and refuses to predict a UKI whose result would depend on a rule it cannot pin to a version.
 */

export const UKI_SECTIONS_V258 = [
  '.linux', '.osrel', '.cmdline', '.initrd', '.ucode', '.splash', '.dtb', '.uname', '.sbat', '.pcrsig', '.pcrpkey', '.profile', '.dtbauto', '.hwids', '.efifw',
] as const;

export type UkiSectionName = (typeof UKI_SECTIONS_V258)[number];

/** Never extended into PCR 11: the signature over the PCR 11 prediction itself. */
export const UNMEASURED_SECTIONS: readonly string[] = ['.pcrsig'];

export type SectionMatching = 'prefix-last-wins' | 'exact-first-wins' | 'unknown';

export interface StubModel {
  /** systemd major version this model describes. */
  version: number;
  /** Every section the stub knows, in enum (= measurement) order, including `.pcrsig`. */
  sections: readonly string[];
  matching: SectionMatching;
  /**
   * Does the firmware also measure the embedded kernel into PCR 4? The stub hands `.linux` to
   * UEFI LoadImage() until v257 (systemd issue #36076 shows two EV_EFI_BOOT_SERVICES_APPLICATION
   * events on 257.2), and since v258 starts it directly ("stub: call inner kernel directly",
   * systemd PR #37372), so the firmware no longer sees it. v252 was confirmed by Sigil's real
   * measured-boot test.
   */
  kernelMeasuredByFirmware: boolean;
  /** Whether `.profile` sections (multi-profile UKIs) exist for this stub. */
  profiles: boolean;
}

const SINCE: Record<string, number> = { '.uname': 253, '.sbat': 254, '.ucode': 256, '.profile': 257, '.dtbauto': 257, '.hwids': 257, '.efifw': 258 };

export const OLDEST_STUB = 252;
export const NEWEST_STUB = 258;

export function stubModel(version: number): StubModel {
  if (!Number.isInteger(version) || version < OLDEST_STUB) {
    throw new SigilError('uki.stub_version_unsupported', `systemd-stub ${version} is not modelled (Sigil knows ${OLDEST_STUB}-${NEWEST_STUB}+; older stubs did not measure PE sections into PCR 11)`, { version });
  }
  return {
    version,
    sections: UKI_SECTIONS_V258.filter((name) => (SINCE[name] ?? 0) <= version),
    matching: version <= 253 ? 'prefix-last-wins' : version >= 257 ? 'exact-first-wins' : 'unknown',
    kernelMeasuredByFirmware: version < 258,
    profiles: version >= 257,
  };
}

/** "252" from "#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####" in the stub's .sdmagic section. */
export function stubVersionFromMagic(text: string): number | undefined {
  const match = /LoaderInfo: systemd-stub (\d+)/.exec(text);
  return match ? Number(match[1]) : undefined;
}
