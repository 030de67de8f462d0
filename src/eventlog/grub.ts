import { utf8 } from '../core/bytes.ts';
import { EV } from './event-types.ts';
import { dataMismatch, digestHex, digestMatches } from './event-data.ts';
import { asciiz } from './le.ts';
import type { TcgEvent } from './tcg-log.ts';

/**
 * GRUB's TPM measurements (grub-core/commands/tpm.c, "grub_tpm_verify_string"): PCR 8 gets every
 * command and command line as EV_IPL whose data is "<prefix><text>\0" and whose digest is the
 * hash of <text> alone; PCR 9 gets every file GRUB reads (EV_IPL, data = its path, digest = hash
 * of the file contents, so the path is a hint only).
 *
 *   upstream GRUB 2.04+:  "grub_cmd: ", "kernel_cmdline: ", "module_cmdline: "   digest H(text)
 *   Red Hat's GRUB patch: "grub_cmd " (digest H(text + NUL)), "grub_kernel_cmdline " (H(text)),
 *                         and PCR 9 descriptions "grub_linuxefi Kernel" / "grub_linuxefi Initrd"
 */
export interface GrubFile {
  /** The path or description logged with the file; not covered by the digest. */
  pathHint: string;
  digest: string;
  /** What GRUB loaded it as, from the preceding command or the Red Hat description. */
  role?: 'kernel' | 'initrd';
}

export interface GrubState {
  commands: string[];
  kernelCmdlines: string[];
  moduleCmdlines: string[];
  files: GrubFile[];
}

const PREFIXES: { prefix: string; kind: 'command' | 'kernel' | 'module'; nul: boolean }[] = [
  { prefix: 'grub_cmd: ', kind: 'command', nul: false },
  { prefix: 'kernel_cmdline: ', kind: 'kernel', nul: false },
  { prefix: 'module_cmdline: ', kind: 'module', nul: false },
  { prefix: 'grub_kernel_cmdline ', kind: 'kernel', nul: false },
  { prefix: 'grub_cmd ', kind: 'command', nul: true },
];

export function isGrubString(event: TcgEvent): boolean {
  if (event.type !== EV.IPL || event.pcr !== 8) return false;
  const text = asciiz(event.data);
  return PREFIXES.some((p) => text.startsWith(p.prefix));
}

/** GRUB state from PCR 8/9 EV_IPL events, or undefined when GRUB measured nothing. */
export async function extractGrub(events: TcgEvent[], alg: number): Promise<GrubState | undefined> {
  const state: GrubState = { commands: [], kernelCmdlines: [], moduleCmdlines: [], files: [] };
  let seen = false;
  let lastCommand = '';
  for (const event of events) {
    if (event.type !== EV.IPL) continue;
    if (event.pcr === 8) {
      const text = asciiz(event.data);
      const form = PREFIXES.find((p) => text.startsWith(p.prefix));
      if (!form) continue;
      const body = text.slice(form.prefix.length);
      const payload = utf8.encode(form.nul ? `${body}\0` : body);
      if (!(await digestMatches(event, alg, payload))) throw dataMismatch(event, `GRUB string "${form.prefix.trim()}"`);
      seen = true;
      if (form.kind === 'command') {
        state.commands.push(body);
        lastCommand = body;
      } else if (form.kind === 'kernel') state.kernelCmdlines.push(body);
      else state.moduleCmdlines.push(body);
    } else if (event.pcr === 9) {
      seen = true;
      const pathHint = asciiz(event.data);
      state.files.push({ pathHint, digest: digestHex(event, alg), role: fileRole(pathHint, lastCommand) });
    }
  }
  return seen ? state : undefined;
}

function fileRole(pathHint: string, lastCommand: string): GrubFile['role'] {
  if (pathHint === 'grub_linuxefi Kernel') return 'kernel';
  if (pathHint === 'grub_linuxefi Initrd') return 'initrd';
  const verb = lastCommand.split(/\s+/)[0];
  if (/^linux(efi|16)?$/.test(verb)) return 'kernel';
  if (/^initrd(efi|16)?$/.test(verb)) return 'initrd';
  return undefined;
}
