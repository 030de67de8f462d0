import { SigilError } from '../core/errors.ts';
import { HASH_ALGS, TPM_ALG } from '../tpm/constants.ts';
import { extractFirmware, type FirmwareState } from './firmware-state.ts';
import { extractGrub, type GrubState } from './grub.ts';
import type { AppliedQuirk, QuirkOptions } from './quirks.ts';
import { extractLinuxStub, extractSystemd, type LinuxStubState, type SystemdState } from './systemd.ts';
import type { TcgEventLog } from './tcg-log.ts';

/**
 * A structured boot state read from a TCG event log: what the firmware, the boot loader and the
 * kernel stub measured, in terms a policy can name. Only events of `pcrs` (the PCRs whose replay
 * matched a verified quote) contribute; values from event data count only when the event's digest
 * in `bank` covers that data (event-data.ts), so nothing here is merely asserted by the log.
 */
export interface KernelCommandLine {
  /** The text, when the measurement binds it (GRUB, systemd-boot/stub PCR 12). */
  text?: string;
  /** The digest, when only a digest is measured (UKI .cmdline section, Linux EFI stub load options). */
  digest?: string;
  source: 'systemd-stub' | 'grub' | 'uki-section' | 'linux-efistub';
}

export interface Initrd {
  digest: string;
  source: 'linux-efistub' | 'uki-section' | 'grub';
  pathHint?: string;
}

export interface BootState extends FirmwareState {
  /** The bank whose digests the state was read from ("sha256"). */
  bank: string;
  /** The PCRs whose events were used. */
  pcrs: number[];
  grub?: GrubState;
  systemd?: SystemdState;
  linuxStub?: LinuxStubState;
  kernelCmdline?: KernelCommandLine;
  initrd?: Initrd;
}

export interface BootStateOptions extends QuirkOptions {
  /** Bank to read digests from; default the strongest the log has (sha256 before sha384/512/sha1). */
  bank?: number;
  /** PCRs whose events may be used; default all. */
  pcrs?: Iterable<number>;
}

const BANK_PREFERENCE = [TPM_ALG.SHA256, TPM_ALG.SHA384, TPM_ALG.SHA512, TPM_ALG.SHA1];

export function defaultBank(log: TcgEventLog): number {
  const found = BANK_PREFERENCE.find((alg) => log.algorithms.some((a) => a.alg === alg));
  if (found === undefined) throw new SigilError('eventlog.no_supported_bank', 'the log has no SHA-1/SHA-2 bank to read digests from');
  return found;
}

export async function extractBootState(log: TcgEventLog, options: BootStateOptions = {}): Promise<{ state: BootState; quirks: AppliedQuirk[] }> {
  const alg = options.bank ?? defaultBank(log);
  if (!HASH_ALGS[alg] || !log.algorithms.some((a) => a.alg === alg)) {
    throw new SigilError('eventlog.bank_missing', `the log has no ${HASH_ALGS[alg]?.label ?? `0x${alg.toString(16)}`} bank`, { alg });
  }
  const pcrs = new Set(options.pcrs ?? Array.from({ length: 24 }, (_, i) => i));
  const events = log.events.filter((e) => e.sequence > 0 || log.format === 'sha1-legacy').filter((e) => pcrs.has(e.pcr));
  const quirks: AppliedQuirk[] = [];
  const firmware = await extractFirmware(events, pcrs, { alg, options, quirks });
  const grub = await extractGrub(events, alg);
  const systemd = await extractSystemd(events, alg);
  const linuxStub = extractLinuxStub(events, alg);
  const state: BootState = { bank: HASH_ALGS[alg].label, pcrs: [...pcrs].sort((a, b) => a - b), ...firmware, grub, systemd, linuxStub };
  state.kernelCmdline = kernelCmdline(state);
  state.initrd = initrd(state);
  return { state, quirks };
}

function kernelCmdline(state: BootState): KernelCommandLine | undefined {
  const stub = state.systemd?.cmdlines.at(-1);
  if (stub !== undefined) return { text: stub, source: 'systemd-stub' };
  const grub = state.grub?.kernelCmdlines.at(-1);
  if (grub !== undefined) return { text: grub, source: 'grub' };
  const section = state.systemd?.ukiSections.find((s) => s.name === '.cmdline');
  if (section) return { digest: section.digest, source: 'uki-section' };
  if (state.linuxStub?.loadOptionsDigest) return { digest: state.linuxStub.loadOptionsDigest, source: 'linux-efistub' };
  return undefined;
}

function initrd(state: BootState): Initrd | undefined {
  if (state.linuxStub?.initrdDigest) return { digest: state.linuxStub.initrdDigest, source: 'linux-efistub' };
  const section = state.systemd?.ukiSections.find((s) => s.name === '.initrd');
  if (section) return { digest: section.digest, source: 'uki-section' };
  const file = state.grub?.files.filter((f) => f.role === 'initrd').at(-1);
  if (file) return { digest: file.digest, source: 'grub', pathHint: file.pathHint };
  return undefined;
}
