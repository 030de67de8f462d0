import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { toHex } from '../../src/core/hex.ts';
import { EV } from '../../src/eventlog/event-types.ts';
import { banksToJson, initialPcrValue, replayTcgLog } from '../../src/eventlog/replay.ts';
import { parseTcgEventLog } from '../../src/eventlog/tcg-log.ts';
import { eventDigests, writeCryptoAgileLog, type EventToWrite } from '../../src/eventlog/tcg-writer.ts';
import { startup } from '../../src/tpm/commands/startup.ts';
import { HASH_ALGS, TPM_ALG, TPM_SU } from '../../src/tpm/constants.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../src/tpm/tpm.ts';
import { prng } from '../support/fuzz.ts';
import { ascii, efiAction, grub, grubFile, imageLoad, separators, stubCmdline, ukiSection } from './builders.ts';
import { tpm2EventlogPcrs } from './tools.ts';

/**
 * Round-trip oracle: a crypto-agile log written by Sigil, the same digests extended into a real
 * swtpm, then Sigil's replay == the TPM's PCRs (TPM2_PCR_Read) == tpm2_eventlog's replay.
 */
const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256, TPM_ALG.SHA384];
let swtpm: SwtpmInstance;

before(async () => {
  swtpm = await startSwtpm({ pcrBanks: ['sha1', 'sha256', 'sha384'] });
});

after(async () => {
  await swtpm?.stop();
});

async function roundTrip(events: EventToWrite[], options: { startupLocality?: number } = {}): Promise<void> {
  const bytes = await writeCryptoAgileLog(events, BANKS, options);
  const tpm = new Tpm(swtpm.transport());
  const fromTpm: Record<string, Record<number, string>> = {};
  try {
    // A fresh TPM per log: power-cycle swtpm (CMD_INIT on its control channel), then Startup(CLEAR).
    await swtpm.control.init();
    // TPM2_Startup at locality 3 makes PCR 0 start at 00..03, what the StartupLocality event records.
    await swtpm.control.setLocality(options.startupLocality ?? 0);
    await tpm.client.run(startup(TPM_SU.CLEAR));
    await swtpm.control.setLocality(0);
    for (const event of events) {
      if (event.type === EV.NO_ACTION) continue;
      const digests = await eventDigests(event, BANKS);
      await tpm.extend(event.pcr, digests.map((d) => ({ hashAlg: d.alg, digest: d.digest })));
    }
    for (const alg of BANKS) {
      const values = await tpm.readPcrs(alg);
      fromTpm[HASH_ALGS[alg].label] = Object.fromEntries([...values].map(([pcr, v]) => [pcr, toHex(v)]));
    }
  } finally {
    await tpm.close();
  }
  const replay = await replayTcgLog(parseTcgEventLog(bytes));
  const replayed = banksToJson(replay.banks);
  for (const alg of BANKS) {
    const label = HASH_ALGS[alg].label;
    for (let pcr = 0; pcr < 24; pcr++) {
      const expected = replayed[label][pcr] ?? toHex(initialPcrValue(pcr, HASH_ALGS[alg].size));
      assert.equal(fromTpm[label][pcr], expected, `${label}:${pcr} replay == TPM`);
    }
  }
  // tpm2_eventlog 5.4 ignores StartupLocality and extends EV_NO_ACTION events (both against PFP
  // 10.4.5), so it is an oracle only for logs without them.
  if (options.startupLocality === undefined && !events.some((e) => e.type === EV.NO_ACTION)) {
    assert.deepEqual(await tpm2EventlogPcrs(bytes), replayed, 'replay == tpm2_eventlog');
  }
}

test('a boot-shaped log (firmware, shim, GRUB, UKI, systemd-stub) round-trips through swtpm and tpm2_eventlog', async () => {
  await roundTrip([
    { pcr: 0, type: EV.S_CRTM_VERSION, data: new Uint8Array([0x47, 0, 0x43, 0, 0x45, 0, 0, 0]) },
    imageLoad(2, EV.EFI_BOOT_SERVICES_DRIVER, ascii('option rom')),
    efiAction(4, 'Calling EFI Application from Boot Option'),
    ...separators(),
    imageLoad(4, EV.EFI_BOOT_SERVICES_APPLICATION, ascii('shim'), '\\EFI\\BOOT\\BOOTX64.EFI'),
    grubFile('/boot/grub/grub.cfg', ascii('cfg')),
    grub('grub_cmd: ', 'linux /vmlinuz ro'),
    grub('kernel_cmdline: ', '/vmlinuz ro'),
    ...ukiSection('.linux', ascii('kernel')),
    stubCmdline('ro quiet'),
    efiAction(5, 'Exit Boot Services Invocation'),
    efiAction(5, 'Exit Boot Services Returned with Success'),
    { pcr: 14, type: EV.IPL, data: ascii('MokList\0') },
    { pcr: 16, type: EV.ACTION, data: ascii('debug') },
    { pcr: 23, type: EV.ACTION, data: ascii('application') },
  ]);
});

test('300 random events over PCRs 0-16 and 23 round-trip', async () => {
  const random = prng(0x5eed);
  const pick = (n: number) => Math.floor(random() * n);
  // Types whose data tpm2_eventlog prints without decoding it (it rejects random UEFI structures).
  const types = [EV.ACTION, EV.IPL, EV.EFI_ACTION, EV.COMPACT_HASH, EV.SEPARATOR, EV.NONHOST_CODE];
  const pcrs = [...Array.from({ length: 17 }, (_, i) => i), 23];
  const events: EventToWrite[] = Array.from({ length: 300 }, () => ({
    pcr: pcrs[pick(pcrs.length)],
    type: types[pick(types.length)],
    data: Uint8Array.from({ length: pick(64) }, () => pick(256)),
  }));
  await roundTrip(events);
});

test('StartupLocality 3: PCR 0 starts at 00..03 (TPM2_Startup at locality 3), EV_NO_ACTION is never extended', async () => {
  await roundTrip(
    [
      { pcr: 0, type: EV.S_CRTM_VERSION, data: ascii('H-CRTM') },
      { pcr: 3, type: EV.NO_ACTION, data: ascii('not measured') },
      ...separators(),
    ],
    { startupLocality: 3 },
  );
  const log = parseTcgEventLog(await writeCryptoAgileLog(separators(), BANKS, { startupLocality: 3 }));
  assert.equal((await replayTcgLog(log)).startupLocality, 3);
});
