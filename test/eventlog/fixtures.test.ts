import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractBootState } from '../../src/eventlog/boot-state.ts';
import { banksToJson, replayTcgLog } from '../../src/eventlog/replay.ts';
import { parseTcgEventLog } from '../../src/eventlog/tcg-log.ts';
import { isSigilError } from '../../src/core/errors.ts';
import { fixture, fixtureTest, fixtureText } from '../support/fixtures.ts';
import { tpm2EventlogPcrs } from './tools.ts';

/**
 * Every TCG event log in ../shared/fixtures/tpm replays to the PCR values its README states
 * (google/go-eventlog tpmeventlog/extract_test.go TestParseEventLogs), agrees with tpm2_eventlog on
 * every bank, and yields the boot state the README and upstream tests give.
 */
const SEPARATOR_ONLY_256 = '3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969';
const SEPARATOR_ONLY_1 = 'b2a83b0ebf2f8374299a5b2bdfc31ea955ad7236';

const EXPECTED: Record<string, { format: string; pcrs: Record<string, Record<number, string>> }> = {
  'tpm/goeventlog_rhel8_gce_uefi_sb.bin': {
    format: 'crypto-agile',
    pcrs: {
      sha256: {
        0: '24af52a4f429b71a3184a6d64cddad17e54ea030e2aa6576bf3a5a3d8bd3328f',
        1: '454220afaa80c83c3839f6cccd8b3c88bf4f562316a9dda1121c578c9e005a53',
        2: SEPARATOR_ONLY_256,
        3: SEPARATOR_ONLY_256,
        4: '758a3d35f1b0ff5b135dacd07db0c8132c0ac665d944090d4bf96e66447a245c',
        5: '53d0ee36163219201e686167bbb71ec505b3ba2917b9d9183ed84aad26cfeb89',
        6: SEPARATOR_ONLY_256,
        7: '5fd54361d580eb7592adb8deb236ff35444ceeac7148f24b3de63c041f12b3da',
        8: '25c3874041ebd4e9a21b6ed71b624a7bfa99907a8dcea7f129a4c64cbaf5829a',
        9: 'd43b2f61eb18b4791812ff5f20ab20e4ef621ba683370bedf5dbdf518b3a8078',
        14: 'd8f57ebcc1a23cc46832696e1a657f720e1be8f5b405bb7204682114e363b455',
      },
      sha1: {
        0: '0f2d3a2a1adaa479aeeca8f5df76aadc41b862ea',
        7: 'd7a632f8990b2171e987041b0a3c69fc1b2a4f27',
        9: '25de9455ef4e8180b76bbb9bb54a82f9a73abb0a',
        14: '1f5149668c40524e01be9cbc3ad527645943f148',
      },
    },
  },
  'tpm/goeventlog_ubuntu1804_gce_amd_sev.bin': {
    format: 'crypto-agile',
    pcrs: {
      sha256: {
        0: '0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf',
        1: 'add81cbc06b154716ac7bd5999c84cbc520184d57c58102657d270274508d9ce',
        2: SEPARATOR_ONLY_256,
        3: SEPARATOR_ONLY_256,
        4: 'b4b94e840fc9352e20bdb5b456b4c242af0fb146755b6935d8eda000ea368a31',
        5: '0b75168095fd6464ff1f9943b762ec009a3ae84c5e76cf67361e16b9db30d28e',
        6: SEPARATOR_ONLY_256,
        7: '61af3f499f1a86be54458fd30d193fa913a7e23ca3103fa3d0abaefd3cd4f9b8',
        8: 'c324da9d0c54252c37af697cdd58b066f2bb0f4a69752d27623bc738d02e9486',
        9: '2d334f1eeb9a16dabaccaa746ff1c0dce2e9aeb3f3a4a314e5e1e61b01e940d0',
      },
      sha1: { 0: 'c032c3b51dbb6f96b047421512fd4b4dfde496f3', 7: '6530ed2dcba68801c78ca08753f239118bead7c8', 9: '1b79f2140a84462cb13d1a0c1904daefd24d7938' },
    },
  },
  'tpm/goeventlog_cos101_gce_amd_sev.bin': {
    format: 'crypto-agile',
    pcrs: {
      sha256: {
        0: '0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf',
        1: '6eb40f5b6bfafcb9914d486ce59404acd24bc13a6a3c45cda3b44c9d7053d638',
        2: SEPARATOR_ONLY_256,
        3: SEPARATOR_ONLY_256,
        4: '6d9f1a1d461cf77517e8d4c488c53f338a71c5a8e2b81ab7011c14f72cbc9a80',
        5: 'd1a1ab23a5c3d98fbacff3891bad42d8e9257d61e1f683f42c6c9fa949bf96c5',
        6: SEPARATOR_ONLY_256,
        7: '2bc6edaa921f953cec0ffb28dad4f87114886603d6a782036502d28e69d97a48',
        8: 'ebb7c847c4ade99849bcffca236d32331224a530087a7ae4cb9f7db4c2e571b5',
        9: 'b5ad662e5eb9165825ee39ad66e851a67a193e0b87b27858f25ac58afa72ac57',
        14: 'd0d95459205afae879514db7b85630f5d6b8272ed8c731bf92933dbc9fe99969',
      },
      sha1: { 9: 'fbbb8a8f120369810e7e161504556f0080afadac' },
    },
  },
  'tpm/goeventlog_arch_linux_workstation.bin': {
    format: 'crypto-agile',
    pcrs: {
      sha256: {
        0: '758b773d94feabf52ef5a4c00a7ad2c80d8d6e6d9d58756150be9bc973da9087',
        1: 'bfda688a5d320123fddb3fc70b746bc17647e2e7f2f96e130d429542bf4622d5',
        2: '65dee4a48cde677aa89fa83c5c35e883fda658f743853e3ebad504ca6702f7c5',
        3: SEPARATOR_ONLY_256,
        4: '925d453d3dfef4ac0c72c957402163d45fa95d05e6d53f047263a3a60b598325',
        5: '202522f005ef625588bb7c9e21335ba96a63c5086306138885b3bb2c381730ca',
        6: SEPARATOR_ONLY_256,
        7: '3b4a4db44b7a872524055364e62e897ae678e0d47ab0809f65c3a4ed77f66ab9',
        8: '47591b43af431963eaeb5238a5c42eda1eb0014c27f7de7ae483066a2d2a2e61',
      },
      sha1: { 0: 'a0487b0d95387d4a30560edf5f041307bf4a1dcc' },
    },
  },
  'tpm/goeventlog_debian10_gce_sha1_legacy.bin': {
    format: 'sha1-legacy',
    pcrs: {
      sha1: {
        0: '0f2d3a2a1adaa479aeeca8f5df76aadc41b862ea',
        1: 'b1676439cac1531683990fefe2218a43239d6fe8',
        2: SEPARATOR_ONLY_1,
        3: SEPARATOR_ONLY_1,
        4: '1eb30816474a3f144e99b24e4ad480b2e51fd9e1',
        5: '019079179dbc0eb5992c500dcf8a095910ac590d',
        6: SEPARATOR_ONLY_1,
        7: '9e6c57e850f371c2a7fe02bca552149363952318',
      },
    },
  },
};

for (const [file, expected] of Object.entries(EXPECTED)) {
  test(`${file} replays to the README's PCR values and agrees with tpm2_eventlog`, fixtureTest(), async () => {
    const bytes = fixture(file);
    const log = parseTcgEventLog(bytes);
    assert.equal(log.format, expected.format);
    assert.deepEqual(log.quirks, []);
    const replayed = banksToJson((await replayTcgLog(log)).banks);
    for (const [bank, values] of Object.entries(expected.pcrs)) {
      for (const [pcr, value] of Object.entries(values)) assert.equal(replayed[bank][Number(pcr)], value, `${bank}:${pcr}`);
    }
    assert.deepEqual(replayed, await tpm2EventlogPcrs(bytes), 'every bank and PCR equals tpm2_eventlog');
  });
}

test('the GCE COS 85 attestation log replays PCRs 0-9 of all three quoted banks', fixtureTest(), async () => {
  const quoted = JSON.parse(fixtureText('tpm/gotpmtools_gce_cos85_quotes_and_pcrs.json')).quotes as Record<string, { pcrs: Record<string, string> }>;
  const log = parseTcgEventLog(fixture('tpm/gotpmtools_gce_cos85_eventlog.bin'));
  const replayed = banksToJson((await replayTcgLog(log)).banks);
  assert.deepEqual(Object.keys(replayed), ['sha1', 'sha256', 'sha384']);
  for (const bank of ['sha1', 'sha256', 'sha384']) {
    for (let pcr = 0; pcr <= 9; pcr++) assert.equal(replayed[bank][pcr], quoted[bank].pcrs[String(pcr)], `${bank}:${pcr}`);
    assert.deepEqual(Object.keys(replayed[bank]).map(Number), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  }
  assert.equal(replayed.sha256[0], '0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf');
  assert.equal(replayed.sha256[4], 'd690bdac2aa8b73a1d718cb91990df07d0747b07ea57b3b2d0f0d511f0d90491');
  assert.equal(replayed.sha256[7], '3365d7fa2b024c852913c06e04ffbfa6ea5289f743bbf1a76f7ffdf21ed84793');
  assert.equal(replayed.sha256[8], '9e9b6511ae6ad443aae4c7bf998ffffbcd271c874f1efab9d692f129eb6e6c18');
  assert.equal(replayed.sha256[9], 'e01c8cf808763422c5ede2cdb34595b92bd7d06b8bbd6014b54d2e95b14b0963');
});

/** google/go-eventlog testdata/eventlog_data.go, without the trailing "\x00" the Go value keeps. */
const COS101_CMDLINE =
  '/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd boot=local rootwait ro noresume loglevel=7 console=tty1 console=ttyS0 security=apparmor virtio_net.napi_tx=1 nmi_watchdog=0 csm.disabled=1 loadpin.exclude=kernel-module modules-load=loadpin_trigger module.sig_enforce=1 dm_verity.error_behavior=3 dm_verity.max_bios=-1 dm_verity.dev_wait=1 i915.modeset=1 cros_efi root=/dev/dm-0 "dm=1 vroot none ro 1,0 4077568 verity payload=PARTUUID=1D70214B-9AB3-E542-8372-3CCD786534FA hashtree=PARTUUID=1D70214B-9AB3-E542-8372-3CCD786534FA hashstart=4077568 alg=sha256 root_hexdigest=48d436350a7e83bde985cd3f7e79fa443557743b42243803ce31104ca4719c5d salt=b323b014b6f463172fca758a1c5a6745a2c8e5872be0e175e2f4b40c8295b2ab"';
const COS85_CMDLINE =
  '/syslinux/vmlinuz.A init=/usr/lib/systemd/systemd boot=local rootwait ro noresume noswap loglevel=7 noinitrd console=ttyS0 security=apparmor virtio_net.napi_tx=1 systemd.unified_cgroup_hierarchy=false systemd.legacy_systemd_cgroup_controller=false csm.disabled=1 loadpin.exclude=kernel-module modules-load=loadpin_trigger module.sig_enforce=1 dm_verity.error_behavior=3 dm_verity.max_bios=-1 dm_verity.dev_wait=1 i915.modeset=1 cros_efi root=/dev/dm-0 "dm=1 vroot none ro 1,0 4077568 verity payload=PARTUUID=EF8ECEE2-2385-AE4F-A146-1ED93D8AC217 hashtree=PARTUUID=EF8ECEE2-2385-AE4F-A146-1ED93D8AC217 hashstart=4077568 alg=sha256 root_hexdigest=795872ee03859c10dfcc4d67b4b96c85094b340c2d8784783abc2fa12a6ed671 salt=40eb77fb9093cbff56a6f9c2214c4f7554817d079513b7c77de4953d6b8ffc16"';

test('COS 101: Secure Boot on, GRUB kernel command line as go-eventlog asserts it', fixtureTest(), async () => {
  const { state, quirks } = await extractBootState(parseTcgEventLog(fixture('tpm/goeventlog_cos101_gce_amd_sev.bin')));
  assert.deepEqual(quirks, []);
  assert.equal(state.bank, 'sha256');
  assert.equal(state.secureBoot, true);
  assert.deepEqual(state.kernelCmdline, { text: COS101_CMDLINE, source: 'grub' });
  assert.equal(state.exitBootServices, 'success');
  assert.equal(state.crtmVersion, 'GCE Virtual Firmware v1');
  assert.deepEqual(Object.values(state.separators), Array(8).fill('normal'));
  assert.deepEqual(state.missingSeparators, []);
  assert.equal(state.secureBootVariables.db?.certificates[0].subject?.endsWith('CN=UEFI DB Key v10'), true);
  assert.deepEqual(state.efiApplications.map((a) => a.pathHint), ['\\EFI\\BOOT\\BOOTX64.EFI', '\\EFI\\BOOT\\grub-lakitu.efi', undefined, undefined]);
  assert.deepEqual(
    state.grub?.files.map((f) => [f.pathHint, f.role]),
    [
      ['/efi/boot/grub.cfg', undefined],
      ['/syslinux/vmlinuz.A', 'kernel'],
    ],
  );
  assert.deepEqual(state.authorities.map((a) => a.variable), ['db', 'SbatLevel', 'db']);
  assert.equal(state.authorities[1].text, 'sbat,1,2021030218\n');
});

test('COS 85 (the quoted attestation): needs the shim authority quirk, then gives its command line', fixtureTest(), async () => {
  const log = parseTcgEventLog(fixture('tpm/gotpmtools_gce_cos85_eventlog.bin'));
  await assert.rejects(extractBootState(log), (e) => isSigilError(e, 'eventlog.quirk_required') && e.details.quirk === 'shim-authority-digest-short' && e.details.sequence === 24);
  const { state, quirks } = await extractBootState(log, { quirks: ['shim-authority-digest-short'] });
  assert.deepEqual(quirks.map((q) => q.detail), ['event 24 hashes all but the last byte of its data', 'event 41 hashes all but the last byte of its data']);
  assert.deepEqual(state.kernelCmdline, { text: COS85_CMDLINE, source: 'grub' });
  assert.equal(state.secureBoot, true);
  assert.equal(state.authorities.length, 3);
});

test('RHEL 8: Secure Boot on, Red Hat GRUB strings, kernel and initrd from grub_linuxefi', fixtureTest(), async () => {
  const { state } = await extractBootState(parseTcgEventLog(fixture('tpm/goeventlog_rhel8_gce_uefi_sb.bin')));
  assert.equal(state.secureBoot, true);
  assert.equal(
    state.kernelCmdline?.text,
    '(hd0,gpt2)/boot/vmlinuz-4.18.0-240.22.1.el8_3.x86_64 root=UUID=f3948fb4-cce7-4193-940a-c50052e93bf3 ro net.ifnames=0 biosdevname=0 scsi_mod.use_blk_mq=Y crashkernel=auto console=ttyS0,38400n8',
  );
  assert.deepEqual(state.initrd, { digest: 'df08d49b7c52bbd8b3431249f1e2786903fde05fc314a27fccd6dbce0af4005f', source: 'grub', pathHint: 'grub_linuxefi Initrd' });
  assert.equal(state.grub?.commands.length, 49);
  assert.deepEqual(state.efiApplications.map((a) => a.pathHint), ['\\EFI\\redhat\\shimx64.efi', '\\EFI\\redhat\\grubx64.efi', undefined]);
  assert.equal(state.efiApplications[0].digest, '40d6cae02973789080cf4c3a9ad11b5a0a4d8bba4438ab96e276cc784454dee7');
  assert.deepEqual(state.authorities.map((a) => a.subject), [
    'C=US, ST=Washington, L=Redmond, O=Microsoft Corporation, CN=Microsoft Corporation UEFI CA 2011',
    'O=Red Hat\\, Inc., CN=Red Hat Secure Boot CA 5, E=secalert@redhat.com',
  ]);
  assert.deepEqual(state.bootOrder, [2, 0, 1]);
  assert.equal(state.bootOptions[0].description, 'Red Hat Enterprise Linux');
});

test('Ubuntu 18.04 on GCE: the log measures SecureBoot = 0 (README calls it "Secure Boot"; the variable says off)', fixtureTest(), async () => {
  const { state } = await extractBootState(parseTcgEventLog(fixture('tpm/goeventlog_ubuntu1804_gce_amd_sev.bin')));
  assert.equal(state.secureBoot, false);
  assert.equal(state.authorities.length, 0, 'no EV_EFI_VARIABLE_AUTHORITY: nothing was verified against db');
  assert.deepEqual(state.kernelCmdline, { text: '/boot/vmlinuz-5.4.0-1046-gcp root=LABEL=cloudimg-rootfs ro console=ttyS0', source: 'grub' });
  assert.deepEqual(state.initrd, { digest: '0b09941d3f352c7a357c4a6d9b27359eedae38e59e0ed7ed8f9f38a4c6aadaee', source: 'grub', pathHint: '/boot/initrd.img-5.4.0-1046-gcp' });
  assert.equal(state.secureBootVariables.dbx?.hashes.length, 77);
});

test('Arch workstation: boot variables hashed whole need their quirk; SecureBoot measured empty = off', fixtureTest(), async () => {
  const log = parseTcgEventLog(fixture('tpm/goeventlog_arch_linux_workstation.bin'));
  await assert.rejects(extractBootState(log), (e) => isSigilError(e, 'eventlog.quirk_required') && e.details.quirk === 'boot-variable-whole-event-digest');
  const { state, quirks } = await extractBootState(log, { quirks: ['boot-variable-whole-event-digest'] });
  assert.deepEqual([...new Set(quirks.map((q) => q.id))], ['boot-variable-whole-event-digest']);
  assert.equal(quirks.length, 4);
  assert.equal(state.secureBoot, false);
  assert.deepEqual(state.efiApplications.map((a) => a.pathHint), ['\\EFI\\SYSTEMD\\SYSTEMD-BOOTX64.EFI', '\\vmlinuz-linux-lts']);
  assert.equal(state.exitBootServices, 'not-measured');
  assert.deepEqual(state.bootOrder, [0, 3, 2]);
  assert.equal(state.secureBootVariables.PK?.certificates[0].subject, 'CN=Joe Richey (PK)');
  assert.equal(state.firmwareBlobs[0].base, '0xffa90000');
});

test('Debian 10 (SHA-1 legacy): Secure Boot on, no ExitBootServices measured, shim authority quirk', fixtureTest(), async () => {
  const log = parseTcgEventLog(fixture('tpm/goeventlog_debian10_gce_sha1_legacy.bin'));
  const { state, quirks } = await extractBootState(log, { quirks: ['shim-authority-digest-short'] });
  assert.deepEqual(quirks.map((q) => q.id), ['shim-authority-digest-short']);
  assert.equal(state.bank, 'sha1');
  assert.equal(state.secureBoot, true);
  assert.equal(state.exitBootServices, 'not-measured');
  assert.deepEqual(state.authorities.map((a) => a.subject), [
    'C=US, ST=Washington, L=Redmond, O=Microsoft Corporation, CN=Microsoft Corporation UEFI CA 2011',
    'CN=Debian Secure Boot CA',
  ]);
  assert.equal(state.secureBootVariables.dbx?.hashes.length, 183);
});
