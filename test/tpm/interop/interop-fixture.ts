/**
 * Shared by the tpm2-tools interop tests: one swtpm per test file, Sigil and tpm2-tools taking
 * turns on it (swtpm serves one TCP client at a time, so Sigil's connection is always closed
 * before a tool runs), a scratch folder for the files the tools read and write, and the
 * tpm2-tools "serialized" PCR file format.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { hashAlg } from '../../../src/tpm/algorithms.ts';
import type { PcrSelection } from '../../../src/tpm/structures/basic.ts';
import { startSwtpm, type StartSwtpmOptions, type SwtpmInstance } from '../../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../../src/tpm/tpm.ts';

const run = promisify(execFile);

export interface ToolResult {
  rc: number;
  stdout: string;
  stderr: string;
}

/** Whether tpm2-tools is installed; the interop tests skip (with this reason) when it is not. */
export async function toolsMissing(): Promise<string | false> {
  try {
    await run('tpm2_pcrread', ['--version']);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'tpm2-tools is not installed' : false;
  }
}

export class InteropFixture {
  readonly swtpm: SwtpmInstance;
  /** Scratch folder for tool input and output files; removed by stop(). */
  readonly dir: string;

  private constructor(swtpm: SwtpmInstance, dir: string) {
    this.swtpm = swtpm;
    this.dir = dir;
  }

  static async start(options: StartSwtpmOptions = {}): Promise<InteropFixture> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-interop-'));
    return new InteropFixture(await startSwtpm(options), dir);
  }

  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Run `use` on a fresh Sigil connection and close it afterwards, so tpm2-tools can connect next. */
  async sigil<T>(use: (tpm: Tpm) => Promise<T>): Promise<T> {
    const tpm = new Tpm(this.swtpm.transport());
    try {
      return await use(tpm);
    } finally {
      await tpm.close();
    }
  }

  /** One tpm2-tools command; a non-zero exit is returned (rc), not thrown. */
  async tool(command: string, args: string[]): Promise<ToolResult> {
    const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${this.swtpm.serverPort}` };
    try {
      const { stdout, stderr } = await run(command, args, { env, cwd: this.dir, encoding: 'utf8', timeout: 20_000 });
      return { rc: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code?: unknown; signal?: string | null; stdout?: string; stderr?: string; message: string };
      // A tool killed by a signal counts as failed too (tpm2_nvreadpublic 5.4 segfaults on a missing index).
      const rc = typeof e.code === 'number' ? e.code : e.signal ? 128 : undefined;
      if (rc === undefined) throw error; // not an exit status: the tool could not run
      return { rc, stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''}${e.signal ? `\n(killed by ${e.signal})` : ''}` || e.message };
    }
  }

  /** A tool that must succeed, followed by flushing what it left loaded (no resource manager). */
  async toolOk(command: string, args: string[]): Promise<string> {
    const result = await this.tool(command, args);
    await this.flushAll();
    if (result.rc !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.rc}: ${result.stderr}`);
    return result.stdout;
  }

  /** tpm2_flushcontext -t and -s: transient objects and sessions. */
  async flushAll(): Promise<void> {
    for (const flag of ['-t', '-s']) {
      const result = await this.tool('tpm2_flushcontext', [flag]);
      if (result.rc !== 0) throw new Error(`tpm2_flushcontext ${flag} exited ${result.rc}: ${result.stderr}`);
    }
  }

  async stop(): Promise<void> {
    try {
      await this.swtpm.stop();
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * tpm2-tools' "serialized" PCR file (tpm2_quote -o, tpm2_pcrread -F serialized, tpm2_checkquote -f):
 * raw little-endian C structs, not TPM marshaling. Layout, from tpm2-tools 5.4
 * (tools/misc/tpm2_checkquote.c parse_selection_data_from_file, checked against tpm2_quote -o output):
 *   TPML_PCR_SELECTION: u32 count, 16 × TPMS_PCR_SELECTION {u16 hash, u8 sizeofSelect, u8[4] select, pad}
 *     = 4 + 16 × 8 = 132 bytes;
 *   u32 number of TPML_DIGEST lists;
 *   each TPML_DIGEST: u32 count, 8 × TPM2B_DIGEST {u16 size, u8[64] buffer} = 4 + 8 × 66 = 532 bytes,
 *   holding the values in selection order, 8 per list.
 */
export function serializedPcrs(selection: PcrSelection[], values: Map<number, Map<number, Uint8Array>>): Uint8Array {
  const digests: Uint8Array[] = [];
  for (const bank of selection) for (const index of bank.pcrs) digests.push(values.get(bank.hash)!.get(index)!);
  const lists = Math.max(1, Math.ceil(digests.length / 8));
  const out = new Uint8Array(132 + 4 + lists * 532);
  const view = new DataView(out.buffer);
  view.setUint32(0, selection.length, true);
  selection.forEach((bank, i) => {
    const at = 4 + i * 8;
    view.setUint16(at, bank.hash, true);
    out[at + 2] = 3;
    for (const pcr of bank.pcrs) out[at + 3 + (pcr >> 3)] |= 1 << (pcr & 7);
  });
  view.setUint32(132, lists, true);
  digests.forEach((d, i) => {
    const list = 136 + Math.floor(i / 8) * 532;
    view.setUint32(list, Math.min(8, digests.length - Math.floor(i / 8) * 8), true);
    const at = list + 4 + (i % 8) * 66;
    view.setUint16(at, d.length, true);
    out.set(d, at + 2);
  });
  return out;
}

/** Parse tpm2_pcrread's YAML stdout ("  sha256:\n    16: 0x…") into bank label → index → hex. */
export function parsePcrreadYaml(text: string): Record<string, Record<number, string>> {
  const out: Record<string, Record<number, string>> = {};
  let bank = '';
  for (const line of text.split('\n')) {
    const bankMatch = /^\s{2}(\w+):\s*$/.exec(line);
    if (bankMatch) {
      bank = bankMatch[1];
      out[bank] = {};
      continue;
    }
    const valueMatch = /^\s+(\d+)\s*:\s*0x([0-9A-Fa-f]+)\s*$/.exec(line);
    if (valueMatch && bank) out[bank][Number(valueMatch[1])] = valueMatch[2].toLowerCase();
  }
  return out;
}

/** Concatenated PCR values in selection order (tpm2-tools' "values" format). */
export function pcrValuesFile(selection: PcrSelection[], values: Map<number, Map<number, Uint8Array>>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const bank of selection) {
    for (const index of bank.pcrs) {
      const value = values.get(bank.hash)!.get(index)!;
      if (value.length !== hashAlg(bank.hash).size) throw new Error(`PCR ${index} value has the wrong size`);
      parts.push(value);
    }
  }
  return Buffer.concat(parts);
}
