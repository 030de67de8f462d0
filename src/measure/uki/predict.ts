import { utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import type { HashName } from '../../core/hash.ts';
import { authenticodeDigests } from '../pe/authenticode.ts';
import { parsePe } from '../pe/pe-file.ts';
import { actionEvent, CALLING_EFI_APPLICATION, digestsOf, replayEvents, separatorEvent, type PredictedEvent } from './pcr-events.ts';
import { stubModel, UNMEASURED_SECTIONS, type StubModel } from './stub-versions.ts';
import { locateUkiSections, parseUki, unknownSections, type UkiFile } from './uki-file.ts';

/**
 * PCR 4, 9, 11 (and 12) after firmware boots a UKI directly, predicted from the file alone.
 *
 * PCR 4  (firmware, EDK2 Tcg2Dxe): EV_EFI_ACTION "Calling EFI Application from Boot Option",
 *        EV_SEPARATOR, EV_EFI_BOOT_SERVICES_APPLICATION = Authenticode(UKI), and — stubs that
 *        start the kernel through LoadImage() (up to v257) — Authenticode(.linux) once more.
 * PCR 11 (systemd-stub, EV_IPL): per known section in enum order, H(name‖NUL) then H(data);
 *        then any boot-phase words (systemd-pcrphase: H(word), no NUL).
 * PCR 9  (the kernel's EFI stub, EV_EVENT_TAG, Linux ≥ 6.1): "LOADED_IMAGE::LoadOptions" =
 *        H(UTF-16LE command line incl. its NUL), then "Linux initrd" = H(initrd).
 * PCR 12 (systemd-stub, EV_IPL): only when a boot loader passes a command line the stub accepts.
 * All of it was observed on a real measured boot of systemd-stub 252 (Debian 12) with OVMF and
 * the Debian 6.1 kernel (test/measure/boot/real-boot.test.ts); other versions follow systemd's
 * sources and are marked unverified in `notes`.
 */

export interface UkiPredictionOptions {
  /** systemd-stub major version; default: read from the UKI's .sdmagic section. */
  stubVersion?: number;
  banks?: readonly HashName[];
  /** Boot phases systemd-pcrphase extends into PCR 11 after the stub (e.g. ["enter-initrd"]). */
  phases?: readonly string[];
  /** A command line a boot loader passes as LoadOptions; none when firmware boots the UKI itself. */
  loadOptions?: string;
  /** Secure Boot on: v252 then ignores LoadOptions when the UKI has a .cmdline. Default false. */
  secureBoot?: boolean;
  /** Whether the kernel's EFI stub measures LoadOptions and the initrd (Linux ≥ 6.1). Default true. */
  kernelMeasuresPcr9?: boolean;
}

export interface UkiPrediction {
  stub: { version: number; identity?: string; versionSource: 'sdmagic' | 'option' };
  banks: HashName[];
  /** Measured sections in measurement order, with their in-memory sizes. */
  sections: { name: string; size: number }[];
  /** The command line the kernel receives, when there is one. */
  cmdline?: string;
  events: PredictedEvent[];
  /** bank → PCR index → value, for the PCRs predicted. */
  pcrs: Partial<Record<HashName, Record<number, Uint8Array>>>;
  /** PCRs that cannot be predicted from the file, and why. */
  unpredicted: { pcr: number; reason: string }[];
  notes: string[];
}

/** The stub's view of .cmdline: bytes up to the first NUL as text, then mangle_stub_cmdline(). */
export function stubCmdline(raw: Uint8Array | string): string {
  let text = typeof raw === 'string' ? raw : utf8.decode(raw.subarray(0, raw.indexOf(0) < 0 ? raw.length : raw.indexOf(0)));
  const nul = text.indexOf('\0');
  if (nul >= 0) text = text.slice(0, nul);
  // src/boot/efi/util.c mangle_stub_cmdline: control characters and DEL become spaces, leading
  // and trailing whitespace is dropped.
  let out = '';
  for (const ch of text) out += ch.charCodeAt(0) <= 0x20 || ch.charCodeAt(0) === 0x7f ? ' ' : ch;
  return out.replace(/^ +/, '').replace(/ +$/, '');
}

/** UTF-16LE with a terminating NUL: what the stub puts in the kernel's LoadOptions (strsize16). */
export function utf16leWithNul(text: string): Uint8Array {
  const out = new Uint8Array((text.length + 1) * 2);
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out[i * 2] = unit & 0xff;
    out[i * 2 + 1] = unit >>> 8;
  }
  return out;
}

/**
 * PCR 11 events for sections given by name (the systemd-measure model): canonical order of the
 * stub version, `.pcrsig` never, empty sections skipped, then the phase words.
 */
export async function pcr11Events(sections: ReadonlyMap<string, Uint8Array>, model: StubModel, banks: readonly HashName[], phases: readonly string[] = []): Promise<PredictedEvent[]> {
  const events: PredictedEvent[] = [];
  for (const name of model.sections) {
    if (UNMEASURED_SECTIONS.includes(name)) continue;
    const data = sections.get(name);
    if (!data || data.length === 0) continue;
    events.push({ pcr: 11, type: 'EV_IPL', description: name, by: 'systemd-stub', digests: await digestsOf(banks, utf8.encode(`${name}\0`)) });
    events.push({ pcr: 11, type: 'EV_IPL', description: name, by: 'systemd-stub', digests: await digestsOf(banks, data) });
  }
  for (const word of phases) {
    if (word === '') continue;
    events.push({ pcr: 11, type: 'phase', description: word, by: 'systemd-pcrphase', digests: await digestsOf(banks, utf8.encode(word)) });
  }
  return events;
}

/**
 * How the stub starts the embedded kernel (src/boot/efi/linux.c linux_exec + pe.c pe_kernel_info):
 * a PE kernel for the stub's machine with MajorImageVersion >= 1 (Linux EFI stub 1.0, which reads
 * the initrd through LINUX_EFI_INITRD_MEDIA_GUID) is started as an image; an older x86 kernel
 * through the legacy EFI handover protocol; anything else is refused by the stub.
 */
export function kernelEntry(linux: Uint8Array, machine: number): 'image' | 'efi-handover' {
  let kernel;
  try {
    kernel = parsePe(linux);
  } catch (error) {
    throw new SigilError('uki.linux_not_pe', 'UKI: .linux is not a PE image, systemd-stub refuses to start it', {}, { cause: error });
  }
  if (kernel.majorImageVersion < 1) {
    if (machine === 0x8664 || machine === 0x014c) return 'efi-handover';
    throw new SigilError('uki.kernel_unsupported', 'UKI: the kernel predates EFI stub 1.0 and this architecture has no handover protocol', {});
  }
  if (kernel.machine !== machine) {
    throw new SigilError('uki.kernel_unsupported', `UKI: kernel machine 0x${kernel.machine.toString(16)} differs from the stub's 0x${machine.toString(16)} (compat entry points are not modelled)`, {});
  }
  return 'image';
}

export async function predictUki(image: Uint8Array | UkiFile, options: UkiPredictionOptions = {}): Promise<UkiPrediction> {
  const uki = image instanceof Uint8Array ? parseUki(image) : image;
  const banks = [...(options.banks ?? ['SHA-256'])];
  const version = options.stubVersion ?? uki.stubVersion;
  if (version === undefined) {
    throw new SigilError('uki.stub_version_unknown', 'UKI: no systemd-stub version in .sdmagic; give the stub version explicitly', {});
  }
  const model = stubModel(version);
  const found = locateUkiSections(uki, model);
  const notes: string[] = [];
  const unpredicted: { pcr: number; reason: string }[] = [];
  if (version !== 252) notes.push(`PCR 4, 9 and 12 for systemd-stub ${version} follow systemd's sources; only 252 was confirmed on a real boot by Sigil`);
  const unknown = unknownSections(uki);
  if (unknown.length > 0) notes.push(`sections not measured by any known stub: ${unknown.join(' ')}`);
  if (uki.sections.some((s) => s.name === '.pcrkey')) notes.push('a ".pcrkey" section is not ".pcrpkey": systemd-stub neither measures nor uses it');

  const events: PredictedEvent[] = [];
  // PCR 4: what the firmware measures before and while starting the UKI, then the kernel image.
  events.push(await actionEvent(banks, 4, CALLING_EFI_APPLICATION));
  events.push(await separatorEvent(banks, 4));
  events.push({ pcr: 4, type: 'EV_EFI_BOOT_SERVICES_APPLICATION', description: 'UKI', by: 'firmware', digests: await authenticodeDigests(uki.pe, banks) });
  const linux = found.get('.linux')!;
  const entry = kernelEntry(linux.data, uki.pe.machine);
  if (entry === 'image' && model.kernelMeasuredByFirmware) {
    events.push({ pcr: 4, type: 'EV_EFI_BOOT_SERVICES_APPLICATION', description: '.linux (LoadImage by systemd-stub)', by: 'firmware', digests: await authenticodeDigests(linux.data, banks) });
  }

  const sectionData = new Map([...found].map(([name, section]) => [name, section.data]));
  events.push(...(await pcr11Events(sectionData, model, banks, options.phases ?? [])));

  // Which command line reaches the kernel (v252 use_load_options()).
  const embedded = found.get('.cmdline');
  let cmdline: string | undefined;
  const passed = options.loadOptions;
  const acceptsPassed = passed !== undefined && passed.length > 0 && passed.charCodeAt(0) > 0x1f && (!options.secureBoot || !embedded);
  if (acceptsPassed) {
    cmdline = stubCmdline(passed);
    events.push({ pcr: 12, type: 'EV_IPL', description: cmdline, by: 'systemd-stub', digests: await digestsOf(banks, utf16leWithNul(cmdline)) });
  } else if (embedded) {
    cmdline = stubCmdline(embedded.data);
  }

  // PCR 9: the kernel's EFI stub. Generated cpio archives (.pcrsig/.pcrpkey, credentials, sysexts
  // from the ESP) are appended to the initrd by the stub, and those are not in the file.
  const initrd = found.get('.initrd');
  if (options.kernelMeasuresPcr9 !== false) {
    if (entry === 'efi-handover') {
      unpredicted.push({ pcr: 9, reason: 'the kernel is started through the legacy EFI handover protocol' });
    } else if (found.has('.pcrsig') || found.has('.pcrpkey')) {
      unpredicted.push({ pcr: 9, reason: 'systemd-stub appends .pcrsig/.pcrpkey to the initrd as generated cpio archives' });
    } else {
      if (cmdline !== undefined && cmdline.length > 0) {
        events.push({ pcr: 9, type: 'EV_EVENT_TAG', description: 'LOADED_IMAGE::LoadOptions', by: 'linux-efi-stub', digests: await digestsOf(banks, utf16leWithNul(cmdline)) });
      }
      if (initrd && initrd.data.length > 0) {
        events.push({ pcr: 9, type: 'EV_EVENT_TAG', description: 'Linux initrd', by: 'linux-efi-stub', digests: await digestsOf(banks, initrd.data) });
      }
      notes.push('PCR 9 assumes no credentials or system extensions next to the UKI on the ESP');
    }
  }

  const pcrs: Partial<Record<HashName, Record<number, Uint8Array>>> = {};
  const predicted = [4, 9, 11, 12].filter((pcr) => !unpredicted.some((u) => u.pcr === pcr));
  for (const bank of banks) {
    const values: Record<number, Uint8Array> = {};
    for (const pcr of predicted) values[pcr] = await replayEvents(bank, events, pcr);
    pcrs[bank] = values;
  }
  const measuredOrder = model.sections.filter((n) => !UNMEASURED_SECTIONS.includes(n) && (found.get(n)?.data.length ?? 0) > 0);
  return {
    stub: { version, identity: uki.stubIdentity, versionSource: options.stubVersion !== undefined ? 'option' : 'sdmagic' },
    banks,
    sections: measuredOrder.map((name) => ({ name, size: found.get(name)!.data.length })),
    cmdline,
    events,
    pcrs,
    unpredicted,
    notes,
  };
}
