/**
 * Small inputs for UKI tests: a stand-in kernel (the authenticode-rs tiny64 EFI app with
 * MajorImageVersion raised to 1, so systemd-stub treats it as a LINUX_INITRD_MEDIA-capable kernel
 * and starts it through LoadImage) and Debian's systemd-stub 252.
 */
import { existsSync, readFileSync } from 'node:fs';
import { parsePe, putU16 } from '../../../src/measure/pe/pe-file.ts';
import { fixture } from '../../support/fixtures.ts';

export const DEBIAN_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';

export function stubAvailable(): { skip: string | false } {
  return { skip: existsSync(DEBIAN_STUB) ? false : `${DEBIAN_STUB} missing (Debian package systemd-boot-efi; run scripts/setup.sh)` };
}

export function debianStub(): Uint8Array {
  return new Uint8Array(readFileSync(DEBIAN_STUB));
}

/** tiny64.efi with MajorImageVersion = `major` (offset 44 of the optional header). */
export function tinyKernel(major = 1): Uint8Array {
  const bytes = fixture('measure/authenticode/authenticoders_tiny64.efi').slice();
  putU16(bytes, parsePe(bytes).optionalHeaderOffset + 44, major);
  return bytes;
}

export const OS_RELEASE = 'ID=sigil\nNAME="Sigil test"\n';
