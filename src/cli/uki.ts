import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { digest, type HashName } from '../core/hash.ts';
import { toHex } from '../core/hex.ts';
import { authenticodeDigest } from '../measure/pe/authenticode.ts';
import { predictUki } from '../measure/uki/predict.ts';
import { BANK_LABELS, ukiReferenceDocument } from '../measure/uki/reference.ts';
import { buildUki } from '../measure/uki/uki-build.ts';
import { parseUki } from '../measure/uki/uki-file.ts';
import { printJson } from './output.ts';

/** `sigil uki build | predict | inspect | authenticode`: thin over src/measure/{pe,uki}. */

const DEFAULT_STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const BANKS: Record<string, HashName> = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

function readInput(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new SigilError('cli.usage_file', `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { path });
  }
}

function bank(label: string): HashName {
  const found = BANKS[label.toLowerCase()];
  if (!found) throw new SigilError('cli.usage_bank', `unknown bank "${label}" (sha1, sha256, sha384, sha512)`, { bank: label });
  return found;
}

function stubVersionOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const version = Number(text);
  if (!Number.isInteger(version)) throw new SigilError('cli.usage_stub_version', `--stub-version wants a systemd major version such as 252, not "${text}"`);
  return version;
}

interface BuildOptions {
  stub?: string;
  linux: string;
  initrd?: string;
  cmdline?: string;
  osRelease?: string;
  uname?: string;
  splash?: string;
  dtb?: string;
  pcrpkey?: string;
  pcrsig?: string;
  output: string;
  json?: boolean;
}

interface PredictOptions {
  stubVersion?: string;
  bank: string;
  phase?: string;
  loadOptions?: string;
  secureBoot?: boolean;
  document?: boolean;
  json?: boolean;
}

export function registerUki(program: Command): void {
  const uki = program.command('uki').description('Unified kernel images: build reproducibly, predict PCR 4/9/11, Authenticode');

  uki
    .command('build')
    .description('build a UKI from systemd-stub + kernel + initrd + cmdline (same inputs, same bytes)')
    .option('--stub <file>', 'systemd-stub PE file', DEFAULT_STUB)
    .requiredOption('--linux <file>', 'kernel image (bzImage with EFI stub)')
    .option('--initrd <file>', 'initrd (cpio)')
    .option('--cmdline <text>', 'kernel command line (@file reads it from a file)')
    .option('--os-release <file>', 'os-release file for .osrel')
    .option('--uname <text>', '"uname -r" text for .uname')
    .option('--splash <file>', 'BMP for .splash')
    .option('--dtb <file>', 'devicetree blob for .dtb')
    .option('--pcrpkey <file>', 'PEM public key for .pcrpkey')
    .option('--pcrsig <file>', 'PCR signature JSON for .pcrsig')
    .requiredOption('-o, --output <file>', 'where to write the UKI')
    .option('--json', 'print JSON')
    .action(async (options: BuildOptions) => {
      const optional = (path: string | undefined, what: string) => (path === undefined ? undefined : readInput(path, what));
      const cmdline = options.cmdline?.startsWith('@') ? new TextDecoder().decode(readInput(options.cmdline.slice(1), 'cmdline')) : options.cmdline;
      const image = buildUki({
        stub: readInput(options.stub ?? DEFAULT_STUB, 'stub'),
        linux: readInput(options.linux, 'kernel'),
        initrd: optional(options.initrd, 'initrd'),
        cmdline,
        osRelease: optional(options.osRelease, 'os-release'),
        uname: options.uname,
        splash: optional(options.splash, 'splash'),
        dtb: optional(options.dtb, 'devicetree'),
        pcrpkey: optional(options.pcrpkey, 'PCR public key'),
        pcrsig: optional(options.pcrsig, 'PCR signature'),
      });
      writeFileSync(options.output, image);
      const result = { output: options.output, size: image.length, sha256: toHex(await digest('SHA-256', image)), authenticodeSha256: toHex(await authenticodeDigest(image, 'SHA-256')) };
      if (options.json) printJson(result);
      else process.stdout.write(`${result.output}: ${result.size} bytes, sha256 ${result.sha256}\n`);
    });

  uki
    .command('predict <uki>')
    .description('predict PCR 4, 9, 11 (and 12) after firmware boots this UKI')
    .option('--stub-version <n>', 'systemd-stub major version (default: from the UKI .sdmagic)')
    .option('--bank <bank>', 'PCR bank: sha1, sha256, sha384, sha512', 'sha256')
    .option('--phase <words>', 'boot phases extended into PCR 11, colon-separated (e.g. enter-initrd:leave-initrd)')
    .option('--load-options <text>', 'command line a boot loader passes to the UKI (default: none)')
    .option('--secure-boot', 'Secure Boot is on (the stub then ignores passed command lines)')
    .option('--document', 'print the full reference-value document (events, sections, notes)')
    .option('--json', 'print {"pcr4","pcr9","pcr11"} as JSON')
    .action(async (path: string, options: PredictOptions) => {
      const bytes = readInput(path, 'UKI');
      const hash = bank(options.bank);
      const prediction = await predictUki(bytes, {
        stubVersion: stubVersionOption(options.stubVersion),
        banks: [hash],
        phases: options.phase ? options.phase.split(':').filter(Boolean) : [],
        loadOptions: options.loadOptions,
        secureBoot: options.secureBoot,
      });
      if (options.document) {
        printJson(await ukiReferenceDocument(bytes, prediction, basename(path)));
        return;
      }
      const values = prediction.pcrs[hash] ?? {};
      const hasPcr12 = prediction.events.some((e) => e.pcr === 12);
      const short = Object.fromEntries(Object.entries(values).filter(([pcr]) => pcr !== '12' || hasPcr12).map(([pcr, v]) => [`pcr${pcr}`, toHex(v)]));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(short)}\n`);
        return;
      }
      process.stdout.write(`systemd-stub ${prediction.stub.version} (${prediction.stub.versionSource}), bank ${BANK_LABELS[hash]}\n`);
      for (const [name, value] of Object.entries(short)) process.stdout.write(`${name.replace('pcr', 'PCR ')}: ${value}\n`);
      for (const u of prediction.unpredicted) process.stdout.write(`PCR ${u.pcr}: not predicted (${u.reason})\n`);
      for (const note of prediction.notes) process.stdout.write(`note: ${note}\n`);
    });

  uki
    .command('inspect <uki>')
    .description('list the sections of a UKI (or any PE file)')
    .option('--json', 'print JSON')
    .action(async (path: string, options: { json?: boolean }) => {
      const parsed = parseUki(readInput(path, 'UKI'));
      const sections = [];
      for (const s of parsed.sections) {
        sections.push({ name: s.name, virtualAddress: s.header.virtualAddress, virtualSize: s.header.virtualSize, pointerToRawData: s.header.pointerToRawData, sizeOfRawData: s.header.sizeOfRawData, sha256: toHex(await digest('SHA-256', s.data)) });
      }
      const result = { format: parsed.pe.format, stub: parsed.stubIdentity ?? null, stubVersion: parsed.stubVersion ?? null, sections };
      if (options.json) {
        printJson(result);
        return;
      }
      process.stdout.write(`${result.format}, ${result.stub ?? 'no systemd-stub magic'}\n`);
      for (const s of sections) process.stdout.write(`${s.name.padEnd(9)} vaddr 0x${s.virtualAddress.toString(16).padStart(8, '0')} size ${String(s.virtualSize).padStart(10)} sha256 ${s.sha256}\n`);
    });

  uki
    .command('authenticode <file>')
    .description('Authenticode hash of a PE file, as firmware measures it into PCR 4')
    .option('--bank <bank>', 'sha1, sha256, sha384, sha512', 'sha256')
    .option('--pad8', 'zero-pad to a multiple of 8 first (sbsign / go-uefi convention)')
    .option('--json', 'print JSON')
    .action(async (path: string, options: { bank: string; pad8?: boolean; json?: boolean }) => {
      const hash = bank(options.bank);
      const value = toHex(await authenticodeDigest(readInput(path, 'PE file'), hash, { padTo8: options.pad8 }));
      if (options.json) printJson({ file: path, bank: BANK_LABELS[hash], authenticode: value });
      else process.stdout.write(`${value}  ${path}\n`);
    });
}
