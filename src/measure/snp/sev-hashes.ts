/**
 * The SEV hashes table QEMU places in guest memory for measured direct boot (QEMU
 * target/i386/sev.c, SevHashTable; OVMF checks the kernel, initrd and command line against it).
 * It must be byte-identical to QEMU's for the measurement to match:
 *   header: GUID 9438d606-… , u16 LE total length (before padding)
 *   3 entries, each GUID, u16 LE length (50), SHA-256 — in the order cmdline, initrd, kernel
 *   zero padding to a multiple of 16 bytes
 */
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { guidBytes } from './ovmf-footer.ts';
import { PAGE_SIZE } from './gctx.ts';

const TABLE_HEADER_GUID = '9438d606-4f22-4cc9-b479-a793d411fd21';
const KERNEL_ENTRY_GUID = '4de79437-abd2-427f-b835-d5b172d2045b';
const INITRD_ENTRY_GUID = '44baf731-3a2f-4bd7-9af1-41e29169781d';
const CMDLINE_ENTRY_GUID = '97d02dd8-bd20-4c94-aa78-e7714d36ab2a';
const ENTRY_LENGTH = 16 + 2 + 32;

/** SHA-256 digests of what QEMU loads for a direct boot. */
export interface KernelHashes {
  kernel: Uint8Array;
  initrd: Uint8Array;
  cmdline: Uint8Array;
}

/**
 * QEMU hashes the command line with its terminating NUL; no command line (or an empty one) is
 * hashed as a single NUL byte, and no initrd as zero bytes.
 */
export function cmdlineBytes(append: string | undefined): Uint8Array {
  const text = new TextEncoder().encode(append ?? '');
  const out = new Uint8Array(text.length + 1);
  out.set(text);
  return out;
}

export async function kernelHashes(kernel: Uint8Array, initrd: Uint8Array | undefined, append: string | undefined): Promise<KernelHashes> {
  return {
    kernel: await digest('SHA-256', kernel),
    initrd: await digest('SHA-256', initrd ?? new Uint8Array(0)),
    cmdline: await digest('SHA-256', cmdlineBytes(append)),
  };
}

export function sevHashesTable(hashes: KernelHashes): Uint8Array {
  for (const [name, value] of Object.entries(hashes)) {
    if (value.length !== 32) throw new SigilError('measure.sev_hash_invalid', `the ${name} hash is ${value.length} bytes, not a SHA-256`, { name });
  }
  const length = 16 + 2 + 3 * ENTRY_LENGTH;
  const table = new Uint8Array((length + 15) & ~15);
  const view = new DataView(table.buffer);
  table.set(guidBytes(TABLE_HEADER_GUID), 0);
  view.setUint16(16, length, true);
  let at = 18;
  for (const [guid, hash] of [
    [CMDLINE_ENTRY_GUID, hashes.cmdline],
    [INITRD_ENTRY_GUID, hashes.initrd],
    [KERNEL_ENTRY_GUID, hashes.kernel],
  ] as const) {
    table.set(guidBytes(guid), at);
    view.setUint16(at + 16, ENTRY_LENGTH, true);
    table.set(hash, at + 18);
    at += ENTRY_LENGTH;
  }
  return table;
}

/** The 4 KiB page SNP measures: the table at the table GPA's offset within its page. */
export function sevHashesPage(hashes: KernelHashes, offsetInPage: number): Uint8Array {
  const table = sevHashesTable(hashes);
  if (offsetInPage + table.length > PAGE_SIZE) {
    throw new SigilError('measure.sev_hashes_offset_invalid', `a hashes table at page offset ${offsetInPage} would cross its page`, { offsetInPage });
  }
  const page = new Uint8Array(PAGE_SIZE);
  page.set(table, offsetInPage);
  return page;
}
