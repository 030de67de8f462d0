/**
 * Boot a UKI for real: QEMU (q35, TCG) with Debian's OVMF, a swtpm TPM 2.0 on a private socket,
 * and the UKI as \EFI\BOOT\BOOTX64.EFI on a FAT ESP (QEMU's read-only vvfat view of a folder, so no
 * mkfs/mtools is needed). The busybox initramfs from scripts/boot-assets.sh prints the PCRs and
 * logs to the serial console between SIGIL-* markers and powers off. Every process started here is
 * stopped before the call returns.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBase64 } from '../../../src/core/hex.ts';

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export function bootToolsMissing(): string | undefined {
  for (const tool of ['qemu-system-x86_64', 'swtpm']) {
    if (spawnSync(tool, ['--version']).status !== 0) return `${tool} is not installed (scripts/setup.sh installs it)`;
  }
  for (const file of [OVMF_CODE, OVMF_VARS]) if (!existsSync(file)) return `${file} is missing (Debian package ovmf)`;
  return undefined;
}

export interface BootResult {
  serial: string;
  seconds: number;
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve(null);
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

async function waitForFile(path: string, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`swtpm did not create ${path}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function bootUki(uki: Uint8Array, options: { timeoutMs?: number } = {}): Promise<BootResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-boot-'));
  const children: ChildProcess[] = [];
  try {
    const esp = join(dir, 'esp/EFI/BOOT');
    mkdirSync(esp, { recursive: true });
    writeFileSync(join(esp, 'BOOTX64.EFI'), uki);
    copyFileSync(OVMF_VARS, join(dir, 'vars.fd'));
    const tpmDir = join(dir, 'tpm');
    mkdirSync(tpmDir);
    const socket = join(tpmDir, 'swtpm.sock');
    const swtpm = spawn('swtpm', ['socket', '--tpm2', '--tpmstate', `dir=${tpmDir}`, '--ctrl', `type=unixio,path=${socket}`, '--log', `file=${join(tpmDir, 'log')}`], { stdio: 'ignore' });
    children.push(swtpm);
    await waitForFile(socket, 10_000);
    const serial = join(dir, 'serial.log');
    const started = performance.now();
    const qemu = spawn(
      'qemu-system-x86_64',
      [
        '-machine', 'q35', '-accel', 'tcg', '-m', '1024', '-smp', '1',
        '-display', 'none', '-nodefaults', '-no-reboot', '-monitor', 'none',
        '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${OVMF_CODE}`,
        '-drive', `if=pflash,format=raw,unit=1,file=${join(dir, 'vars.fd')}`,
        '-chardev', `socket,id=chrtpm,path=${socket}`, '-tpmdev', 'emulator,id=tpm0,chardev=chrtpm', '-device', 'tpm-tis,tpmdev=tpm0',
        '-drive', `if=virtio,format=raw,readonly=on,file=fat:${join(dir, 'esp')}`,
        '-serial', `file:${serial}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.push(qemu);
    let stderr = '';
    qemu.stderr!.on('data', (chunk) => (stderr += chunk));
    const code = await waitForExit(qemu, options.timeoutMs ?? 120_000);
    const seconds = (performance.now() - started) / 1000;
    const output = existsSync(serial) ? readFileSync(serial, 'latin1') : '';
    if (code !== 0) throw new Error(`QEMU ${code === null ? 'timed out' : `exited ${code}`}: ${stderr.trim()}\n--- serial tail ---\n${output.slice(-3000)}`);
    return { serial: output, seconds };
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(children.map((c) => waitForExit(c, 5000)));
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ProbeOutput {
  cmdline: string;
  /** bank label (sha1, sha256, ...) → PCR index → lowercase hex, read from sysfs. */
  pcrs: Map<string, Map<number, string>>;
  eventLog: Uint8Array;
  imaLog?: Uint8Array;
}

/** Lines between two markers, without kernel log lines that the console interleaves. */
function between(lines: string[], begin: string, end: string): string[] {
  const from = lines.indexOf(begin);
  const to = lines.indexOf(end, from + 1);
  if (from < 0 || to < 0) throw new Error(`serial output lacks ${begin} … ${end}`);
  return lines.slice(from + 1, to).filter((line) => !/^\s*\[\s*\d+\.\d+\]/.test(line) && line.trim() !== '');
}

export function parseProbeOutput(serial: string): ProbeOutput {
  const lines = serial.split('\n').map((line) => line.replace(/\r$/, ''));
  const cmdline = lines.find((l) => l.startsWith('SIGIL-CMDLINE '))?.slice('SIGIL-CMDLINE '.length) ?? '';
  const pcrs = new Map<string, Map<number, string>>();
  for (const line of between(lines, 'SIGIL-PCRS-BEGIN', 'SIGIL-PCRS-END')) {
    const match = /^pcr-(sha\d+) (\d+) ([0-9A-Fa-f]+)$/.exec(line.trim());
    if (!match) continue;
    if (!pcrs.has(match[1])) pcrs.set(match[1], new Map());
    pcrs.get(match[1])!.set(Number(match[2]), match[3].toLowerCase());
  }
  const eventLog = fromBase64(between(lines, 'SIGIL-EVENTLOG-BEGIN', 'SIGIL-EVENTLOG-END').join(''));
  const ima = between(lines, 'SIGIL-IMALOG-BEGIN', 'SIGIL-IMALOG-END').join('');
  return { cmdline, pcrs, eventLog, imaLog: ima ? fromBase64(ima) : undefined };
}
