/**
 * Predict a TDX guest's MRTD and RTMR 0-3 from its artefacts: the TDVF/OVMF image, the guest RAM
 * size, QEMU's ACPI tables blob and, for a direct boot, the kernel, initrd and command line.
 */
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';
import type { ReferenceValue, SourceArtefact } from '../reference-values/document.ts';
import { acpiBlobs } from './acpi.ts';
import { qemuPatchedKernel } from './linux-boot.ts';
import { replayRtmr, rtmr0Events, rtmr1Events, rtmr2Events, type AuthenticodeSha384, type RtmrEvent } from './rtmr.ts';
import { mrtd, parseTdvf, type PageAddOrder } from './tdvf.ts';

export interface TdxDirectBoot {
  kernel: Uint8Array;
  initrd: Uint8Array;
  cmdline: string;
  /** Measure the kernel as QEMU patched it (OVMF 2025.02, Ubuntu 25.04) rather than as-is. */
  patchKernel?: boolean;
}

export interface TdxInputs {
  firmware: Uint8Array;
  /** Guest RAM in bytes (QEMU -m). */
  memorySize: number;
  /** QEMU's etc/acpi/tables blob, padding included; without it RTMR0 is not predicted. */
  acpiTables?: Uint8Array;
  pageAddOrder?: PageAddOrder;
  directBoot?: TdxDirectBoot;
  /** Authenticode SHA-384 of a PE image; needed for RTMR1 with a direct boot. */
  authenticode?: AuthenticodeSha384;
}

export interface TdxPrediction {
  mrtd: Uint8Array;
  /** RTMR 0-3; undefined where the inputs do not determine it. */
  rtmr: [Uint8Array | undefined, Uint8Array | undefined, Uint8Array | undefined, Uint8Array];
  events: RtmrEvent[];
}

const MAX_MEMORY = 2 ** 50;

/** QEMU-style sizes: bytes, 0x-hex, or a K/M/G/T suffix ("2048M"). */
export function parseMemorySize(text: string): number {
  const s = text.trim();
  const m = /^(0x[0-9a-f]+|\d+)([kmgt]?)$/i.exec(s);
  if (!m) throw new SigilError('measure.memory_size_invalid', `"${text}" is not a memory size (e.g. 2048M, 4G, 0x80000000)`, { text });
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return checkMemorySize(Number(m[1]) * scale);
}

function checkMemorySize(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > MAX_MEMORY || bytes % 4096 !== 0) {
    throw new SigilError('measure.memory_size_invalid', `memory size ${bytes} is not a whole number of pages up to 1 PiB`, { bytes });
  }
  return bytes;
}

export async function predictTdx(inputs: TdxInputs): Promise<TdxPrediction> {
  checkMemorySize(inputs.memorySize);
  const tdvf = parseTdvf(inputs.firmware);
  const events: RtmrEvent[] = [];
  const rtmr: TdxPrediction['rtmr'] = [undefined, undefined, undefined, new Uint8Array(48)];
  if (inputs.acpiTables) {
    const rtmr0 = await rtmr0Events(tdvf, inputs.memorySize, acpiBlobs(inputs.acpiTables));
    events.push(...rtmr0);
    rtmr[0] = await replayRtmr(rtmr0);
  }
  const boot = inputs.directBoot;
  if (boot) {
    if (!inputs.authenticode) throw new SigilError('measure.authenticode_missing', 'predicting RTMR1 needs an Authenticode implementation');
    const kernel = boot.patchKernel ? qemuPatchedKernel(boot.kernel, boot.initrd.length, inputs.memorySize) : boot.kernel;
    const rtmr1 = await rtmr1Events(await inputs.authenticode(kernel));
    const rtmr2 = await rtmr2Events(boot.cmdline, boot.initrd);
    events.push(...rtmr1, ...rtmr2);
    rtmr[1] = await replayRtmr(rtmr1);
    rtmr[2] = await replayRtmr(rtmr2);
  }
  return { mrtd: await mrtd(tdvf, inputs.pageAddOrder), rtmr, events };
}

/** MRTD and the predicted RTMRs (0-2; RTMR3 belongs to the running guest) as reference values. */
export function tdxReferenceValues(prediction: TdxPrediction, sources: SourceArtefact[], parameters: Record<string, string | number | boolean> = {}): ReferenceValue[] {
  const values: ReferenceValue[] = [{ kind: 'tdx-mrtd', value: toHex(prediction.mrtd), label: 'TDX MRTD', sources, parameters }];
  prediction.rtmr.slice(0, 3).forEach((value, index) => {
    if (value) values.push({ kind: 'tdx-rtmr', index, value: toHex(value), label: `TDX RTMR${index}`, sources, parameters });
  });
  return values;
}
