import { SigilError } from '../../core/errors.ts';
import { parsePe, sectionMemory, type PeFile, type PeSection } from '../pe/pe-file.ts';
import { stubVersionFromMagic, UKI_SECTIONS_V258, type StubModel } from './stub-versions.ts';

/**
 * A Unified Kernel Image: systemd-stub's PE file with payload sections appended (UAPI.5 "Unified
 * Kernel Image" specification). Parsing never trusts the file: every section is bounds-checked and
 * any failure is a SigilError('pe.*' | 'uki.*').
 */

export interface UkiSection {
  name: string;
  header: PeSection;
  /** The bytes the stub sees in memory: VirtualSize bytes (see sectionMemory), read lazily. */
  readonly data: Uint8Array;
}

export interface UkiFile {
  pe: PeFile;
  /** Sections in section-table order, with their in-memory contents. */
  sections: UkiSection[];
  /** systemd-stub major version from its `.sdmagic` section, when present. */
  stubVersion?: number;
  /** The full `.sdmagic` text, e.g. "#### LoaderInfo: systemd-stub 252.39-1~deb12u2 ####". */
  stubIdentity?: string;
}

function fail(code: string, message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(`uki.${code}`, `UKI: ${message}`, details);
}

function ascii(bytes: Uint8Array): string {
  let end = bytes.indexOf(0);
  if (end < 0) end = bytes.length;
  let out = '';
  for (let i = 0; i < end; i++) out += String.fromCharCode(bytes[i]);
  return out;
}

export function parseUki(bytes: Uint8Array): UkiFile {
  const pe = parsePe(bytes);
  // Contents are read on first use: most sections are never looked at, and a hostile VirtualSize
  // should cost nothing unless the stub would really read that section.
  const sections = pe.sections.map((header): UkiSection => {
    let data: Uint8Array | undefined;
    return {
      name: header.name,
      header,
      get data() {
        data ??= sectionMemory(pe, header);
        return data;
      },
    };
  });
  const magic = sections.find((s) => s.name === '.sdmagic');
  const stubIdentity = magic ? ascii(magic.data).trim() : undefined;
  return { pe, sections, stubVersion: stubIdentity ? stubVersionFromMagic(stubIdentity) : undefined, stubIdentity };
}

function matchesPrefix(header: PeSection, wanted: string): boolean {
  // memcmp(sect->Name, wanted, strlen(wanted)): the first strlen(wanted) bytes only.
  for (let i = 0; i < wanted.length; i++) if (header.nameBytes[i] !== wanted.charCodeAt(i)) return false;
  return true;
}

function locate(uki: UkiFile, names: readonly string[], rule: 'prefix-last-wins' | 'exact-first-wins'): Map<string, UkiSection> {
  const found = new Map<string, UkiSection>();
  for (const wanted of names) {
    for (const section of uki.sections) {
      const hit = rule === 'prefix-last-wins' ? matchesPrefix(section.header, wanted) : section.name === wanted;
      if (!hit) continue;
      found.set(wanted, section);
      if (rule === 'exact-first-wins') break;
    }
  }
  return found;
}

/**
 * The sections a given stub will find and measure, keyed by their canonical name. Refuses UKIs
 * on which stub versions disagree in ways Sigil cannot pin down: sections out of VirtualAddress
 * order or overlapping in memory (v252 added checks for those, later versions changed them), a
 * lookup rule unknown for this version that would change the result, or multiple profiles.
 */
export function locateUkiSections(uki: UkiFile, model: StubModel): Map<string, UkiSection> {
  let previousEnd = 0;
  for (const { header } of uki.sections) {
    if (header.virtualAddress < previousEnd) {
      fail('sections_overlap', `section ${JSON.stringify(header.name)} starts at 0x${header.virtualAddress.toString(16)}, inside or before the previous section; stubs treat such images differently`, { section: header.name });
    }
    previousEnd = header.virtualAddress + header.virtualSize;
  }
  let found: Map<string, UkiSection>;
  if (model.matching === 'unknown') {
    const prefix = locate(uki, model.sections, 'prefix-last-wins');
    const exact = locate(uki, model.sections, 'exact-first-wins');
    for (const name of model.sections) {
      if (prefix.get(name) !== exact.get(name)) {
        fail('section_lookup_ambiguous', `how systemd-stub ${model.version} finds ${name} in this UKI (prefix or exact name, first or last match) is not pinned down; rename or deduplicate its sections`, { section: name });
      }
    }
    found = exact;
  } else {
    found = locate(uki, model.sections, model.matching);
  }
  if (model.profiles && uki.sections.some((s) => s.name === '.profile')) {
    fail('profiles_unsupported', 'multi-profile UKIs (.profile sections) are not predicted yet', {});
  }
  if (!found.get('.linux') || found.get('.linux')!.data.length === 0) fail('no_linux', 'no .linux section: systemd-stub refuses to boot it');
  return found;
}

/** Section names this UKI carries that no stub up to v258 knows (they are not measured). */
export function unknownSections(uki: UkiFile): string[] {
  const stubOwn = new Set(['.text', '.data', '.reloc', '.rodata', '.rdata', '.dynamic', '.dynsym', '.rela', '.sdmagic', '.bss', '.sbat', '.compat', '.edata', '.idata', '.pdata', '.xdata', '.tls']);
  return uki.sections.map((s) => s.name).filter((n) => !stubOwn.has(n) && !(UKI_SECTIONS_V258 as readonly string[]).includes(n));
}
