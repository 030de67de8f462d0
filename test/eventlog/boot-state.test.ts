import { test } from 'node:test';
import assert from 'node:assert/strict';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { isSigilError } from '../../src/core/errors.ts';
import { digest } from '../../src/core/hash.ts';
import { toHex } from '../../src/core/hex.ts';
import { extractBootState } from '../../src/eventlog/boot-state.ts';
import { EFI_GLOBAL_VARIABLE, EFI_IMAGE_SECURITY_DATABASE } from '../../src/eventlog/efi-variable.ts';
import { EV } from '../../src/eventlog/event-types.ts';
import { leU16 } from '../../src/eventlog/le.ts';
import { LINUX_TAGS, SYSTEMD_TAGS } from '../../src/eventlog/systemd.ts';
import { parseTcgEventLog } from '../../src/eventlog/tcg-log.ts';
import { writeCryptoAgileLog, type EventToWrite } from '../../src/eventlog/tcg-writer.ts';
import { TPM_ALG } from '../../src/tpm/constants.ts';
import {
  ascii,
  asciiNul,
  bootVariable,
  driverConfig,
  efiAction,
  grub,
  grubFile,
  imageLoad,
  separator,
  separators,
  signatureList,
  stubCmdline,
  stubIpl,
  tagged,
  ukiSection,
} from './builders.ts';

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256];
const sha256 = async (bytes: Uint8Array) => toHex(await digest('SHA-256', bytes));
const X509_GUID = 'a5c059a1-94e4-4aa7-87b5-ab155c2bf072';
const SHA256_GUID = 'c1c41626-504c-4092-aca9-41f936934328';
const OWNER = '77fa9abd-0359-4d32-bd60-28f4e78f784b';

async function state(events: EventToWrite[], options = {}) {
  return extractBootState(parseTcgEventLog(await writeCryptoAgileLog(events, BANKS)), options);
}

test('systemd-stub UKI: PCR 11 sections, PCR 12 command line and credentials, PCR 13 sysext, Linux stub PCR 9', async () => {
  const linux = ascii('MZ...kernel image');
  const cmdline = ascii('root=/dev/vda2 ro quiet');
  const initrd = ascii('070701 initrd cpio');
  const events = [
    ...separators(),
    imageLoad(4, EV.EFI_BOOT_SERVICES_APPLICATION, ascii('uki image'), '\\EFI\\Linux\\arch.efi'),
    ...ukiSection('.linux', linux),
    ...ukiSection('.osrel', ascii('ID=arch\n')),
    ...ukiSection('.cmdline', cmdline),
    ...ukiSection('.initrd', initrd),
    stubCmdline('root=/dev/vda2 ro quiet systemd.debug'),
    stubIpl(12, 'Credentials initrd', ascii('cred cpio')),
    stubIpl(13, 'System extension initrd', ascii('sysext cpio')),
    tagged(12, SYSTEMD_TAGS.initrdAddon, new Uint8Array([...'x.addon.efi'].flatMap((c) => [c.charCodeAt(0), 0])), ascii('addon')),
    tagged(5, SYSTEMD_TAGS.loaderConf, new Uint8Array([...'loader.conf'].flatMap((c) => [c.charCodeAt(0), 0]).concat([0, 0])), ascii('timeout 3\n')),
    tagged(9, LINUX_TAGS.initrd, asciiNul('Linux initrd'), initrd),
    tagged(9, LINUX_TAGS.loadOptions, asciiNul('LOADED_IMAGE::LoadOptions'), ascii('options')),
  ];
  const { state: s } = await state(events);
  assert.deepEqual(s.systemd?.ukiSections, [
    { name: '.linux', digest: await sha256(linux) },
    { name: '.osrel', digest: await sha256(ascii('ID=arch\n')) },
    { name: '.cmdline', digest: await sha256(cmdline) },
    { name: '.initrd', digest: await sha256(initrd) },
  ]);
  assert.deepEqual(s.systemd?.cmdlines, ['root=/dev/vda2 ro quiet systemd.debug']);
  assert.deepEqual(
    s.systemd?.items.map((i) => [i.kind, i.description, i.pcr]),
    [
      ['credentials', 'Credentials initrd', 12],
      ['sysext', 'System extension initrd', 13],
      ['initrd-addon', 'x.addon.efi', 12],
      ['loader-conf', 'loader.conf', 5],
    ],
  );
  assert.deepEqual(s.kernelCmdline, { text: 'root=/dev/vda2 ro quiet systemd.debug', source: 'systemd-stub' });
  assert.deepEqual(s.initrd, { digest: await sha256(initrd), source: 'linux-efistub' });
  assert.deepEqual(s.linuxStub, { initrdDigest: await sha256(initrd), loadOptionsDigest: await sha256(ascii('options')) });
  assert.equal(s.efiApplications[0].pathHint, '\\EFI\\Linux\\arch.efi');
  assert.equal(s.grub, undefined);
});

test('a UKI without a PCR 12 command line: the .cmdline section digest stands for it', async () => {
  const { state: s } = await state([...ukiSection('.linux', ascii('k')), ...ukiSection('.cmdline', ascii('ro'))]);
  assert.deepEqual(s.kernelCmdline, { digest: await sha256(ascii('ro')), source: 'uki-section' });
  assert.equal(s.initrd, undefined);
});

test('systemd data that its digest does not cover is refused, naming the event', async () => {
  const cmd = stubCmdline('root=/dev/vda2');
  cmd.data = new Uint8Array([...cmd.data.subarray(0, 10), 0x41, 0, ...cmd.data.subarray(12)]); // text changed, digest kept
  await assert.rejects(state([cmd]), (e) => isSigilError(e, 'eventlog.event_data_mismatch') && e.details.pcr === 12);
  const [, dataEvent] = ukiSection('.linux', ascii('k'));
  await assert.rejects(state([dataEvent]), (e) => isSigilError(e, 'eventlog.event_data_mismatch') && e.details.pcr === 11);
  const [nameOnly] = ukiSection('.linux', ascii('k'));
  await assert.rejects(state([nameOnly]), (e) => isSigilError(e, 'eventlog.uki_section_incomplete'));
});

test('GRUB 2.04+: commands, kernel command line, files with roles; a forged string is refused', async () => {
  const kernel = ascii('vmlinuz bytes');
  const initrd = ascii('initrd bytes');
  const events = [
    grubFile('(hd0,gpt1)/boot/grub/grub.cfg', ascii('menuentry ...')),
    grub('grub_cmd: ', 'set root=hd0,gpt2'),
    grub('grub_cmd: ', 'linux /vmlinuz root=/dev/sda2 ro'),
    grubFile('/vmlinuz', kernel),
    grub('kernel_cmdline: ', '/vmlinuz root=/dev/sda2 ro'),
    grub('grub_cmd: ', 'initrd /initrd.img'),
    grubFile('/initrd.img', initrd),
  ];
  const { state: s } = await state(events);
  assert.deepEqual(s.grub?.commands, ['set root=hd0,gpt2', 'linux /vmlinuz root=/dev/sda2 ro', 'initrd /initrd.img']);
  assert.deepEqual(s.kernelCmdline, { text: '/vmlinuz root=/dev/sda2 ro', source: 'grub' });
  assert.deepEqual(s.initrd, { digest: await sha256(initrd), source: 'grub', pathHint: '/initrd.img' });
  assert.deepEqual(s.grub?.files.map((f) => f.role), [undefined, 'kernel', 'initrd']);
  const forged = grub('kernel_cmdline: ', '/vmlinuz root=/dev/sda2 ro');
  forged.data = asciiNul('kernel_cmdline: /vmlinuz root=/dev/sda2 ro init=/bin/sh');
  await assert.rejects(state([forged]), (e) => isSigilError(e, 'eventlog.event_data_mismatch') && e.details.pcr === 8);
});

test('firmware: Secure Boot databases, error and missing separators, ExitBootServices, boot variables', async () => {
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=Test DB', notBefore: new Date('2024-01-01'), notAfter: new Date('2034-01-01'), keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
  const der = new Uint8Array(cert.rawData);
  const revoked = new Uint8Array(32).fill(7);
  const loadOption = new Uint8Array([1, 0, 0, 0, 0, 0, ...[...'Linux'].flatMap((c) => [c.charCodeAt(0), 0]), 0, 0]);
  const events = [
    driverConfig(EFI_GLOBAL_VARIABLE, 'SecureBoot', new Uint8Array([1])),
    driverConfig(EFI_GLOBAL_VARIABLE, 'PK', signatureList(X509_GUID, OWNER, [der])),
    driverConfig(EFI_GLOBAL_VARIABLE, 'KEK', new Uint8Array(0)),
    driverConfig(EFI_IMAGE_SECURITY_DATABASE, 'db', signatureList(X509_GUID, OWNER, [der])),
    driverConfig(EFI_IMAGE_SECURITY_DATABASE, 'dbx', signatureList(SHA256_GUID, OWNER, [revoked, new Uint8Array(32)])),
    bootVariable(EFI_GLOBAL_VARIABLE, 'BootOrder', leU16(1)),
    bootVariable(EFI_GLOBAL_VARIABLE, 'Boot0001', loadOption),
    separator(0),
    separator(1, 1),
    separator(2),
    separator(4),
    separator(5),
    separator(6),
    separator(7),
    efiAction(4, 'Calling EFI Application from Boot Option'),
    efiAction(5, 'Exit Boot Services Invocation'),
    efiAction(5, 'Exit Boot Services Returned with Success'),
  ];
  const { state: s } = await state(events);
  assert.equal(s.secureBoot, true);
  assert.deepEqual(s.secureBootVariables.PK?.certificates, [{ owner: OWNER, sha256: await sha256(der), subject: 'CN=Test DB' }]);
  assert.deepEqual(s.secureBootVariables.KEK, { present: false, certificates: [], hashes: [] });
  assert.deepEqual(s.secureBootVariables.dbx?.hashes.map((h) => h.value), [toHex(revoked), toHex(new Uint8Array(32))]);
  assert.equal(s.separators[1], 'error');
  assert.deepEqual(s.missingSeparators, [3]);
  assert.equal(s.exitBootServices, 'success');
  assert.deepEqual(s.bootOrder, [1]);
  assert.deepEqual(s.bootOptions, [{ name: 'Boot0001', description: 'Linux' }]);
  assert.deepEqual(s.actions[0], { pcr: 4, text: 'Calling EFI Application from Boot Option' });
});

test('only events of the given PCRs count: an unverified PCR 7 gives no Secure Boot claim', async () => {
  const events = [driverConfig(EFI_GLOBAL_VARIABLE, 'SecureBoot', new Uint8Array([1])), ...separators()];
  const { state: s } = await state(events, { pcrs: [0, 1, 2, 3, 4, 5, 6] });
  assert.equal(s.secureBoot, undefined);
  assert.deepEqual(s.missingSeparators, [], 'PCR 7 is not judged at all');
  assert.deepEqual(Object.keys(s.separators), ['0', '1', '2', '3', '4', '5', '6']);
  const sha1 = await state(events, { bank: TPM_ALG.SHA1 });
  assert.equal(sha1.state.bank, 'sha1');
  await assert.rejects(state(events, { bank: TPM_ALG.SHA384 }), (e) => isSigilError(e, 'eventlog.bank_missing'));
});

test('a tampered Secure Boot variable (data changed, digest kept) is refused', async () => {
  const event = driverConfig(EFI_GLOBAL_VARIABLE, 'SecureBoot', new Uint8Array([0]));
  const log = parseTcgEventLog(await writeCryptoAgileLog([event], BANKS));
  log.events[1].data[log.events[1].data.length - 1] = 1;
  await assert.rejects(extractBootState(log), (e) => isSigilError(e, 'eventlog.event_data_mismatch') && e.details.pcr === 7);
});
