/**
 * RTMR 0-3 of a TDX guest booted by OVMF with QEMU direct boot, predicted from the artefacts.
 * Each RTMR starts at 48 zero bytes and is extended as SHA-384(RTMR || digest); the events are
 * what OVMF logs in the CCEL (TDX guest event log) for such a boot, as reconstructed by
 * virtee/tdx-measure and dstack-mr:
 *   RTMR0: TD HOB, CFV (UEFI variable store), EFI variables SecureBoot/PK/KEK/db/dbx (absent),
 *          separator, the ACPI table-loader, RSDP and tables blobs, BootOrder, Boot0000.
 *   RTMR1: the kernel's Authenticode digest, "Calling EFI Application from Boot Option",
 *          separator, "Exit Boot Services Invocation", "Exit Boot Services Returned with Success".
 *   RTMR2: the kernel command line (UTF-16LE with NUL, OVMF appends " initrd=initrd"), the initrd.
 *   RTMR3: not extended by firmware (zeros): it is the guest's own.
 */
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { fromHex } from '../../core/hex.ts';
import { guidBytes } from '../snp/ovmf-footer.ts';
import type { AcpiBlobs } from './acpi.ts';
import { tdHob } from './td-hob.ts';
import { TDVF_SECTION, type Tdvf } from './tdvf.ts';

export interface RtmrEvent {
  rtmr: number;
  description: string;
  digest: Uint8Array;
}

/** Computes an image's Authenticode SHA-384 (src/measure/pe): injected so TDX does not own PE parsing. */
export type AuthenticodeSha384 = (image: Uint8Array) => Promise<Uint8Array>;

const EFI_GLOBAL_VARIABLE = '8be4df61-93ca-11d2-aa0d-00e098032b8c';
const EFI_IMAGE_SECURITY_DATABASE = 'd719b2cb-3d3a-4596-a3bc-dad00e67656f';
const SEPARATOR = new Uint8Array(4);
/** The Boot0000 load option OVMF creates for a QEMU direct boot (EFI_LOAD_OPTION "UiApp"). */
const DIRECT_BOOT0000 = fromHex(
  '090100002c0055006900410070007000000004071400c9bdb87cebf8344faaea3ee4af6516a10406140021aa2c4614760345836e8ab6f46623317fff0400',
);

const sha384 = (...parts: Uint8Array[]) => digest('SHA-384', ...parts);

export function utf16le(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out[2 * i] = c & 0xff;
    out[2 * i + 1] = c >> 8;
  }
  return out;
}

/** UEFI_VARIABLE_DATA (TCG PC Client PFP spec, EV_EFI_VARIABLE_DRIVER_CONFIG) and its SHA-384. */
export async function efiVariableDigest(vendorGuid: string, name: string, data: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
  const header = new Uint8Array(32);
  header.set(guidBytes(vendorGuid), 0);
  const view = new DataView(header.buffer);
  view.setBigUint64(16, BigInt(name.length), true);
  view.setBigUint64(24, BigInt(data.length), true);
  return sha384(header, utf16le(name), data);
}

export async function replayRtmr(events: readonly { digest: Uint8Array }[]): Promise<Uint8Array> {
  let value: Uint8Array = new Uint8Array(48);
  for (const e of events) value = await sha384(value, e.digest);
  return value;
}

export async function rtmr0Events(tdvf: Tdvf, memorySize: number, acpi: AcpiBlobs): Promise<RtmrEvent[]> {
  const cfv = tdvf.sections.find((s) => s.type === TDVF_SECTION.CFV);
  if (!cfv) throw new SigilError('measure.tdvf_no_cfv', 'the TDVF metadata has no CFV (variable store) section');
  const ev = async (description: string, d: Promise<Uint8Array> | Uint8Array): Promise<RtmrEvent> => ({ rtmr: 0, description, digest: await d });
  return [
    await ev('TD HOB', sha384(tdHob(tdvf, memorySize))),
    await ev('CFV (UEFI variable store)', sha384(tdvf.firmware.subarray(cfv.dataOffset, cfv.dataOffset + cfv.rawDataSize))),
    await ev('EFI variable SecureBoot', efiVariableDigest(EFI_GLOBAL_VARIABLE, 'SecureBoot')),
    await ev('EFI variable PK', efiVariableDigest(EFI_GLOBAL_VARIABLE, 'PK')),
    await ev('EFI variable KEK', efiVariableDigest(EFI_GLOBAL_VARIABLE, 'KEK')),
    await ev('EFI variable db', efiVariableDigest(EFI_IMAGE_SECURITY_DATABASE, 'db')),
    await ev('EFI variable dbx', efiVariableDigest(EFI_IMAGE_SECURITY_DATABASE, 'dbx')),
    await ev('separator', sha384(SEPARATOR)),
    await ev('ACPI etc/table-loader', sha384(acpi.loader)),
    await ev('ACPI etc/acpi/rsdp', sha384(acpi.rsdp)),
    await ev('ACPI etc/acpi/tables', sha384(acpi.tables)),
    await ev('EFI variable BootOrder', sha384(new Uint8Array(2))),
    await ev('EFI variable Boot0000', sha384(DIRECT_BOOT0000)),
  ];
}

export async function rtmr1Events(kernelAuthenticode: Uint8Array): Promise<RtmrEvent[]> {
  const text = (s: string) => sha384(new TextEncoder().encode(s));
  return [
    { rtmr: 1, description: 'kernel (Authenticode SHA-384)', digest: kernelAuthenticode },
    { rtmr: 1, description: 'Calling EFI Application from Boot Option', digest: await text('Calling EFI Application from Boot Option') },
    { rtmr: 1, description: 'separator', digest: await sha384(SEPARATOR) },
    { rtmr: 1, description: 'Exit Boot Services Invocation', digest: await text('Exit Boot Services Invocation') },
    { rtmr: 1, description: 'Exit Boot Services Returned with Success', digest: await text('Exit Boot Services Returned with Success') },
  ];
}

export async function rtmr2Events(cmdline: string, initrd: Uint8Array): Promise<RtmrEvent[]> {
  const line = utf16le(`${cmdline} initrd=initrd`);
  return [
    { rtmr: 2, description: 'kernel command line (UTF-16LE, " initrd=initrd" appended by OVMF)', digest: await sha384(line, new Uint8Array(2)) },
    { rtmr: 2, description: 'initrd', digest: await sha384(initrd) },
  ];
}
