/**
 * Event builders for synthetic logs, each following the measuring component's definition (which
 * bytes the digest covers, which bytes are logged), so a parser that binds data to digests sees
 * exactly what real firmware, GRUB, systemd-stub and the Linux EFI stub produce.
 */
import { concatBytes, utf8 } from '../../src/core/bytes.ts';
import { EV } from '../../src/eventlog/event-types.ts';
import { guidBytes, leU32, leU64, toUtf16le } from '../../src/eventlog/le.ts';
import type { EventToWrite } from '../../src/eventlog/tcg-writer.ts';

export const ascii = (text: string) => utf8.encode(text);
export const asciiNul = (text: string) => utf8.encode(`${text}\0`);

export function separator(pcr: number, value = 0): EventToWrite {
  return { pcr, type: EV.SEPARATOR, data: leU32(value) };
}

export function efiAction(pcr: number, text: string): EventToWrite {
  return { pcr, type: EV.EFI_ACTION, data: ascii(text) };
}

export function uefiVariableData(guid: string, name: string, data: Uint8Array): Uint8Array {
  return concatBytes(guidBytes(guid), leU64(BigInt(name.length)), leU64(BigInt(data.length)), toUtf16le(name), data);
}

export function driverConfig(guid: string, name: string, data: Uint8Array): EventToWrite {
  return { pcr: 7, type: EV.EFI_VARIABLE_DRIVER_CONFIG, data: uefiVariableData(guid, name, data) };
}

/** EV_EFI_VARIABLE_BOOT: the digest covers VariableData only (PFP 10.4.4). */
export function bootVariable(guid: string, name: string, data: Uint8Array): EventToWrite {
  return { pcr: 1, type: EV.EFI_VARIABLE_BOOT, data: uefiVariableData(guid, name, data), measured: data };
}

/** One EFI_SIGNATURE_LIST of `type` holding entries of equal size. */
export function signatureList(typeGuid: string, owner: string, entries: Uint8Array[]): Uint8Array {
  const size = 16 + entries[0].length;
  return concatBytes(guidBytes(typeGuid), leU32(28 + size * entries.length), leU32(0), leU32(size), ...entries.flatMap((e) => [guidBytes(owner), e]));
}

export function imageLoad(pcr: number, type: number, image: Uint8Array, path?: string): EventToWrite {
  const node = path ? concatBytes(new Uint8Array([4, 4]), leU16((path.length + 1) * 2 + 4), toUtf16le(path, true)) : new Uint8Array(0);
  const devicePath = concatBytes(node, new Uint8Array([0x7f, 0xff, 4, 0]));
  return { pcr, type, data: concatBytes(leU64(0x1000n), leU64(BigInt(image.length)), leU64(0n), leU64(BigInt(devicePath.length)), devicePath), measured: image };
}

function leU16(v: number): Uint8Array {
  return new Uint8Array([v & 0xff, v >>> 8]);
}

/** GRUB 2.04+: data "<prefix><text>\0", digest H(text). */
export function grub(prefix: 'grub_cmd: ' | 'kernel_cmdline: ' | 'module_cmdline: ', text: string): EventToWrite {
  return { pcr: 8, type: EV.IPL, data: asciiNul(prefix + text), measured: ascii(text) };
}

export function grubFile(path: string, contents: Uint8Array): EventToWrite {
  return { pcr: 9, type: EV.IPL, data: asciiNul(path), measured: contents };
}

/** systemd-stub PCR 11: the name event then the data event of one UKI section. */
export function ukiSection(name: string, contents: Uint8Array): EventToWrite[] {
  const description = toUtf16le(name, true);
  return [
    { pcr: 11, type: EV.IPL, data: description, measured: asciiNul(name) },
    { pcr: 11, type: EV.IPL, data: description, measured: contents },
  ];
}

/** systemd-boot/stub PCR 12 command line: description UTF-16 (with NUL), digest over UTF-16 without it. */
export function stubCmdline(cmdline: string): EventToWrite {
  return { pcr: 12, type: EV.IPL, data: toUtf16le(cmdline, true), measured: toUtf16le(cmdline) };
}

export function stubIpl(pcr: 12 | 13, description: string, contents: Uint8Array): EventToWrite {
  return { pcr, type: EV.IPL, data: toUtf16le(description, true), measured: contents };
}

export function tagged(pcr: number, id: number, description: Uint8Array, contents: Uint8Array): EventToWrite {
  return { pcr, type: EV.EVENT_TAG, data: concatBytes(leU32(id), leU32(description.length), description), measured: contents };
}

/** Separators for PCRs 0-7, what every PC firmware logs before handing over to the OS loader. */
export function separators(except: number[] = []): EventToWrite[] {
  return [0, 1, 2, 3, 4, 5, 6, 7].filter((p) => !except.includes(p)).map((p) => separator(p));
}
