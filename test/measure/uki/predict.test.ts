import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import { authenticodeDigest } from '../../../src/measure/pe/authenticode.ts';
import { predictUki, stubCmdline, type UkiPrediction } from '../../../src/measure/uki/predict.ts';
import { ukiReferenceDocument } from '../../../src/measure/uki/reference.ts';
import { buildUki, type UkiInputs } from '../../../src/measure/uki/uki-build.ts';
import { fixturesAvailable } from '../../support/fixtures.ts';
import { debianStub, OS_RELEASE, stubAvailable, tinyKernel } from './support.ts';

const skip = fixturesAvailable() ? stubAvailable() : { skip: 'no fixtures' };
const root = new URL('../../../', import.meta.url).pathname;
const INITRD = new Uint8Array(777).fill(0x5a);

const sha256 = (...parts: (Uint8Array | string)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const extend = (digests: Buffer[]) => toHex(digests.reduce<Buffer>((pcr, d) => sha256(pcr, d), Buffer.alloc(32)));
const utf16 = (text: string) => Buffer.from(`${text}\0`, 'utf16le');

function uki(change: Partial<UkiInputs> = {}): Uint8Array {
  return buildUki({ stub: debianStub(), linux: tinyKernel(), initrd: INITRD, cmdline: 'console=ttyS0 quiet', osRelease: OS_RELEASE, uname: '6.1.0-test', ...change });
}

const values = (p: UkiPrediction) => Object.fromEntries(Object.entries(p.pcrs['SHA-256']!).map(([k, v]) => [k, toHex(v)]));

test('stub 252: PCR 4, 9, 11 equal an independent computation of the observed model', skip, async () => {
  const image = uki();
  const prediction = await predictUki(image);
  assert.equal(prediction.stub.version, 252);
  assert.equal(prediction.stub.versionSource, 'sdmagic');
  const pcr4 = extend([
    sha256('Calling EFI Application from Boot Option'),
    sha256(Buffer.alloc(4)),
    Buffer.from(await authenticodeDigest(image, 'SHA-256')),
    Buffer.from(await authenticodeDigest(tinyKernel(), 'SHA-256')),
  ]);
  // 252 knows no .uname: it is in the file but not measured.
  const pcr11 = extend([
    sha256('.linux\0'), sha256(tinyKernel()),
    sha256('.osrel\0'), sha256(OS_RELEASE),
    sha256('.cmdline\0'), sha256('console=ttyS0 quiet'),
    sha256('.initrd\0'), sha256(INITRD),
  ]);
  const pcr9 = extend([sha256(utf16('console=ttyS0 quiet')), sha256(INITRD)]);
  assert.deepEqual(values(prediction), { 4: pcr4, 9: pcr9, 11: pcr11, 12: '00'.repeat(32) });
  assert.deepEqual(prediction.sections.map((s) => s.name), ['.linux', '.osrel', '.cmdline', '.initrd']);
  assert.equal(prediction.cmdline, 'console=ttyS0 quiet');
  assert.deepEqual(prediction.unpredicted, []);
});

test('per stub version: 253 measures .uname, 258 no longer has the firmware measure the kernel', skip, async () => {
  const image = uki();
  const v253 = await predictUki(image, { stubVersion: 253 });
  assert.deepEqual(v253.sections.map((s) => s.name), ['.linux', '.osrel', '.cmdline', '.initrd', '.uname']);
  assert.equal(v253.events.filter((e) => e.pcr === 4).length, 4);
  const v258 = await predictUki(image, { stubVersion: 258 });
  // 254+ also measures the stub's own .sbat section.
  assert.deepEqual(v258.sections.map((s) => s.name), ['.linux', '.osrel', '.cmdline', '.initrd', '.uname', '.sbat']);
  assert.equal(v258.events.filter((e) => e.pcr === 4).length, 3);
  assert.equal(v258.stub.versionSource, 'option');
  assert.ok(v258.notes.some((n) => n.includes('only 252 was confirmed')));
  await assert.rejects(predictUki(image, { stubVersion: 251 }), (e) => isSigilError(e, 'uki.stub_version_unsupported'));
});

test('several banks at once; boot phases extend PCR 11 only', skip, async () => {
  const image = uki();
  const plain = await predictUki(image, { banks: ['SHA-1', 'SHA-256', 'SHA-384'] });
  const phased = await predictUki(image, { banks: ['SHA-256'], phases: ['enter-initrd', 'leave-initrd'] });
  assert.equal(plain.pcrs['SHA-1']![11].length, 20);
  assert.equal(plain.pcrs['SHA-384']![4].length, 48);
  const expected11 = toHex(sha256(sha256(plain.pcrs['SHA-256']![11], sha256('enter-initrd')), sha256('leave-initrd')));
  assert.equal(toHex(phased.pcrs['SHA-256']![11]), expected11);
  assert.deepEqual(phased.pcrs['SHA-256']![4], plain.pcrs['SHA-256']![4]);
});

test('a different command line or initrd changes the prediction (PCR 4, 9 and 11 all move)', skip, async () => {
  const base = values(await predictUki(uki()));
  const otherCmdline = values(await predictUki(uki({ cmdline: 'console=ttyS0 quiet init=/bin/sh' })));
  const otherInitrd = values(await predictUki(uki({ initrd: new Uint8Array(777).fill(0x5b) })));
  for (const other of [otherCmdline, otherInitrd]) for (const pcr of ['4', '9', '11']) assert.notEqual(other[pcr], base[pcr], `PCR ${pcr}`);
});

test('command line: the stub mangles whitespace; a passed command line goes to PCR 12 and the kernel', skip, async () => {
  assert.equal(stubCmdline('  console=ttyS0\tquiet\n\n'), 'console=ttyS0 quiet');
  assert.equal(stubCmdline(new Uint8Array([0x61, 0x00, 0x62])), 'a');
  const image = uki({ cmdline: ' console=ttyS0 quiet\n' });
  // Same command line for the kernel (PCR 9), different section bytes (PCR 11).
  const messy = values(await predictUki(image));
  const clean = values(await predictUki(uki()));
  assert.equal(messy[9], clean[9]);
  assert.notEqual(messy[11], clean[11]);
  const passed = await predictUki(image, { loadOptions: 'root=/dev/vda ro' });
  assert.equal(passed.cmdline, 'root=/dev/vda ro');
  assert.equal(toHex(passed.pcrs['SHA-256']![12]), extend([sha256(utf16('root=/dev/vda ro'))]));
  assert.equal(toHex(passed.pcrs['SHA-256']![9]), extend([sha256(utf16('root=/dev/vda ro')), sha256(INITRD)]));
  // Secure Boot with an embedded .cmdline: v252 ignores what the loader passes.
  const locked = await predictUki(image, { loadOptions: 'init=/bin/sh', secureBoot: true });
  assert.equal(locked.cmdline, 'console=ttyS0 quiet');
  assert.ok(!locked.events.some((e) => e.pcr === 12));
  // Garbage load options (first character a control character) are ignored, as the stub does.
  assert.ok(!(await predictUki(image, { loadOptions: '\u0001\u0002' })).events.some((e) => e.pcr === 12));
});

test('.pcrpkey is measured into PCR 11; PCR 9 is then not predicted (the stub appends a cpio)', skip, async () => {
  const prediction = await predictUki(uki({ pcrpkey: '-----BEGIN PUBLIC KEY-----\n' }));
  assert.deepEqual(prediction.sections.map((s) => s.name), ['.linux', '.osrel', '.cmdline', '.initrd', '.pcrpkey']);
  assert.deepEqual(prediction.unpredicted.map((u) => u.pcr), [9]);
  assert.equal(prediction.pcrs['SHA-256']![9], undefined);
  // A misspelt .pcrkey is carried but never measured, and the report says so.
  const misspelt = await predictUki(uki({ extra: [{ name: '.pcrkey', data: new Uint8Array([1, 2, 3]) }] }));
  assert.ok(!misspelt.sections.some((s) => s.name === '.pcrkey'));
  assert.ok(misspelt.notes.some((n) => n.includes('.pcrkey')));
});

test('kernels: EFI-handover-only kernels skip the PCR 4 kernel event; non-PE .linux is refused', skip, async () => {
  const old = await predictUki(uki({ linux: tinyKernel(0) }));
  assert.equal(old.events.filter((e) => e.pcr === 4).length, 3);
  assert.deepEqual(old.unpredicted.map((u) => u.pcr), [9]);
  await assert.rejects(predictUki(uki({ linux: new TextEncoder().encode('HALLO\n') })), (e) => isSigilError(e, 'uki.linux_not_pe'));
});

test('section lookup: 252 matches by prefix (last wins), 258 exactly, 255 refuses to guess', skip, async () => {
  const image = uki({ extra: [{ name: '.osrelX', data: new TextEncoder().encode('ID=other\n') }] });
  const v252 = await predictUki(image, { stubVersion: 252 });
  const osrel252 = v252.events.filter((e) => e.description === '.osrel')[1];
  assert.equal(toHex(osrel252.digests['SHA-256']!), toHex(sha256('ID=other\n')));
  const v258 = await predictUki(image, { stubVersion: 258 });
  assert.equal(toHex(v258.events.filter((e) => e.description === '.osrel')[1].digests['SHA-256']!), toHex(sha256(OS_RELEASE)));
  await assert.rejects(predictUki(image, { stubVersion: 255 }), (e) => isSigilError(e, 'uki.section_lookup_ambiguous'));
});

test('reference-value document and `sigil uki predict --json`', skip, async () => {
  const image = uki();
  const prediction = await predictUki(image);
  const document = await ukiReferenceDocument(image, prediction, 'test.efi');
  assert.equal(document.subject.sha256, toHex(sha256(image)));
  assert.deepEqual(document.pcrs.sha256, { 4: values(prediction)[4], 9: values(prediction)[9], 11: values(prediction)[11], 12: '00'.repeat(32) });
  assert.deepEqual(document.referenceValues.map((v) => [v.index, v.bank]), [[4, 'sha256'], [9, 'sha256'], [11, 'sha256']]);
  assert.equal(document.events.filter((e) => e.pcr === 11).length, 8);
  const dir = mkdtempSync(join(tmpdir(), 'sigil-uki-'));
  try {
    writeFileSync(join(dir, 'test.efi'), image);
    const out = execFileSync('sh', [join(root, 'scripts/sigil'), 'uki', 'predict', join(dir, 'test.efi'), '--stub-version', '252', '--json'], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { pcr4: values(prediction)[4], pcr9: values(prediction)[9], pcr11: values(prediction)[11] });
    const sha1 = JSON.parse(execFileSync('sh', [join(root, 'scripts/sigil'), 'uki', 'predict', join(dir, 'test.efi'), '--bank', 'sha1', '--json'], { encoding: 'utf8' }));
    assert.equal(sha1.pcr11.length, 40);
    const refused = spawnStatus(['uki', 'predict', join(dir, 'missing.efi'), '--json']);
    assert.equal(refused, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function spawnStatus(args: string[]): number | null {
  try {
    execFileSync('sh', [join(root, 'scripts/sigil'), ...args], { stdio: 'pipe' });
    return 0;
  } catch (error) {
    return (error as { status: number | null }).status;
  }
}

const SYSTEMD_MEASURE = '/usr/lib/systemd/systemd-measure';

test('interop: PCR 11 equals Debian systemd-measure 252 for the same components, every bank and phase', { skip: skip.skip || (existsSync(SYSTEMD_MEASURE) ? false : `${SYSTEMD_MEASURE} missing (Debian package systemd)`) }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-measure-'));
  try {
    const files = { linux: tinyKernel(), osrel: OS_RELEASE, cmdline: 'console=ttyS0 quiet', initrd: INITRD, splash: new Uint8Array([0x42, 0x4d, 1, 2, 3]), pcrpkey: '-----BEGIN PUBLIC KEY-----\n' };
    for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
    const image = uki({ splash: files.splash, pcrpkey: files.pcrpkey });
    for (const phases of [[], ['enter-initrd'], ['enter-initrd', 'leave-initrd', 'sysinit', 'ready']]) {
      const out = execFileSync(SYSTEMD_MEASURE, ['calculate', ...Object.keys(files).map((n) => `--${n}=${join(dir, n)}`), '--bank=sha1', '--bank=sha256', '--bank=sha384', '--bank=sha512', `--phase=${phases.join(':') || ':'}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const peer = Object.fromEntries([...out.matchAll(/^11:(sha\d+)=([0-9a-f]+)$/gm)].map((m) => [m[1], m[2]]));
      const ours = await predictUki(image, { banks: ['SHA-1', 'SHA-256', 'SHA-384', 'SHA-512'], phases });
      assert.deepEqual(
        { sha1: toHex(ours.pcrs['SHA-1']![11]), sha256: toHex(ours.pcrs['SHA-256']![11]), sha384: toHex(ours.pcrs['SHA-384']![11]), sha512: toHex(ours.pcrs['SHA-512']![11]) },
        peer,
        `phases ${phases.join(':')}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
