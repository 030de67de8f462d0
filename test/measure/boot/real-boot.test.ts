import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import type { HashName } from '../../../src/core/hash.ts';
import { toHex } from '../../../src/core/hex.ts';
import { parseImaLog } from '../../../src/eventlog/ima/ima-log.ts';
import { replayIma } from '../../../src/eventlog/ima/ima-replay.ts';
import { replayTcgLog } from '../../../src/eventlog/replay.ts';
import { parseTcgEventLog, type TcgEventLog } from '../../../src/eventlog/tcg-log.ts';
import { predictUki, type UkiPrediction } from '../../../src/measure/uki/predict.ts';
import { buildUki, type UkiInputs } from '../../../src/measure/uki/uki-build.ts';
import { HASH_ALGS, TPM_ALG } from '../../../src/tpm/constants.ts';
import { bootToolsMissing, bootUki, parseProbeOutput, type ProbeOutput } from './qemu-boot.ts';

/**
 * The real measured boot (issue 6, item 6): a UKI built by Sigil from Debian's systemd-stub 252, the
 * Debian cloud kernel and a busybox initramfs, booted by OVMF under QEMU/TCG with swtpm. Sigil's
 * prediction of PCR 4, 9 and 11 — from the file alone — must equal what the TPM holds after the
 * boot in every bank, Sigil's event-log parser must replay the captured log to every PCR 0-14, and
 * the same prediction for a UKI with another command line or initrd must not match.
 */

const root = new URL('../../../', import.meta.url).pathname;
const STUB = '/usr/lib/systemd/boot/efi/linuxx64.efi.stub';
const ASSETS = `${root}.tools/boot`;
const CMDLINE = 'console=ttyS0 panic=-1 quiet';
const BANKS: Record<string, HashName> = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };
const ALG_OF: Record<string, number> = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384, sha512: TPM_ALG.SHA512 };

const missing = bootToolsMissing() ?? (existsSync(STUB) ? undefined : `${STUB} is missing (Debian package systemd-boot-efi)`);
let inputs: UkiInputs;
let booted: ProbeOutput;
let log: TcgEventLog;
let prediction: UkiPrediction;

before(async () => {
  if (missing) return;
  // Kernel (apt-get download, never installed) and the reproducible busybox initramfs.
  execFileSync('sh', [`${root}scripts/boot-assets.sh`], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
  const kernelPackage = readFileSync(`${ASSETS}/kernel.txt`, 'utf8').trim();
  inputs = {
    stub: new Uint8Array(readFileSync(STUB)),
    linux: new Uint8Array(readFileSync(`${ASSETS}/vmlinuz`)),
    initrd: new Uint8Array(readFileSync(`${ASSETS}/initrd.cpio`)),
    cmdline: CMDLINE,
    osRelease: 'ID=sigil\nNAME="Sigil measured-boot test"\n',
    // v252 does not know .uname: carried, not measured — the boot proves it.
    uname: kernelPackage.split(' ')[0].replace(/^linux-image-/, ''),
  };
  const uki = buildUki(inputs);
  assert.deepEqual(buildUki(inputs), uki, 'two builds are byte-identical');
  prediction = await predictUki(uki, { banks: Object.values(BANKS) });
  const result = await bootUki(uki, { timeoutMs: 120_000 });
  booted = parseProbeOutput(result.serial);
  log = parseTcgEventLog(booted.eventLog);
  const summary = Object.fromEntries([4, 9, 11].map((pcr) => [`pcr${pcr}`, booted.pcrs.get('sha256')?.get(pcr)]));
  console.log(`real boot: ${result.seconds.toFixed(1)} s, ${kernelPackage}, booted sha256 ${JSON.stringify(summary)}`);
});

test('the booted kernel got the UKI command line', { skip: missing ?? false }, () => {
  assert.equal(booted.cmdline, CMDLINE);
  assert.deepEqual([...booted.pcrs.keys()].sort(), ['sha1', 'sha256', 'sha384', 'sha512']);
});

test('predicted PCR 4, 9 and 11 equal the booted TPM, in every bank', { skip: missing ?? false }, () => {
  for (const [label, hash] of Object.entries(BANKS)) {
    for (const pcr of [4, 9, 11]) {
      assert.equal(toHex(prediction.pcrs[hash]![pcr]), booted.pcrs.get(label)!.get(pcr), `${label} PCR ${pcr}`);
    }
    // The stub was given no command line by the firmware: PCR 12 stays zero, as predicted.
    assert.equal(toHex(prediction.pcrs[hash]![12]), booted.pcrs.get(label)!.get(12), `${label} PCR 12`);
  }
});

test('predicted events equal the logged events one by one (PCR 4, 9, 11; sha256)', { skip: missing ?? false }, () => {
  for (const pcr of [4, 9, 11]) {
    const logged = log.events.filter((e) => e.pcr === pcr && e.typeName !== 'EV_NO_ACTION').map((e) => `${e.typeName} ${toHex(e.digests.find((d) => d.alg === TPM_ALG.SHA256)!.digest)}`);
    const predicted = prediction.events.filter((e) => e.pcr === pcr).map((e) => `${e.type} ${toHex(e.digests['SHA-256']!)}`);
    assert.deepEqual(predicted, logged, `PCR ${pcr}`);
  }
  // 252 measured .linux .osrel .cmdline .initrd — and not .uname, which the UKI carries.
  assert.deepEqual(prediction.sections.map((s) => s.name), ['.linux', '.osrel', '.cmdline', '.initrd']);
});

test('Sigil replays the captured event log to every booted PCR 0-14 (PCR 10 from the IMA log)', { skip: missing ?? false }, async () => {
  const replay = await replayTcgLog(log);
  assert.ok(booted.imaLog, 'the kernel logged its IMA boot_aggregate');
  const imaLog = parseImaLog(booted.imaLog, { format: 'binary' });
  // IMA extends each bank with the template hash in that bank's algorithm when the kernel had the
  // hash transform at IMA init, and with the SHA-1 template hash zero-padded otherwise. Debian's
  // cloud kernel builds SHA-384/512 as a module (CONFIG_CRYPTO_SHA512=m), so those two banks get
  // the padded SHA-1 hash, while sha1 and sha256 (built in) get real bank hashes.
  const ima = new Map([
    ...(await replayIma(imaLog, [TPM_ALG.SHA1, TPM_ALG.SHA256], { mode: 'bank-hash' })),
    ...(await replayIma(imaLog, [TPM_ALG.SHA384, TPM_ALG.SHA512], { mode: 'sha1-padded' })),
  ]);
  let compared = 0;
  for (const [label, values] of booted.pcrs) {
    const alg = ALG_OF[label];
    for (let pcr = 0; pcr <= 14; pcr++) {
      const source = pcr === 10 ? ima.get(alg) : replay.banks.get(alg);
      const replayed = source?.get(pcr) ?? new Uint8Array(HASH_ALGS[alg].size);
      assert.equal(toHex(replayed), values.get(pcr), `${label} PCR ${pcr}`);
      compared++;
    }
  }
  assert.equal(compared, 4 * 15);
});

test('the prediction fails for a UKI with a different command line or initrd', { skip: missing ?? false }, async () => {
  const variants: [string, Partial<UkiInputs>][] = [
    ['cmdline', { cmdline: `${CMDLINE} init=/bin/sh` }],
    ['initrd', { initrd: Uint8Array.from([...inputs.initrd!, 0]) }],
  ];
  for (const [what, change] of variants) {
    const other = await predictUki(buildUki({ ...inputs, ...change }));
    for (const pcr of [4, 9, 11]) {
      assert.notEqual(toHex(other.pcrs['SHA-256']![pcr]), booted.pcrs.get('sha256')!.get(pcr), `a different ${what} must not predict the booted PCR ${pcr}`);
    }
  }
});
