/**
 * The TD HOB list QEMU builds for TDVF (QEMU hw/i386/tdvf-hob.c) and OVMF measures first into
 * RTMR0. Its content depends on the firmware's TD_HOB/TEMP_MEM sections and the guest RAM size:
 * a PHIT HOB (UEFI PI spec vol. 3, EFI_HOB_HANDOFF_INFO_TABLE, 56 bytes) whose EfiEndOfHobList
 * points past the list, then one resource descriptor HOB (EFI_HOB_RESOURCE_DESCRIPTOR, 48 bytes)
 * per RAM range: accepted ranges as system memory (0), the rest unaccepted (7). The end-of-list
 * HOB itself is not part of what is measured. Mirrors virtee/tdx-measure and dstack-mr.
 */
import { SigilError } from '../../core/errors.ts';
import { TDVF_SECTION, type Tdvf } from './tdvf.ts';

const DEFAULT_TD_HOB_BASE = 0x809000;
const RESOURCE_SYSTEM_MEMORY = 0;
const RESOURCE_UNACCEPTED = 7;
const LOW_MEMORY_SPLIT = 0xb000_0000;
const PCI_HOLE_START = 0x8000_0000;
const FOUR_GIB = 0x1_0000_0000;

interface Range {
  accepted: boolean;
  start: number;
  end: number;
}

/** QEMU's TdxRamEntry bookkeeping: RAM starts unaccepted; the firmware's own sections are accepted. */
function acceptRanges(ranges: Range[], start: number, end: number): Range[] {
  if (start >= end) return ranges;
  const next: Range[] = [];
  for (const r of ranges) {
    if (r.accepted || r.end <= start || r.start >= end) {
      next.push(r);
      continue;
    }
    if (r.start < start) next.push({ accepted: false, start: r.start, end: start });
    if (r.end > end) next.push({ accepted: false, start: end, end: r.end });
  }
  next.push({ accepted: true, start, end });
  return next.sort((a, b) => a.start - b.start);
}

export function tdHob(tdvf: Tdvf, memorySize: number): Uint8Array {
  let ranges: Range[] = [{ accepted: false, start: 0, end: memorySize }];
  let base = DEFAULT_TD_HOB_BASE;
  for (const s of tdvf.sections) {
    if (s.type === TDVF_SECTION.TD_HOB || s.type === TDVF_SECTION.TEMP_MEM) ranges = acceptRanges(ranges, s.memoryAddress, s.memoryAddress + s.memoryDataSize);
    if (s.type === TDVF_SECTION.TD_HOB) base = s.memoryAddress;
  }
  const resources: [number, number, number][] = [];
  const last = ranges.pop()!;
  for (const r of ranges) resources.push([r.accepted ? RESOURCE_SYSTEM_MEMORY : RESOURCE_UNACCEPTED, r.start, r.end - r.start]);
  if (memorySize >= LOW_MEMORY_SPLIT) {
    // RAM above 2 GiB moves above 4 GiB, leaving room for the PCI hole (QEMU q35 with >= 2.75 GiB).
    resources.push([RESOURCE_UNACCEPTED, last.start, PCI_HOLE_START - last.start]);
    resources.push([RESOURCE_UNACCEPTED, FOUR_GIB, last.end - PCI_HOLE_START]);
  } else {
    resources.push([RESOURCE_UNACCEPTED, last.start, last.end - last.start]);
  }
  for (const [, start, length] of resources) {
    if (length < 0 || start < 0) throw new SigilError('measure.tdvf_memory_invalid', 'the TDVF sections and RAM size give a negative memory range', { start, length, memorySize });
  }
  const hob = new Uint8Array(56 + 48 * resources.length);
  const view = new DataView(hob.buffer);
  view.setUint16(0, 1, true); // EFI_HOB_TYPE_HANDOFF
  view.setUint16(2, 56, true);
  view.setUint32(8, 9, true); // EFI_HOB_HANDOFF_TABLE_VERSION
  view.setBigUint64(48, BigInt(base + hob.length + 8), true); // EfiEndOfHobList
  resources.forEach(([type, start, length], i) => {
    const at = 56 + 48 * i;
    view.setUint16(at, 3, true); // EFI_HOB_TYPE_RESOURCE_DESCRIPTOR
    view.setUint16(at + 2, 48, true);
    view.setUint32(at + 24, type, true);
    view.setUint32(at + 28, 7, true); // PRESENT | INITIALIZED | TESTED
    view.setBigUint64(at + 32, BigInt(start), true);
    view.setBigUint64(at + 40, BigInt(length), true);
  });
  return hob;
}
