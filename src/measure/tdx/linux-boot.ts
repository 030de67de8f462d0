/**
 * What QEMU changes in a bzImage's setup header before handing it to OVMF for a direct boot
 * (QEMU hw/i386/x86.c x86_load_linux; Linux Documentation/arch/x86/boot.rst for the offsets).
 * OVMF 2025.02 (Ubuntu 25.04) measures the kernel after these edits; OVMF >= 2025.05 loads the
 * EFI stub from the unmodified image, so callers choose with `patchKernel`. Mirrors tdx-measure.
 */
import { SigilError } from '../../core/errors.ts';

const MIN_KERNEL = 0x1000;

export function qemuPatchedKernel(kernel: Uint8Array, initrdSize: number, memorySize: number, acpiDataSize = 0x28000): Uint8Array {
  if (kernel.length < MIN_KERNEL) throw new SigilError('measure.kernel_invalid', `the kernel image is ${kernel.length} bytes, too short for a bzImage`, { size: kernel.length });
  const k = kernel.slice();
  const view = new DataView(k.buffer);
  // QEMU reads the boot protocol only behind the "HdrS" magic; without it the image is protocol 0.
  const protocol = view.getUint32(0x202, true) === 0x53726448 ? view.getUint16(0x206, true) : 0;
  const [realAddr, cmdlineAddr] = protocol < 0x200 || (k[0x211] & 0x01) === 0 ? [0x90000, 0x9a000] : [0x10000, 0x20000];
  if (protocol >= 0x200) k[0x210] = 0xb0; // type_of_loader: QEMU
  if (protocol >= 0x201) {
    k[0x211] |= 0x80; // loadflags: CAN_USE_HEAP
    view.setUint32(0x224, cmdlineAddr - realAddr - 0x200, true); // heap_end_ptr
  }
  if (protocol >= 0x202) {
    view.setUint32(0x228, cmdlineAddr, true); // cmd_line_ptr
  } else {
    view.setUint16(0x20, 0xa33f, true);
    view.setUint16(0x22, cmdlineAddr - realAddr, true);
  }
  if (initrdSize > 0) {
    if (protocol < 0x200) throw new SigilError('measure.kernel_invalid', 'the kernel image is too old for an initrd');
    let initrdMax = 0x37ffffff;
    if (protocol >= 0x20c) {
      if (view.getUint16(0x236, true) & 0x40) initrdMax = 0xffffffff; // XLF_CAN_BE_LOADED_ABOVE_4G
    } else if (protocol >= 0x203) {
      initrdMax = view.getUint32(0x22c, true) || 0x37ffffff;
    }
    const lowmem = memorySize < 0xb0000000 ? 0xb0000000 : 0x80000000;
    const below4g = memorySize >= lowmem ? lowmem : memorySize;
    if (initrdMax >= below4g - acpiDataSize) initrdMax = below4g - acpiDataSize - 1;
    if (initrdSize >= initrdMax) throw new SigilError('measure.initrd_too_large', `the initrd (${initrdSize} bytes) does not fit below ${initrdMax}`, { initrdSize, initrdMax });
    view.setUint32(0x218, (initrdMax - initrdSize) & ~4095, true); // ramdisk_image
    view.setUint32(0x21c, initrdSize, true); // ramdisk_size
  }
  return k;
}
