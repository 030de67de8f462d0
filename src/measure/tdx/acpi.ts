/**
 * The three QEMU fw_cfg blobs OVMF measures into RTMR0 before installing ACPI tables
 * ("etc/table-loader", "etc/acpi/rsdp", "etc/acpi/tables"), rebuilt from the tables blob alone,
 * as virtee/tdx-measure does: QEMU's acpi_build (hw/i386/acpi-build.c) emits the loader commands
 * in a fixed order, so the tables blob determines them.
 *
 * Loader commands (QEMU hw/acpi/bios-linker-loader.c), 128 bytes each, u32 LE command first:
 *   1 ALLOCATE       file[56], u32 align, u8 zone
 *   2 ADD_POINTER    dest file[56], src file[56], u32 offset, u8 size
 *   3 ADD_CHECKSUM   file[56], u32 result offset, u32 start, u32 length
 * The loader blob is zero-padded to a multiple of 4096 bytes (QEMU's ACPI_BUILD_ALIGN_SIZE).
 */
import { SigilError } from '../../core/errors.ts';
import { u32le } from '../snp/ovmf-footer.ts';

const TABLES_FILE = 'etc/acpi/tables';
const RSDP_FILE = 'etc/acpi/rsdp';
const COMMAND_SIZE = 128;
const LOADER_SIZE = 4096;
const NAME_SIZE = 56;
const RSDT_HEADER = 36;

export interface AcpiTable {
  signature: string;
  offset: number;
  length: number;
}

export interface AcpiBlobs {
  tables: Uint8Array;
  rsdp: Uint8Array;
  loader: Uint8Array;
}

function invalid(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('measure.acpi_tables_invalid', `ACPI tables: ${message}`, details);
}

/** The tables in the blob, in file order, up to the zero padding. */
export function listAcpiTables(blob: Uint8Array): AcpiTable[] {
  const tables: AcpiTable[] = [];
  let offset = 0;
  while (offset + 8 <= blob.length) {
    const sig = blob.subarray(offset, offset + 4);
    if (!sig.every((b) => b >= 32 && b < 127)) break;
    const length = u32le(blob, offset + 4);
    if (length < 8 || offset + length > blob.length) invalid(`table at ${offset} has length ${length}`, { offset, length });
    tables.push({ signature: String.fromCharCode(...sig), offset, length });
    offset += length;
    if (tables.length > 1024) invalid('more than 1024 tables');
  }
  return tables;
}

/** Commands accumulate in 128-byte records; QEMU pads the blob to a multiple of 4 KiB. */
class Loader {
  private readonly commands: Uint8Array[] = [];

  private command(kind: number): { bytes: Uint8Array; view: DataView; at: number } {
    if (this.commands.length >= 4096) invalid('more than 4096 loader commands');
    const bytes = new Uint8Array(COMMAND_SIZE);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, kind, true);
    this.commands.push(bytes);
    return { bytes, view, at: 4 };
  }

  private static name(bytes: Uint8Array, at: number, file: string): void {
    for (let i = 0; i < file.length; i++) bytes[at + i] = file.charCodeAt(i);
  }

  finish(): Uint8Array {
    const size = Math.max(LOADER_SIZE, Math.ceil((this.commands.length * COMMAND_SIZE) / LOADER_SIZE) * LOADER_SIZE);
    const out = new Uint8Array(size);
    this.commands.forEach((c, i) => out.set(c, i * COMMAND_SIZE));
    return out;
  }

  allocate(file: string, alignment: number, zone: number): void {
    const { bytes, view, at } = this.command(1);
    Loader.name(bytes, at, file);
    view.setUint32(at + NAME_SIZE, alignment, true);
    bytes[at + NAME_SIZE + 4] = zone;
  }

  addPointer(pointerFile: string, pointeeFile: string, offset: number, size: number): void {
    const { bytes, view, at } = this.command(2);
    Loader.name(bytes, at, pointerFile);
    Loader.name(bytes, at + NAME_SIZE, pointeeFile);
    view.setUint32(at + 2 * NAME_SIZE, offset, true);
    bytes[at + 2 * NAME_SIZE + 4] = size;
  }

  addChecksum(file: string, resultOffset: number, start: number, length: number): void {
    const { view, bytes, at } = this.command(3);
    Loader.name(bytes, at, file);
    view.setUint32(at + NAME_SIZE, resultOffset, true);
    view.setUint32(at + NAME_SIZE + 4, start, true);
    view.setUint32(at + NAME_SIZE + 8, length, true);
  }
}

function find(list: AcpiTable[], signature: string): AcpiTable {
  const table = list.find((t) => t.signature === signature);
  if (!table) invalid(`required table ${signature} is missing`, { signature });
  return table;
}

/** RSDP (ACPI 1.0, 20 bytes) as QEMU serves it before the firmware patches it: checksum 0. */
export function qemuRsdp(rsdtOffset: number): Uint8Array {
  const rsdp = new Uint8Array(20);
  rsdp.set(new TextEncoder().encode('RSD PTR '), 0);
  rsdp.set(new TextEncoder().encode('BOCHS '), 9);
  new DataView(rsdp.buffer).setUint32(16, rsdtOffset, true);
  return rsdp;
}

/** etc/table-loader for a QEMU q35 tables blob (FACS, DSDT, FACP, then the rest, RSDT last). */
export function qemuTableLoader(list: AcpiTable[]): Uint8Array {
  const dsdt = find(list, 'DSDT');
  const facp = find(list, 'FACP');
  const rsdt = find(list, 'RSDT');
  const loader = new Loader();
  loader.allocate(RSDP_FILE, 16, 2); // zone FSEG
  loader.allocate(TABLES_FILE, 64, 1); // zone HIGH
  loader.addChecksum(TABLES_FILE, dsdt.offset + 9, dsdt.offset, dsdt.length);
  loader.addPointer(TABLES_FILE, TABLES_FILE, facp.offset + 36, 4); // FIRMWARE_CTRL -> FACS
  loader.addPointer(TABLES_FILE, TABLES_FILE, facp.offset + 40, 4); // DSDT
  loader.addPointer(TABLES_FILE, TABLES_FILE, facp.offset + 140, 8); // X_DSDT
  loader.addChecksum(TABLES_FILE, facp.offset + 9, facp.offset, facp.length);
  for (const t of list) {
    if (['FACS', 'DSDT', 'FACP', 'RSDT'].includes(t.signature)) continue; // FACS has no checksum
    loader.addChecksum(TABLES_FILE, t.offset + 9, t.offset, t.length);
  }
  if (rsdt.length < RSDT_HEADER || (rsdt.length - RSDT_HEADER) % 4 !== 0) invalid(`RSDT length ${rsdt.length} is malformed`, { length: rsdt.length });
  for (let entry = rsdt.offset + RSDT_HEADER; entry < rsdt.offset + rsdt.length; entry += 4) loader.addPointer(TABLES_FILE, TABLES_FILE, entry, 4);
  loader.addChecksum(TABLES_FILE, rsdt.offset + 9, rsdt.offset, rsdt.length);
  loader.addPointer(RSDP_FILE, TABLES_FILE, 16, 4);
  loader.addChecksum(RSDP_FILE, 8, 0, 20);
  return loader.finish();
}

/** The three blobs from `etc/acpi/tables` (as dumped from QEMU, padding included). */
export function acpiBlobs(tables: Uint8Array): AcpiBlobs {
  const list = listAcpiTables(tables);
  return { tables, rsdp: qemuRsdp(find(list, 'RSDT').offset), loader: qemuTableLoader(list) };
}
