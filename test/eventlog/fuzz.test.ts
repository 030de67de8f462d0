import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../src/core/errors.ts';
import { extractBootState } from '../../src/eventlog/boot-state.ts';
import { parseImageLoadEvent } from '../../src/eventlog/efi-image.ts';
import { parseFirmwareBlob, parseGptEvent } from '../../src/eventlog/efi-tables.ts';
import { parseLoadOption, parseSignatureLists, parseUefiVariableData } from '../../src/eventlog/efi-variable.ts';
import { parseTaggedEvent } from '../../src/eventlog/event-data.ts';
import { encodeImaBinary, encodeImaAscii, parseImaLog } from '../../src/eventlog/ima/ima-log.ts';
import { verifyTemplateHashes } from '../../src/eventlog/ima/ima-replay.ts';
import { replayTcgLog } from '../../src/eventlog/replay.ts';
import { parseSpecIdEvent } from '../../src/eventlog/spec-id.ts';
import { parseTcgEventLog } from '../../src/eventlog/tcg-log.ts';
import { writeCryptoAgileLog, writeLegacyLog } from '../../src/eventlog/tcg-writer.ts';
import { TPM_ALG } from '../../src/tpm/constants.ts';
import { fixture, fixturesAvailable } from '../support/fixtures.ts';
import { mutate, prng } from '../support/fuzz.ts';
import { ascii, efiAction, grub, separators, stubCmdline, ukiSection } from './builders.ts';

/**
 * Mutation fuzzing of every event-log parser: 0 crashes, only SigilErrors with the parser's prefix.
 * Seeds are the real fixture logs (when present) and written logs; the counts add up to more than
 * 100,000 event-log inputs, plus the UEFI structure decoders and the IMA list parser.
 */
function expectTyped(error: unknown, prefixes: string[], what: string): string {
  if (!isSigilError(error)) throw new Error(`${what}: not a SigilError: ${String(error)}`, { cause: error });
  assert.ok(prefixes.some((p) => error.code.startsWith(p)), `${what}: unexpected code ${error.code}`);
  return error.code;
}

async function seeds(): Promise<Uint8Array[]> {
  const banks = [TPM_ALG.SHA1, TPM_ALG.SHA256];
  const written = [
    await writeCryptoAgileLog([...separators(), efiAction(5, 'Exit Boot Services Invocation'), grub('kernel_cmdline: ', '/vmlinuz ro')], banks),
    await writeCryptoAgileLog([...ukiSection('.linux', ascii('k')), stubCmdline('ro')], banks, { startupLocality: 3 }),
    await writeLegacyLog(separators()),
  ];
  if (!fixturesAvailable()) return written;
  return [
    ...written,
    ...['arch_linux_workstation', 'cos101_gce_amd_sev', 'debian10_gce_sha1_legacy', 'rhel8_gce_uefi_sb', 'ubuntu1804_gce_amd_sev'].map((n) => fixture(`tpm/goeventlog_${n}.bin`)),
  ];
}

test('TCG event log parser: 100,000 mutated logs, typed errors only; every 1000th survivor replayed and read for boot state', async () => {
  const inputs = await seeds();
  const random = prng(0xe7e17);
  const codes = new Map<string, number>();
  let parsed = 0;
  for (let i = 0; i < 100_000; i++) {
    const input = mutate(inputs[i % inputs.length], random);
    try {
      const log = parseTcgEventLog(input, { quirks: i % 2 ? ['trailing-zero-padding', 'no-action-nonzero-digest'] : [] });
      parsed++;
      if (parsed % 1000 === 0) {
        await replayTcgLog(log);
        await extractBootState(log, { quirks: ['shim-authority-digest-short', 'boot-variable-whole-event-digest'] }).catch((e) => expectTyped(e, ['eventlog.'], `boot state ${i}`));
      }
    } catch (error) {
      const code = expectTyped(error, ['eventlog.'], `input ${i}`);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
  }
  assert.ok(parsed > 1000, `some mutants still parse (${parsed})`);
  assert.ok(codes.size >= 5, `several distinct checks fire: ${[...codes.keys()].join(', ')}`);
});

test('UEFI structure decoders: 30,000 mutated event payloads, typed errors only', async () => {
  const random = prng(0x0ef1 ^ 0x1234);
  const payloads: [string, Uint8Array, (b: Uint8Array) => unknown][] = [];
  for (const seed of await seeds()) {
    let log;
    try {
      log = parseTcgEventLog(seed);
    } catch {
      continue;
    }
    for (const e of log.events) {
      if (e.typeName.startsWith('EV_EFI_VARIABLE')) payloads.push(['variable', e.data, (b) => parseSignatureLists(parseUefiVariableData(b).data)]);
      if (e.typeName === 'EV_EFI_VARIABLE_BOOT') payloads.push(['load option', e.data, (b) => parseLoadOption(parseUefiVariableData(b).data)]);
      if (e.typeName.startsWith('EV_EFI_BOOT_SERVICES')) payloads.push(['image', e.data, parseImageLoadEvent]);
      if (e.typeName === 'EV_EFI_GPT_EVENT') payloads.push(['gpt', e.data, parseGptEvent]);
      if (e.typeName === 'EV_POST_CODE' && e.data.length === 16) payloads.push(['blob', e.data, (b) => parseFirmwareBlob(b, 1)]);
      if (e.typeName === 'EV_NO_ACTION' && e.sequence === 0 && log.format === 'crypto-agile') payloads.push(['spec id', e.data, parseSpecIdEvent]);
    }
  }
  payloads.push(['tagged', new Uint8Array([0xec, 0x22, 0x3b, 0x8f, 13, 0, 0, 0, ...ascii('Linux initrd\0')]), parseTaggedEvent]);
  for (let i = 0; i < 30_000; i++) {
    const [what, data, decode] = payloads[i % payloads.length];
    try {
      decode(mutate(data, random));
    } catch (error) {
      expectTyped(error, ['eventlog.'], `${what} ${i}`);
    }
  }
});

test('IMA list parser (binary and ASCII): 30,000 mutated lists, typed errors only', async () => {
  const enc = (t: string) => new TextEncoder().encode(t);
  const nul = (t: string) => enc(`${t}\0`);
  const dng = (d: Uint8Array) => new Uint8Array([...enc('sha256:\0'), ...d]);
  const entries = [
    { pcr: 10, templateName: 'ima-ng', fields: [dng(new Uint8Array(32).fill(1)), nul('boot_aggregate')], templateHash: new Uint8Array(20).fill(2) },
    { pcr: 10, templateName: 'ima-sig', fields: [dng(new Uint8Array(32).fill(3)), nul('/bin/sh'), new Uint8Array([3, 2, 1])], templateHash: new Uint8Array(20).fill(4) },
    { pcr: 10, templateName: 'ima', fields: [new Uint8Array(20).fill(5), enc('/legacy')], templateHash: new Uint8Array(20).fill(6) },
  ];
  const binary = encodeImaBinary(entries);
  const ascii = enc(encodeImaAscii(parseImaLog(binary)));
  const random = prng(0x13a ^ 0x77);
  for (let i = 0; i < 30_000; i++) {
    const input = mutate(i % 2 ? binary : ascii, random);
    try {
      const log = parseImaLog(input);
      if (i % 50 === 0) await verifyTemplateHashes(log).catch((e) => expectTyped(e, ['ima.'], `hashes ${i}`));
    } catch (error) {
      expectTyped(error, ['ima.'], `IMA input ${i}`);
    }
  }
});
