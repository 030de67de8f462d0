/**
 * TDX prediction. The upstream MRTD/RTMR0 vectors (virtee/tdx-measure) need Ubuntu's OVMF
 * 2025.02-3ubuntu2, which no Debian package provides: set SIGIL_TDX_OVMF to that OVMF.fd
 * (sha256 9e807cb2…46bf, usr/share/ovmf/OVMF.fd in ovmf_2025.02-3ubuntu2_all.deb) to run them;
 * without it they skip and everything that does not need that firmware runs: the ACPI blobs from
 * the fixtures' acpi_tables.bin, the metadata parsing, and MRTD/TD HOB/RTMR mechanics on Debian's
 * own OVMF.fd (which carries TDX metadata too), recomputed independently here.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { toHex } from '../../../src/core/hex.ts';
import { authenticodeDigest } from '../../../src/measure/pe/authenticode.ts';
import { acpiBlobs, listAcpiTables } from '../../../src/measure/tdx/acpi.ts';
import { qemuPatchedKernel } from '../../../src/measure/tdx/linux-boot.ts';
import { parseMemorySize, predictTdx } from '../../../src/measure/tdx/predict.ts';
import { efiVariableDigest } from '../../../src/measure/tdx/rtmr.ts';
import { tdHob } from '../../../src/measure/tdx/td-hob.ts';
import { mrtd, parseTdvf, TDVF_SECTION_NAMES } from '../../../src/measure/tdx/tdvf.ts';
import { fixture, fixturesAvailable, fixtureText } from '../../support/fixtures.ts';

const available = fixturesAvailable();
const CASES = ['canonical-defaults', 'q35-with-hpet', 'runtime-capture'];
const DEBIAN_OVMF = '/usr/share/ovmf/OVMF.fd';
const debianOvmf = existsSync(DEBIAN_OVMF) ? new Uint8Array(readFileSync(DEBIAN_OVMF)) : undefined;
const noDebianOvmf = debianOvmf ? false : `${DEBIAN_OVMF} is absent (Debian package ovmf)`;
const UBUNTU_OVMF_SHA256 = '9e807cb2cd4313406a3aa4becc0836671a5c64ca7bdc08a45e15260184b446bf';
const sha384 = (...parts: Uint8Array[]) => {
  const h = createHash('sha384');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

function ubuntuOvmf(): { firmware?: Uint8Array; skip: string | false } {
  if (!available) return { skip: 'no fixtures' };
  const path = process.env.SIGIL_TDX_OVMF;
  if (!path) return { skip: 'needs Ubuntu OVMF 2025.02-3ubuntu2 (not in any Debian package): set SIGIL_TDX_OVMF=/path/to/OVMF.fd to run the upstream MRTD/RTMR0 vectors' };
  const firmware = new Uint8Array(readFileSync(path));
  const sha = createHash('sha256').update(firmware).digest('hex');
  if (sha !== UBUNTU_OVMF_SHA256) throw new Error(`SIGIL_TDX_OVMF=${path} has sha256 ${sha}, not the vectors' firmware ${UBUNTU_OVMF_SHA256}`);
  return { firmware, skip: false };
}

const ubuntu = ubuntuOvmf();
for (const name of CASES) {
  test(`TDX vector tdxmeasure.${name}: MRTD and RTMR0 from the Ubuntu firmware`, { skip: ubuntu.skip }, async () => {
    const metadata = JSON.parse(fixtureText(`measure/tdx/${name}/metadata.json`));
    const expected = JSON.parse(fixtureText(`measure/tdx/${name}/expected.json`));
    const prediction = await predictTdx({ firmware: ubuntu.firmware!, memorySize: parseMemorySize(metadata.boot_config.memory), acpiTables: fixture(`measure/tdx/${name}/acpi_tables.bin`) });
    assert.equal(toHex(prediction.mrtd), expected.mrtd);
    assert.equal(toHex(prediction.rtmr[0]!), expected.rtmr0);
  });
}

test('fixture metadata: guest RAM sizes as QEMU reads them', { skip: available ? false : 'no fixtures' }, () => {
  const sizes = CASES.map((name) => parseMemorySize(JSON.parse(fixtureText(`measure/tdx/${name}/metadata.json`)).boot_config.memory));
  assert.deepEqual(sizes, [2 * 2 ** 30, 4 * 2 ** 30, 16 * 2 ** 30]);
  assert.equal(parseMemorySize('0x80000000'), 2 ** 31);
  assert.equal(parseMemorySize('4096'), 4096);
  for (const bad of ['', '2048X', '-1G', '1.5G', '4097']) assert.throws(() => parseMemorySize(bad), { code: 'measure.memory_size_invalid' });
});

test('ACPI: tables, RSDP and table-loader derived from each fixture blob', { skip: available ? false : 'no fixtures' }, () => {
  const expectedTables: Record<string, string[]> = {
    'canonical-defaults': ['FACS', 'DSDT', 'FACP', 'APIC', 'MCFG', 'WAET', 'RSDT'],
    'q35-with-hpet': ['FACS', 'DSDT', 'FACP', 'APIC', 'HPET', 'MCFG', 'WAET', 'RSDT'],
    'runtime-capture': ['FACS', 'DSDT', 'FACP', 'APIC', 'HPET', 'MCFG', 'WAET', 'RSDT'],
  };
  for (const name of CASES) {
    const blob = fixture(`measure/tdx/${name}/acpi_tables.bin`);
    assert.equal(blob.length, 128 * 1024);
    const list = listAcpiTables(blob);
    assert.deepEqual(list.map((t) => t.signature), expectedTables[name], name);
    const view = new DataView(blob.buffer, blob.byteOffset);
    const at = (sig: string) => list.find((t) => t.signature === sig)!;
    // The blob's own pointers (offsets until the firmware patches them) agree with the walk.
    const rsdt = at('RSDT');
    const pointers = Array.from({ length: (rsdt.length - 36) / 4 }, (_, i) => view.getUint32(rsdt.offset + 36 + 4 * i, true));
    assert.deepEqual(pointers, list.filter((t) => !['FACS', 'DSDT', 'RSDT'].includes(t.signature)).map((t) => t.offset));
    assert.equal(view.getUint32(at('FACP').offset + 36, true), at('FACS').offset);
    assert.equal(view.getUint32(at('FACP').offset + 40, true), at('DSDT').offset);

    const { rsdp, loader, tables } = acpiBlobs(blob);
    assert.equal(tables, blob);
    assert.equal(toHex(rsdp), `${toHex(new TextEncoder().encode('RSD PTR '))}00${toHex(new TextEncoder().encode('BOCHS '))}00${toHex(new Uint8Array(new Uint32Array([rsdt.offset]).buffer))}`);
    assert.equal(loader.length, 4096);
    const commands = Array.from({ length: 32 }, (_, i) => loader.subarray(i * 128, i * 128 + 128));
    const kinds = commands.map((c) => c[0]).filter((k) => k !== 0);
    const others = list.length - 4; // not FACS, DSDT, FACP, RSDT
    assert.deepEqual(kinds, [1, 1, 3, 2, 2, 2, 3, ...Array(others).fill(3), ...Array(pointers.length).fill(2), 3, 2, 3]);
    const name56 = (c: Uint8Array, at: number) => new TextDecoder().decode(c.subarray(at, at + 56)).replace(/\0+$/, '');
    assert.equal(name56(commands[0], 4), 'etc/acpi/rsdp');
    assert.deepEqual([...commands[0].subarray(60, 65)], [16, 0, 0, 0, 2]);
    assert.equal(name56(commands[1], 4), 'etc/acpi/tables');
    const last = commands[kinds.length - 1];
    assert.equal(name56(last, 4), 'etc/acpi/rsdp');
    assert.deepEqual([...last.subarray(60, 72)], [8, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0]);
  }
});

test("Debian's OVMF.fd: TDVF sections as its metadata lists them", { skip: noDebianOvmf }, () => {
  const tdvf = parseTdvf(debianOvmf!);
  const sections = tdvf.sections.map((s) => [TDVF_SECTION_NAMES[s.type], s.memoryAddress.toString(16), s.memoryDataSize.toString(16), s.attributes]);
  assert.deepEqual(sections.map((s) => s[0]), ['BFV', 'CFV', 'TEMP_MEM', 'TEMP_MEM', 'TD_HOB', 'TEMP_MEM']);
  const bfv = tdvf.sections[0];
  assert.equal(bfv.attributes, 1, 'BFV is MR.EXTENDed');
  assert.equal(bfv.memoryAddress + bfv.memoryDataSize, 2 ** 32, 'BFV ends at 4 GiB');
});

test('MRTD on a real TDVF equals an independent replay of the TDX module log, in both page-add orders', { skip: noDebianOvmf }, async () => {
  const tdvf = parseTdvf(debianOvmf!);
  const record = (kind: string, gpa: number) => {
    const r = Buffer.alloc(128);
    r.write(kind, 0, 'latin1');
    r.writeBigUInt64LE(BigInt(gpa), 16);
    return r;
  };
  const replay = (twoPass: boolean) => {
    const h = createHash('sha384');
    for (const s of tdvf.sections) {
      const pages = [...Array(s.memoryDataSize / 4096).keys()];
      const add = (p: number) => !(s.attributes & 2) && h.update(record('MEM.PAGE.ADD', s.memoryAddress + p * 4096));
      const extend = (p: number) => {
        if (!(s.attributes & 1)) return;
        for (let c = 0; c < 4096; c += 256) h.update(record('MR.EXTEND', s.memoryAddress + p * 4096 + c)).update(debianOvmf!.subarray(s.dataOffset + p * 4096 + c, s.dataOffset + p * 4096 + c + 256));
      };
      if (twoPass) {
        pages.forEach(add);
        pages.forEach(extend);
      } else pages.forEach((p) => (add(p), extend(p)));
    }
    return h.digest('hex');
  };
  const single = toHex(await mrtd(tdvf));
  const two = toHex(await mrtd(tdvf, 'two-pass'));
  assert.equal(single, replay(false));
  assert.equal(two, replay(true));
  assert.notEqual(single, two);
});

test('TD HOB: PHIT then resource descriptors; RAM above 2.75 GiB moves above 4 GiB', { skip: noDebianOvmf }, () => {
  const tdvf = parseTdvf(debianOvmf!);
  const decode = (hob: Uint8Array) => {
    const v = new DataView(hob.buffer, hob.byteOffset);
    assert.equal(v.getUint16(0, true), 1);
    assert.equal(v.getUint16(2, true), 56);
    assert.equal(v.getUint32(8, true), 9);
    const end = Number(v.getBigUint64(48, true));
    const resources = [];
    for (let at = 56; at < hob.length; at += 48) {
      assert.equal(v.getUint16(at, true), 3);
      assert.equal(v.getUint32(at + 28, true), 7);
      resources.push([v.getUint32(at + 24, true), Number(v.getBigUint64(at + 32, true)).toString(16), Number(v.getBigUint64(at + 40, true)).toString(16)]);
    }
    return { end, resources };
  };
  const small = decode(tdHob(tdvf, 2 * 2 ** 30));
  assert.equal(small.end, 0x809000 + 56 + 48 * small.resources.length + 8, 'EfiEndOfHobList is past the list, at the TD_HOB section');
  assert.deepEqual(small.resources, [
    [7, '0', '800000'],
    [0, '800000', '6000'],
    [7, '806000', '3000'],
    [0, '809000', '2000'],
    [0, '80b000', '2000'],
    [7, '80d000', '3000'],
    [0, '810000', '10000'],
    [7, '820000', '7f7e0000'],
  ]);
  const large = decode(tdHob(tdvf, 16 * 2 ** 30));
  assert.deepEqual(large.resources.slice(-2), [
    [7, '820000', (0x80000000 - 0x820000).toString(16)],
    [7, '100000000', (16 * 2 ** 30 - 0x80000000).toString(16)],
  ]);
});

test('RTMR0 on a real TDVF replays its events; RTMR1/2 for a direct boot; RTMR3 stays zero', { skip: noDebianOvmf || (available ? false : 'no fixtures') }, async () => {
  const kernel = fixture('measure/authenticode/authenticoders_tiny64.efi');
  const initrd = new TextEncoder().encode('initrd bytes');
  const prediction = await predictTdx({
    firmware: debianOvmf!,
    memorySize: 2 * 2 ** 30,
    acpiTables: fixture('measure/tdx/canonical-defaults/acpi_tables.bin'),
    directBoot: { kernel, initrd, cmdline: 'console=hvc0' },
    authenticode: (image) => authenticodeDigest(image, 'SHA-384'),
  });
  const replay = (rtmr: number) => prediction.events.filter((e) => e.rtmr === rtmr).reduce((mr, e) => sha384(mr, e.digest), new Uint8Array(48));
  for (const i of [0, 1, 2]) assert.equal(toHex(prediction.rtmr[i]!), toHex(replay(i)));
  assert.equal(toHex(prediction.rtmr[3]), '00'.repeat(48));
  const rtmr0 = prediction.events.filter((e) => e.rtmr === 0);
  assert.equal(rtmr0.length, 13);
  const cfv = parseTdvf(debianOvmf!).sections[1];
  assert.equal(toHex(rtmr0[1].digest), toHex(sha384(debianOvmf!.subarray(cfv.dataOffset, cfv.dataOffset + cfv.rawDataSize))));
  assert.equal(toHex(rtmr0[7].digest), toHex(sha384(new Uint8Array(4))), 'separator');
  // Boot0000 for a direct boot: the digest dstack-mr pins for OVMF before 2025.05.
  assert.equal(toHex(rtmr0[12].digest), '23ada07f5261f12f34a0bd8e46760962d6b4d576a416f1fea1c64bc656b1d28eacf7047ae6e967c58fd2a98bfa74c298');
  const rtmr1 = prediction.events.filter((e) => e.rtmr === 1);
  assert.equal(toHex(rtmr1[0].digest), toHex(await authenticodeDigest(kernel, 'SHA-384')));
  assert.equal(toHex(rtmr1[1].digest), toHex(sha384(new TextEncoder().encode('Calling EFI Application from Boot Option'))));
  const rtmr2 = prediction.events.filter((e) => e.rtmr === 2);
  assert.equal(toHex(rtmr2[0].digest), toHex(sha384(Buffer.from('console=hvc0 initrd=initrd\0', 'utf16le'))));
  assert.equal(toHex(rtmr2[1].digest), toHex(sha384(initrd)));
});

test('EFI variable events hash UEFI_VARIABLE_DATA (GUID, name length, data length, UTF-16 name, data)', async () => {
  const guid = Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex');
  const header = Buffer.alloc(16);
  header.writeBigUInt64LE(10n, 0);
  assert.equal(toHex(await efiVariableDigest('8be4df61-93ca-11d2-aa0d-00e098032b8c', 'SecureBoot')), toHex(sha384(guid, header, Buffer.from('SecureBoot', 'utf16le'))));
  header.writeBigUInt64LE(3n, 8);
  assert.equal(toHex(await efiVariableDigest('8BE4DF61-93CA-11D2-AA0D-00E098032B8C', 'SecureBoot', new Uint8Array([1, 2, 3]))), toHex(sha384(guid, header, Buffer.from('SecureBoot', 'utf16le'), Buffer.from([1, 2, 3]))));
});

test('QEMU kernel patching edits only the setup header fields it owns', () => {
  const kernel = new Uint8Array(0x2000);
  const v = new DataView(kernel.buffer);
  v.setUint32(0x202, 0x53726448, true); // "HdrS"
  v.setUint16(0x206, 0x020f, true); // boot protocol 2.15
  kernel[0x211] = 0x01; // LOADED_HIGH
  v.setUint16(0x236, 0x40, true); // XLF_CAN_BE_LOADED_ABOVE_4G
  const patched = qemuPatchedKernel(kernel, 0x1234, 2 * 2 ** 30);
  const p = new DataView(patched.buffer);
  assert.equal(patched[0x210], 0xb0);
  assert.equal(patched[0x211], 0x81);
  assert.equal(p.getUint32(0x224, true), 0x20000 - 0x10000 - 0x200);
  assert.equal(p.getUint32(0x228, true), 0x20000);
  const initrdMax = 2 * 2 ** 30 - 0x28000 - 1;
  assert.equal(p.getUint32(0x218, true), (initrdMax - 0x1234) & ~4095);
  assert.equal(p.getUint32(0x21c, true), 0x1234);
  const changed = [...patched.keys()].filter((i) => patched[i] !== kernel[i]);
  assert.ok(changed.every((i) => i >= 0x210 && i < 0x230), `changed bytes ${changed.map((i) => i.toString(16))}`);
  assert.throws(() => qemuPatchedKernel(new Uint8Array(100), 0, 2 ** 31), { code: 'measure.kernel_invalid' });
  // Without the HdrS magic QEMU treats the image as boot protocol 0, which cannot take an initrd.
  assert.throws(() => qemuPatchedKernel(new Uint8Array(0x2000), 1, 2 ** 31), { code: 'measure.kernel_invalid' });
});

test('a firmware without TDX metadata, or with sections outside the image, is refused with a typed error', { skip: available ? false : 'no fixtures' }, () => {
  // The 4 KiB suffix keeps the TDX metadata of its full-size build: its sections point past it.
  assert.throws(() => parseTdvf(fixture('measure/snp/ovmf_AmdSev_suffix.bin')), { code: 'measure.tdvf_metadata_invalid' });
  assert.throws(() => parseTdvf(fixture('measure/snp/dstack_synthetic_snp_ovmf.bin')), { code: 'measure.tdvf_metadata_missing' });
  assert.throws(() => parseTdvf(new Uint8Array(10)), { code: 'measure.tdvf_metadata_missing' });
});
