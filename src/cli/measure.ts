/**
 * `sigil measure snp|tdx|sign-rv|verify-rv`: predict launch measurements from artefacts and sign
 * them as one reference-value document. `snp` takes sev-snp-measure's flags, so its users feel at
 * home. Library modules are imported inside the actions: other groups do not pay for them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { toBase64, toHex } from '../core/hex.ts';
import type { ReferenceValue } from '../measure/reference-values/document.ts';
import { printJson } from './output.ts';

function readInput(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new SigilError('cli.usage_file_unreadable', `cannot read the ${what} file ${path}: ${(error as Error).message}`, { path });
  }
}

function integer(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 0) throw new SigilError('cli.usage_number', `${what} "${text}" is not a non-negative integer`, { text });
  return value;
}

function bigintOf(text: string, what: string): bigint {
  try {
    const value = BigInt(text);
    if (value < 0n || value >= 1n << 64n) throw new RangeError('out of range');
    return value;
  } catch {
    throw new SigilError('cli.usage_number', `${what} "${text}" is not a 64-bit value`, { text });
  }
}

/** Library usage refusals are the CLI's usage errors (exit 2). */
async function asUsage<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof SigilError && error.code === 'measure.usage') throw new SigilError('cli.usage_measure', error.message, error.details);
    throw error;
  }
}

function writeUnsignedValues(path: string, values: ReferenceValue[]): void {
  writeFileSync(path, `${JSON.stringify({ values }, null, 2)}\n`);
}

interface SnpOptions {
  mode: string;
  vcpus?: string;
  vcpuType?: string;
  vcpuSig?: string;
  vcpuFamily?: string;
  vcpuModel?: string;
  vcpuStepping?: string;
  guestFeatures: string;
  ovmf?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  vmmType?: string;
  snpOvmfHash?: string;
  svsm?: string;
  varsSize?: string;
  varsFile?: string;
  ovmfSize?: string;
  ec2LegacyRdx0?: boolean;
  outputFormat: string;
  rvOut?: string;
  json?: boolean;
  verbose?: boolean;
}

async function measureSnpCommand(o: SnpOptions): Promise<void> {
  const { measureSev } = await import('../measure/snp/request.ts');
  if (o.outputFormat !== 'hex' && o.outputFormat !== 'base64') throw new SigilError('cli.usage_output_format', `--output-format must be hex or base64, not "${o.outputFormat}"`);
  const result = await asUsage(() =>
    measureSev({
      mode: o.mode as never,
      ovmf: o.ovmf ? readInput(o.ovmf, 'OVMF') : undefined,
      vcpus: o.vcpus === undefined ? undefined : integer(o.vcpus, '--vcpus'),
      vcpuType: o.vcpuType,
      vcpuSig: o.vcpuSig === undefined ? undefined : Number(bigintOf(o.vcpuSig, '--vcpu-sig')),
      vcpuFamily: o.vcpuFamily === undefined ? undefined : integer(o.vcpuFamily, '--vcpu-family'),
      vcpuModel: o.vcpuModel === undefined ? undefined : integer(o.vcpuModel, '--vcpu-model'),
      vcpuStepping: o.vcpuStepping === undefined ? undefined : integer(o.vcpuStepping, '--vcpu-stepping'),
      guestFeatures: bigintOf(o.guestFeatures, '--guest-features'),
      kernel: o.kernel ? readInput(o.kernel, 'kernel') : undefined,
      initrd: o.initrd ? readInput(o.initrd, 'initrd') : undefined,
      append: o.append,
      vmmType: o.vmmType,
      snpOvmfHash: o.snpOvmfHash,
      svsm: o.svsm ? readInput(o.svsm, 'SVSM') : undefined,
      ovmfVarsSize: o.varsFile ? readInput(o.varsFile, 'OVMF variables').length : o.varsSize === undefined ? undefined : integer(o.varsSize, '--vars-size'),
      ovmfSize: o.ovmfSize === undefined ? undefined : integer(o.ovmfSize, '--ovmf-size'),
      ec2LegacyRdxZero: o.ec2LegacyRdx0,
    }),
  );
  const text = o.outputFormat === 'base64' ? toBase64(result.measurement) : toHex(result.measurement);
  if (o.rvOut && result.referenceValue) writeUnsignedValues(o.rvOut, [result.referenceValue]);
  if (o.json) printJson({ mode: result.mode, measurement: text, format: o.outputFormat, referenceValue: result.referenceValue });
  else if (o.verbose) console.log(`Calculated ${result.mode} guest measurement: ${text}`);
  else console.log(text);
}

interface TdxOptions {
  ovmf?: string;
  memory?: string;
  acpiTables?: string;
  metadata?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  platformOnly?: boolean;
  patchKernel?: boolean;
  authenticodePad8?: boolean;
  pageAddOrder: string;
  events?: boolean;
  rvOut?: string;
  json?: boolean;
}

/** virtee/tdx-measure's metadata.json: paths are relative to its folder. */
function readTdxMetadata(path: string): Partial<TdxOptions> {
  let m: { boot_config?: Record<string, unknown>; direct?: Record<string, unknown> };
  try {
    m = JSON.parse(new TextDecoder().decode(readInput(path, 'metadata')));
  } catch (error) {
    if (error instanceof SigilError) throw error;
    throw new SigilError('cli.usage_metadata', `${path} is not JSON`, { path });
  }
  const at = (p: unknown) => (typeof p === 'string' ? resolve(dirname(path), p) : undefined);
  const boot = m.boot_config ?? {};
  const direct = m.direct;
  return {
    ovmf: at(boot.bios),
    memory: typeof boot.memory === 'string' ? boot.memory : undefined,
    acpiTables: at(boot.acpi_tables),
    kernel: direct ? at(direct.kernel) : undefined,
    initrd: direct ? at(direct.initrd) : undefined,
    append: direct && typeof direct.cmdline === 'string' ? direct.cmdline : undefined,
  };
}

async function measureTdxCommand(options: TdxOptions): Promise<void> {
  const { parseMemorySize, predictTdx, tdxReferenceValues } = await import('../measure/tdx/predict.ts');
  const { digest } = await import('../core/hash.ts');
  const o = { ...(options.metadata ? readTdxMetadata(options.metadata) : {}), ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as TdxOptions;
  if (!o.ovmf) throw new SigilError('cli.usage_tdx', 'give --ovmf (or --metadata naming the firmware)');
  if (!o.memory) throw new SigilError('cli.usage_tdx', 'give --memory (guest RAM, e.g. 2048M)');
  if (o.pageAddOrder !== 'single-pass' && o.pageAddOrder !== 'two-pass') throw new SigilError('cli.usage_tdx', '--page-add-order is single-pass or two-pass');
  const firmware = readInput(o.ovmf, 'firmware');
  const sources = [{ name: 'ovmf', sha256: toHex(await digest('SHA-256', firmware)) }];
  const acpiTables = o.acpiTables ? readInput(o.acpiTables, 'ACPI tables') : undefined;
  if (acpiTables) sources.push({ name: 'acpi-tables', sha256: toHex(await digest('SHA-256', acpiTables)) });
  let directBoot;
  let authenticode;
  if (o.kernel && !o.platformOnly) {
    if (!o.initrd) throw new SigilError('cli.usage_tdx', 'a direct boot needs --initrd too (an empty file for none)');
    directBoot = { kernel: readInput(o.kernel, 'kernel'), initrd: readInput(o.initrd, 'initrd'), cmdline: o.append ?? '', patchKernel: o.patchKernel };
    if (directBoot.kernel.length === 0) throw new SigilError('cli.usage_tdx', `the kernel ${o.kernel} is empty: give a kernel, or --platform-only for MRTD and RTMR0 alone`);
    sources.push({ name: 'kernel', sha256: toHex(await digest('SHA-256', directBoot.kernel)) }, { name: 'initrd', sha256: toHex(await digest('SHA-256', directBoot.initrd)) });
    const { authenticodeDigest } = await import('../measure/pe/authenticode.ts');
    authenticode = (image: Uint8Array) => authenticodeDigest(image, 'SHA-384', { padTo8: o.authenticodePad8 });
  }
  const memorySize = parseMemorySize(o.memory);
  const prediction = await predictTdx({ firmware, memorySize, acpiTables, pageAddOrder: o.pageAddOrder, directBoot, authenticode });
  const parameters = { memorySize, pageAddOrder: o.pageAddOrder, ...(directBoot ? { cmdline: directBoot.cmdline, patchKernel: Boolean(o.patchKernel) } : {}) };
  const referenceValues = tdxReferenceValues(prediction, sources, parameters);
  if (o.rvOut) writeUnsignedValues(o.rvOut, referenceValues);
  const out: Record<string, unknown> = { mrtd: toHex(prediction.mrtd) };
  prediction.rtmr.forEach((v, i) => {
    if (v) out[`rtmr${i}`] = toHex(v);
  });
  if (o.events) out.events = prediction.events.map((e) => ({ rtmr: e.rtmr, description: e.description, digest: toHex(e.digest) }));
  if (o.json) printJson({ ...out, referenceValues });
  else for (const [k, v] of Object.entries(out)) if (k !== 'events') console.log(`${k}: ${v}`);
  if (!o.json && o.events) for (const e of prediction.events) console.log(`  rtmr${e.rtmr} ${toHex(e.digest)} ${e.description}`);
}

/**
 * Values from a file: a whole document, {"values": [...]}, a bare list, or the --json output of
 * `measure snp` ({referenceValue}), `measure tdx` and `uki predict` ({referenceValues}).
 */
function valuesIn(path: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(readInput(path, 'values')));
  } catch (error) {
    if (error instanceof SigilError) throw error;
    throw new SigilError('rv.malformed', `${path} is not JSON`, { path });
  }
  const o = parsed as { values?: unknown; referenceValues?: unknown; referenceValue?: unknown };
  const list = Array.isArray(parsed) ? parsed : (o.values ?? o.referenceValues ?? (o.referenceValue ? [o.referenceValue] : undefined));
  if (!Array.isArray(list)) throw new SigilError('rv.malformed', `${path} has no "values" list`, { path });
  return list;
}

async function signRvCommand(o: { key: string; in: string[]; out: string; kid?: string; issuer?: string; validDays?: string; json?: boolean }): Promise<void> {
  const { referenceValueDocument } = await import('../measure/reference-values/document.ts');
  const { importRvSigningKey, signReferenceValues } = await import('../measure/reference-values/jws.ts');
  const key = await importRvSigningKey(new TextDecoder().decode(readInput(o.key, 'key')), o.kid);
  const values = o.in.flatMap(valuesIn) as ReferenceValue[];
  const days = o.validDays === undefined ? undefined : integer(o.validDays, '--valid-days');
  const document = referenceValueDocument(values, { issuer: o.issuer, notAfter: days === undefined ? undefined : new Date(Date.now() + days * 86_400_000) });
  const jws = await signReferenceValues(document, key);
  writeFileSync(o.out, `${jws}\n`);
  if (o.json) printJson({ out: o.out, id: document.id, alg: key.alg, kid: key.kid, values: document.values.length });
  else console.log(`signed ${document.values.length} reference value(s) as ${document.id} (${key.alg}) -> ${o.out}`);
}

async function verifyRvCommand(o: { in: string; key: string; json?: boolean }): Promise<void> {
  const { importRvTrustedKeys, loadReferenceValues } = await import('../measure/reference-values/jws.ts');
  const trusted = await importRvTrustedKeys(new TextDecoder().decode(readInput(o.key, 'trusted key')));
  const { document, signer } = await loadReferenceValues(new TextDecoder().decode(readInput(o.in, 'JWS')), trusted);
  if (o.json) {
    printJson({ verified: true, alg: signer.alg, kid: signer.kid, document });
    return;
  }
  console.log(`verified ${document.id} (${signer.alg}${document.issuer ? `, issuer ${document.issuer}` : ''}${document.validity?.notAfter ? `, valid until ${document.validity.notAfter}` : ''})`);
  for (const v of document.values) console.log(`${v.kind}${v.index === undefined ? '' : `[${v.index}]`}${v.bank ? `:${v.bank}` : ''} ${v.value}${v.label ? `  ${v.label}` : ''}`);
}

export function registerMeasure(program: Command): void {
  const measure = program.command('measure').description('predict SEV/SNP and TDX launch measurements; sign reference values');

  measure
    .command('snp')
    .description('AMD SEV / SEV-ES / SEV-SNP launch digest (flags as sev-snp-measure)')
    .option('--mode <mode>', 'snp, seves, sev, snp:ovmf-hash or snp:svsm', 'snp')
    .option('--vcpus <n>', 'number of guest vCPUs')
    .option('--vcpu-type <type>', 'QEMU vCPU model (EPYC, EPYC-v4, EPYC-Rome, EPYC-Milan, EPYC-Genoa, EPYC-Turin, ...)')
    .option('--vcpu-sig <value>', 'vCPU signature (CPUID(1).EAX)')
    .option('--vcpu-family <n>', 'vCPU family').option('--vcpu-model <n>', 'vCPU model').option('--vcpu-stepping <n>', 'vCPU stepping')
    .option('--guest-features <value>', 'SNP guest features (VMSA SEV_FEATURES)', '0x1')
    .option('--ovmf <path>', 'OVMF firmware image')
    .option('--kernel <path>', 'kernel (measured direct boot)')
    .option('--initrd <path>', 'initrd (with --kernel)')
    .option('--append <cmdline>', 'kernel command line (with --kernel)')
    .option('--vmm-type <type>', 'QEMU, ec2 or gce', 'QEMU')
    .option('--snp-ovmf-hash <hex>', 'precomputed OVMF hash (from --mode snp:ovmf-hash)')
    .option('--svsm <path>', 'Coconut SVSM image (snp:svsm)')
    .option('--vars-size <bytes>', 'OVMF variable store size (snp:svsm)')
    .option('--vars-file <path>', 'OVMF variable store, for its size (snp:svsm)')
    .option('--ovmf-size <bytes>', 'OVMF size when only --snp-ovmf-hash is given (snp:svsm)')
    .option('--ec2-legacy-rdx0', 'EC2 VMSA with RDX=0 (before sev-snp-measure 4a02bf0; virtee/sev)')
    .option('--output-format <format>', 'hex or base64', 'hex')
    .option('--rv-out <path>', 'also write the value, with its artefact digests, as unsigned reference values')
    .option('-v, --verbose', 'say what was calculated')
    .option('--json', 'print JSON')
    .action(measureSnpCommand);

  measure
    .command('tdx')
    .description('Intel TDX MRTD and RTMR 0-3 from TDVF/OVMF, RAM size, ACPI tables and a direct boot')
    .option('--ovmf <path>', 'TDVF/OVMF firmware image')
    .option('--memory <size>', 'guest RAM (QEMU -m: 2048M, 4G, bytes)')
    .option('--acpi-tables <path>', "QEMU's etc/acpi/tables blob (needed for RTMR0)")
    .option('--metadata <path>', "virtee/tdx-measure metadata.json (firmware, memory, ACPI tables, direct boot)")
    .option('--kernel <path>', 'kernel (direct boot, RTMR1)').option('--initrd <path>', 'initrd (RTMR2)').option('--append <cmdline>', 'kernel command line (RTMR2)')
    .option('--platform-only', 'MRTD and RTMR0 only, even when the metadata names a kernel')
    .option('--patch-kernel', 'measure the kernel as QEMU patches it (OVMF 2025.02)')
    .option('--authenticode-pad8', 'pad the kernel to 8 bytes before Authenticode (tdx-measure)')
    .option('--page-add-order <order>', 'single-pass (KVM, upstream QEMU) or two-pass (older TDX QEMU)', 'single-pass')
    .option('--events', 'also list each RTMR event')
    .option('--rv-out <path>', 'also write the values as unsigned reference values')
    .option('--json', 'print JSON')
    .action(measureTdxCommand);

  measure
    .command('sign-rv')
    .description('sign reference values (one or more --in files) as one JWS document')
    .requiredOption('--key <path>', 'signing key: PKCS#8 PEM or private JWK')
    .requiredOption('--in <paths...>', 'values: a document, {"values": [...]} or a list (merged in order)')
    .requiredOption('--out <path>', 'where to write the JWS')
    .option('--kid <id>', 'key identifier to put in the JWS header')
    .option('--issuer <name>', 'who vouches for these values')
    .option('--valid-days <n>', 'expire after this many days')
    .option('--json', 'print JSON')
    .action(async (o: { key: string; in: string[]; out: string; kid?: string; issuer?: string; validDays?: string; json?: boolean }) => {
      await signRvCommand(o);
    });

  measure
    .command('verify-rv')
    .description('check a signed reference-value document against a trusted key and print it')
    .requiredOption('--in <path>', 'the JWS')
    .requiredOption('--key <path>', 'trusted public key(s): SPKI PEM, JWK or JWK set')
    .option('--json', 'print the document as JSON')
    .action(async (o: { in: string; key: string; json?: boolean }) => {
      await verifyRvCommand(o);
    });
}
