import { utf8 } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { EV } from './event-types.ts';
import { dataMismatch, digestHex, digestMatches, parseTaggedEvent } from './event-data.ts';
import { asciiz, toUtf16le, utf16le } from './le.ts';
import type { TcgEvent } from './tcg-log.ts';

/**
 * Measurements of systemd-boot, systemd-stub (UKI) and the Linux EFI stub, as systemd documents
 * them (docs/TPM2_PCR_MEASUREMENTS.md) and Linux implements them (drivers/firmware/efi/libstub):
 *
 * PCR 11 EV_IPL (systemd-stub), per UKI PE section in canonical order, two events:
 *   name event: description = section name UTF-16, digest = H(ASCII name + NUL)
 *   data event: description = section name UTF-16, digest = H(section contents)
 * PCR 12 EV_IPL: kernel command line (description = it in UTF-16, digest = H(UTF-16, no NUL)),
 *   "Credentials initrd", "Global credentials initrd" (digest = H(generated cpio))
 * PCR 12 EV_EVENT_TAG: DeviceTree 0x6c46f751, initrd 0x49dffe0f, ucode 0xdac08e1a addons
 * PCR 13 EV_IPL "System extension initrd"; PCR 5 EV_EVENT_TAG 0xf5bc582a loader.conf;
 * PCR 1 EV_EVENT_TAG SMBIOS type 1 0xd5cb7cbc, type 2 0xe0d47bc8, type 11 0xc0b3bd23.
 * PCR 9 EV_EVENT_TAG (Linux EFI stub): 0x8f3b22ec "Linux initrd" (digest = H(initrd)),
 *   0x8f3b22ed "LOADED_IMAGE::LoadOptions" (digest = H(load options as passed)).
 * EV_EVENT_TAG data is TCG_PCClientTaggedEvent { id u32, size u32, data[size] } (event-data.ts).
 */
export const SYSTEMD_TAGS = {
  loaderConf: 0xf5bc582a,
  devicetreeAddon: 0x6c46f751,
  initrdAddon: 0x49dffe0f,
  ucodeAddon: 0xdac08e1a,
  smbiosType1: 0xd5cb7cbc,
  smbiosType2: 0xe0d47bc8,
  smbiosType11: 0xc0b3bd23,
} as const;

export const LINUX_TAGS = { initrd: 0x8f3b22ec, loadOptions: 0x8f3b22ed } as const;

export interface UkiSection {
  name: string;
  digest: string;
}

export interface MeasuredItem {
  /** What the measurement is: "cmdline", "credentials", "global-credentials", "sysext", "devicetree-addon", ... */
  kind: string;
  /** The description or file name logged with it (covered by the digest only for "cmdline"). */
  description: string;
  digest: string;
  pcr: number;
}

export interface SystemdState {
  /** PCR 11: the UKI's sections, names verified by their name events. */
  ukiSections: UkiSection[];
  /** PCR 12 kernel command lines measured by systemd-boot or systemd-stub (bound text). */
  cmdlines: string[];
  /** PCR 12/13 and tagged measurements (credentials, sysext, addons, loader.conf, SMBIOS). */
  items: MeasuredItem[];
}

export interface LinuxStubState {
  initrdDigest?: string;
  loadOptionsDigest?: string;
}

function description(event: TcgEvent): string {
  // systemd writes UTF-16 descriptions; fall back to ASCII for anything that is not.
  const looksUtf16 = event.data.length >= 2 && event.data.length % 2 === 0 && event.data[1] === 0;
  return looksUtf16 ? utf16le(event.data) : asciiz(event.data);
}

function taggedDescription(data: Uint8Array): string {
  return data.length >= 2 && data.length % 2 === 0 && data[1] === 0 ? utf16le(data) : asciiz(data);
}

const PCR12_CONSTANTS: Record<string, string> = { 'Credentials initrd': 'credentials', 'Global credentials initrd': 'global-credentials' };
const TAG_KINDS: Record<number, string> = {
  [SYSTEMD_TAGS.loaderConf]: 'loader-conf',
  [SYSTEMD_TAGS.devicetreeAddon]: 'devicetree-addon',
  [SYSTEMD_TAGS.initrdAddon]: 'initrd-addon',
  [SYSTEMD_TAGS.ucodeAddon]: 'ucode-addon',
  [SYSTEMD_TAGS.smbiosType1]: 'smbios-type1',
  [SYSTEMD_TAGS.smbiosType2]: 'smbios-type2',
  [SYSTEMD_TAGS.smbiosType11]: 'smbios-type11',
};

export async function extractSystemd(events: TcgEvent[], alg: number): Promise<SystemdState | undefined> {
  const state: SystemdState = { ukiSections: [], cmdlines: [], items: [] };
  let pendingName: string | undefined;
  for (const event of events) {
    if (event.type === EV.IPL && event.pcr === 11) {
      const name = description(event);
      if (await digestMatches(event, alg, utf8.encode(`${name}\0`))) {
        pendingName = name;
        continue;
      }
      // A data event must follow the name event of the same section.
      if (pendingName === undefined || pendingName !== name) throw dataMismatch(event, `UKI section "${name}" (no matching name measurement before it)`);
      state.ukiSections.push({ name, digest: digestHex(event, alg) });
      pendingName = undefined;
    } else if (event.type === EV.IPL && (event.pcr === 12 || event.pcr === 13)) {
      const text = description(event);
      const constant = event.pcr === 12 ? PCR12_CONSTANTS[text] : text === 'System extension initrd' ? 'sysext' : undefined;
      if (constant) state.items.push({ kind: constant, description: text, digest: digestHex(event, alg), pcr: event.pcr });
      else if (event.pcr === 12 && (await digestMatches(event, alg, toUtf16le(text)))) state.cmdlines.push(text);
      else throw dataMismatch(event, `PCR ${event.pcr} measurement "${text.slice(0, 60)}"`);
    } else if (event.type === EV.EVENT_TAG && event.pcr !== 9) {
      const tag = parseTaggedEvent(event.data);
      const kind = TAG_KINDS[tag.id];
      if (kind) state.items.push({ kind, description: taggedDescription(tag.data), digest: digestHex(event, alg), pcr: event.pcr });
    }
  }
  if (pendingName !== undefined) throw new SigilError('eventlog.uki_section_incomplete', `UKI section "${pendingName}" has a name measurement but no data measurement`);
  const empty = state.ukiSections.length === 0 && state.cmdlines.length === 0 && state.items.length === 0;
  return empty ? undefined : state;
}

export function extractLinuxStub(events: TcgEvent[], alg: number): LinuxStubState | undefined {
  const state: LinuxStubState = {};
  for (const event of events) {
    if (event.type !== EV.EVENT_TAG || event.pcr !== 9) continue;
    const tag = parseTaggedEvent(event.data);
    if (tag.id === LINUX_TAGS.initrd) state.initrdDigest = digestHex(event, alg);
    if (tag.id === LINUX_TAGS.loadOptions) state.loadOptionsDigest = digestHex(event, alg);
  }
  return state.initrdDigest || state.loadOptionsDigest ? state : undefined;
}
