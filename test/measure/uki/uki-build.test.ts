import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { parsePe, peChecksum } from '../../../src/measure/pe/pe-file.ts';
import { buildUki, type UkiInputs } from '../../../src/measure/uki/uki-build.ts';
import { parseUki } from '../../../src/measure/uki/uki-file.ts';
import { fixture, fixturesAvailable } from '../../support/fixtures.ts';
import { DEBIAN_STUB, debianStub, OS_RELEASE, stubAvailable, tinyKernel } from './support.ts';

const skip = fixturesAvailable() ? stubAvailable() : { skip: 'no fixtures' };
const root = new URL('../../../', import.meta.url).pathname;

function inputs(): UkiInputs {
  return { stub: debianStub(), linux: tinyKernel(), initrd: new Uint8Array(1000).fill(0x42), cmdline: 'console=ttyS0 quiet', osRelease: OS_RELEASE, uname: '6.1.0-test' };
}

test('reproducible: the same inputs give the same bytes, twice, and through the CLI', skip, () => {
  const a = buildUki(inputs());
  const b = buildUki(inputs());
  assert.deepEqual(a, b);
  const dir = mkdtempSync(join(tmpdir(), 'sigil-uki-'));
  try {
    writeFileSync(join(dir, 'linux'), tinyKernel());
    writeFileSync(join(dir, 'initrd'), new Uint8Array(1000).fill(0x42));
    writeFileSync(join(dir, 'os-release'), OS_RELEASE);
    const build = (out: string) =>
      execFileSync('sh', [join(root, 'scripts/sigil'), 'uki', 'build', '--stub', DEBIAN_STUB, '--linux', join(dir, 'linux'), '--initrd', join(dir, 'initrd'), '--cmdline', 'console=ttyS0 quiet', '--os-release', join(dir, 'os-release'), '--uname', '6.1.0-test', '-o', join(dir, out), '--json'], { encoding: 'utf8' });
    const report = JSON.parse(build('one.efi'));
    build('two.efi');
    const one = new Uint8Array(readFileSync(join(dir, 'one.efi')));
    assert.deepEqual(one, new Uint8Array(readFileSync(join(dir, 'two.efi'))));
    assert.deepEqual(one, a);
    assert.equal(report.size, a.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('layout: sections appended after the stub, aligned, SizeOfImage and checksum updated', skip, () => {
  const stub = parsePe(debianStub());
  const image = buildUki(inputs());
  const pe = parsePe(image);
  assert.deepEqual(pe.sections.slice(0, stub.sections.length).map((s) => s.name), stub.sections.map((s) => s.name));
  assert.deepEqual(pe.sections.slice(stub.sections.length).map((s) => s.name), ['.osrel', '.cmdline', '.uname', '.initrd', '.linux']);
  let previousEnd = 0;
  for (const [i, s] of pe.sections.entries()) {
    assert.ok(s.virtualAddress >= previousEnd, `${s.name} after the previous section`);
    previousEnd = s.virtualAddress + s.virtualSize;
    assert.equal(s.pointerToRawData % pe.fileAlignment, 0);
    assert.equal(s.sizeOfRawData % pe.fileAlignment, 0);
    // Debian's stub itself places .sdmagic at 0x19100 with SectionAlignment 0x200; added sections are aligned.
    if (i >= stub.sections.length) assert.equal(s.virtualAddress % pe.sectionAlignment, 0, `${s.name} VirtualAddress aligned`);
  }
  const last = pe.sections[pe.sections.length - 1];
  assert.equal(pe.sizeOfImage, Math.ceil((last.virtualAddress + last.virtualSize) / pe.sectionAlignment) * pe.sectionAlignment);
  assert.equal(image.length, last.pointerToRawData + last.sizeOfRawData);
  assert.equal(pe.checksum, peChecksum(image, pe.checksumOffset));
  assert.equal(pe.timeDateStamp, stub.timeDateStamp, 'the stub timestamp is kept, no clock involved');
  const linux = pe.sections.find((s) => s.name === '.linux')!;
  assert.equal(linux.characteristics, 0x40000020, '.linux: CNT_CODE | MEM_READ, as ukify marks it');
  // Contents read back as the stub sees them.
  const uki = parseUki(image);
  const byName = (n: string) => uki.sections.find((s) => s.name === n)!.data;
  assert.equal(utf8.decode(byName('.cmdline')), 'console=ttyS0 quiet');
  assert.equal(utf8.decode(byName('.osrel')), OS_RELEASE);
  assert.deepEqual(byName('.linux'), tinyKernel());
  assert.equal(uki.stubVersion, 252);
});

test('binutils objdump reads the UKI with the same section table (independent oracle)', skip, () => {
  if (spawnSync('objdump', ['--version']).status !== 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'sigil-uki-'));
  try {
    const image = buildUki(inputs());
    writeFileSync(join(dir, 'uki.efi'), image);
    const listing = execFileSync('objdump', ['-h', join(dir, 'uki.efi')], { encoding: 'utf8' });
    const rows = [...listing.matchAll(/^\s*\d+\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)/gm)].map((m) => [m[1], parseInt(m[2], 16), parseInt(m[3], 16), parseInt(m[4], 16)]);
    const pe = parsePe(image);
    assert.deepEqual(rows, pe.sections.map((s) => [s.name, s.virtualSize, s.virtualAddress, s.pointerToRawData]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('build refusals: duplicate or bad section names, a signed stub, no header room', skip, () => {
  const refuses = (code: string, change: Partial<UkiInputs>) =>
    assert.throws(() => buildUki({ ...inputs(), ...change }), (e) => isSigilError(e, code), code);
  refuses('uki.section_exists', { extra: [{ name: '.osrel', data: new Uint8Array(1) }] });
  refuses('uki.section_exists', { extra: [{ name: '.sbat', data: new Uint8Array(1) }] });
  refuses('uki.section_name_invalid', { extra: [{ name: '.toolongname', data: new Uint8Array(1) }] });
  refuses('uki.section_name_invalid', { extra: [{ name: 'nodot', data: new Uint8Array(1) }] });
  refuses('uki.stub_signed', { stub: fixture('measure/authenticode/authenticoders_tiny64.signed.efi') });
  const many = Array.from({ length: 8 }, (_, i) => ({ name: `.x${i}`, data: new Uint8Array(1) }));
  refuses('uki.header_space', { extra: many });
  assert.throws(() => buildUki({ ...inputs(), stub: utf8.encode('not a PE') }), (e) => isSigilError(e) && e.code.startsWith('pe.'));
});

test('empty inputs are left out rather than written as empty sections', skip, () => {
  const image = buildUki({ ...inputs(), cmdline: '', initrd: new Uint8Array() });
  const names = parsePe(image).sections.map((s) => s.name);
  assert.ok(!names.includes('.cmdline') && !names.includes('.initrd'));
});
