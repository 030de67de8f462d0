import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { concatBytes, utf8 } from '../../src/core/bytes.ts';
import { isSigilError } from '../../src/core/errors.ts';
import { digest } from '../../src/core/hash.ts';
import { fromHex, toHex } from '../../src/core/hex.ts';
import { encodeImaAscii, encodeImaBinary, parseImaLog, type ImaEntry } from '../../src/eventlog/ima/ima-log.ts';
import { bootAggregate, replayIma, verifyImaAgainstQuote, verifyTemplateHashes } from '../../src/eventlog/ima/ima-replay.ts';
import { templateHashInput } from '../../src/eventlog/ima/templates.ts';
import type { PcrBanks } from '../../src/eventlog/replay.ts';
import { startup } from '../../src/tpm/commands/startup.ts';
import { HASH_ALGS, TPM_ALG, TPM_SU } from '../../src/tpm/constants.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../src/tpm/tpm.ts';

/**
 * IMA: template hashes as the kernel computes them (checked on a published real list line), both
 * list formats, and replay into PCR 10 checked against a real TPM (swtpm) extended the way Linux
 * >= 5.8 does (a hash per bank) and the way older kernels did (SHA-1 zero-padded).
 */
let swtpm: SwtpmInstance;
before(async () => {
  swtpm = await startSwtpm({ pcrBanks: ['sha1', 'sha256'] });
});
after(async () => {
  await swtpm?.stop();
});

type Entry = Pick<ImaEntry, 'pcr' | 'templateName' | 'fields' | 'templateHash'>;
const nul = (text: string) => utf8.encode(`${text}\0`);
const dng = (alg: string, d: Uint8Array) => concatBytes(utf8.encode(`${alg}:\0`), d);

async function entry(templateName: string, fields: Uint8Array[], pcr = 10): Promise<Entry> {
  return { pcr, templateName, fields, templateHash: await digest('SHA-1', templateHashInput(templateName, fields)) };
}

function violation(path: string): Entry {
  return { pcr: 10, templateName: 'ima-ng', fields: [dng('sha256', new Uint8Array(32)), nul(path)], templateHash: new Uint8Array(20) };
}

/** Power-cycle swtpm, extend PCRs 0-9 like firmware, return a TPM ready for IMA. */
async function freshTpm(): Promise<Tpm> {
  await swtpm.control.init();
  const tpm = new Tpm(swtpm.transport());
  await tpm.client.run(startup(TPM_SU.CLEAR));
  for (let pcr = 0; pcr < 10; pcr++) await tpm.extendEvent(pcr, utf8.encode(`firmware measurement ${pcr}`));
  return tpm;
}

/** Extend entries as the kernel does: per-bank template hash, or (legacy) padded SHA-1. */
async function extendIma(tpm: Tpm, entries: Entry[], legacy = false): Promise<void> {
  for (const e of entries) {
    const sha256 = e.templateHash.every((b) => b === 0)
      ? new Uint8Array(32).fill(0xff)
      : legacy
        ? concatBytes(e.templateHash, new Uint8Array(12))
        : await digest('SHA-256', templateHashInput(e.templateName, e.fields));
    const sha1 = e.templateHash.every((b) => b === 0) ? new Uint8Array(20).fill(0xff) : e.templateHash;
    await tpm.extend(e.pcr, [
      { hashAlg: TPM_ALG.SHA1, digest: sha1 },
      { hashAlg: TPM_ALG.SHA256, digest: sha256 },
    ]);
  }
}

async function quoted(tpm: Tpm): Promise<PcrBanks> {
  const out: PcrBanks = new Map();
  for (const alg of [TPM_ALG.SHA1, TPM_ALG.SHA256]) out.set(alg, await tpm.readPcrs(alg, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
  return out;
}

test('template hash of a published real ascii_runtime_measurements line (ima-ng, SHA-256 file digest)', async () => {
  // From a public IMA verification guide (teekit "ratsnest" documentation), captured on a real VM.
  const line = '10 bb24b135e1c911c97aad8f1c1863efc08cd44c11 ima-ng sha256:d41dd4adacf5a35df426461dd8a92d7bdd5ba29bb61a1c3531bec0ada386f8dd /usr/lib/x86_64-linux-gnu/libresolv.so.2\n';
  const log = parseImaLog(utf8.encode(line));
  assert.equal(log.format, 'ascii');
  assert.equal(log.templateHashAlg, TPM_ALG.SHA1);
  assert.deepEqual(log.entries[0].details, { fileDigest: { type: undefined, alg: 'sha256', digest: 'd41dd4adacf5a35df426461dd8a92d7bdd5ba29bb61a1c3531bec0ada386f8dd' }, path: '/usr/lib/x86_64-linux-gnu/libresolv.so.2' });
  await verifyTemplateHashes(log);
  assert.equal(encodeImaAscii(log), line);
  const forged = parseImaLog(utf8.encode(line.replace('libresolv', 'libresolX')));
  await assert.rejects(verifyTemplateHashes(forged), (e) => isSigilError(e, 'ima.template_hash_mismatch') && e.details.index === 0);
});

test('binary and ASCII lists carry the same entries (ima-ng, ima-sig with and without signature, ima, violation)', async () => {
  const entries = [
    await entry('ima-ng', [dng('sha256', new Uint8Array(32).fill(1)), nul('boot_aggregate')]),
    await entry('ima-sig', [dng('sha256', new Uint8Array(32).fill(2)), nul('/usr/bin/has a space'), fromHex('030204aabbccdd0002ff')]),
    await entry('ima-sig', [dng('sha512', new Uint8Array(64).fill(3)), nul('/usr/bin/unsigned'), new Uint8Array(0)]),
    await entry('ima', [new Uint8Array(20).fill(4), utf8.encode('/legacy')]),
    await entry('ima-ngv2', [concatBytes(utf8.encode('verity:sha256:\0'), new Uint8Array(32).fill(5)), nul('/verity-file')]),
    violation('/tmp/open-writer'),
  ];
  const binary = parseImaLog(encodeImaBinary(entries));
  assert.equal(binary.format, 'binary');
  await verifyTemplateHashes(binary);
  const ascii = parseImaLog(utf8.encode(encodeImaAscii(binary)));
  assert.equal(ascii.format, 'ascii');
  assert.deepEqual(ascii.entries, binary.entries);
  assert.deepEqual(binary.entries.map((e) => e.details.path), ['boot_aggregate', '/usr/bin/has a space', '/usr/bin/unsigned', '/legacy', '/verity-file', '/tmp/open-writer']);
  assert.equal(binary.entries[1].details.signature, '030204aabbccdd0002ff');
  assert.equal(binary.entries[2].details.signature, undefined);
  assert.deepEqual(binary.entries[4].details.fileDigest, { type: 'verity', alg: 'sha256', digest: '05'.repeat(32) });
  assert.deepEqual(binary.entries.map((e) => e.violation), [false, false, false, false, false, true]);
  assert.match(encodeImaAscii(binary).split('\n')[2], / \/usr\/bin\/unsigned $/, 'an empty signature field leaves a trailing space, as the kernel prints it');
});

test('replay into PCR 10 matches swtpm extended the Linux >= 5.8 way; boot_aggregate over PCRs 0-9; log grown after the quote', async () => {
  const tpm = await freshTpm();
  try {
    const firmware = await tpm.readPcrs(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const aggregate = (await bootAggregate(TPM_ALG.SHA256, firmware, 10))!;
    const entries = [
      await entry('ima-ng', [dng('sha256', aggregate), nul('boot_aggregate')]),
      await entry('ima-sig', [dng('sha256', new Uint8Array(32).fill(9)), nul('/usr/bin/bash'), fromHex('0302040102')]),
      violation('/var/log/open-for-write'),
      await entry('ima-ng', [dng('sha256', new Uint8Array(32).fill(8)), nul('/usr/lib/systemd/systemd')]),
    ];
    await extendIma(tpm, entries);
    const pcrs = await quoted(tpm);
    const later = await entry('ima-ng', [dng('sha256', new Uint8Array(32).fill(7)), nul('/usr/bin/after-the-quote')]);
    const log = parseImaLog(encodeImaBinary([...entries, later]));
    const result = await verifyImaAgainstQuote(log, pcrs);
    assert.equal(result.verifiedEntries, 4);
    assert.equal(result.totalEntries, 5);
    assert.deepEqual(result.bootAggregate, { digest: toHex(aggregate), alg: 'sha256', matches: 'pcrs-0-9' });
    assert.deepEqual(result.files.map((f) => [f.path, f.violation, f.signature ?? null]), [
      ['boot_aggregate', false, null],
      ['/usr/bin/bash', false, '0302040102'],
      ['/var/log/open-for-write', true, null],
      ['/usr/lib/systemd/systemd', false, null],
    ]);
    assert.deepEqual(result.quirks, []);
    const replayed = await replayIma(parseImaLog(encodeImaBinary(entries)), [TPM_ALG.SHA1, TPM_ALG.SHA256]);
    for (const alg of [TPM_ALG.SHA1, TPM_ALG.SHA256]) assert.equal(toHex(replayed.get(alg)!.get(10)!), toHex(pcrs.get(alg)!.get(10)!), HASH_ALGS[alg].label);
    // A dropped entry or a quote that covers nothing of the log is refused.
    const dropped = parseImaLog(encodeImaBinary([entries[0], entries[1], entries[3]]));
    await assert.rejects(verifyImaAgainstQuote(dropped, pcrs), (e) => isSigilError(e, 'ima.replay_mismatch'));
    await assert.rejects(verifyImaAgainstQuote(log, new Map([[TPM_ALG.SHA256, new Map([[0, new Uint8Array(32)]])]])), (e) => isSigilError(e, 'ima.pcr_not_quoted'));
  } finally {
    await tpm.close();
  }
});

test('kernels before 5.8 (SHA-1 zero-padded into SHA-256): refused unless the quirk is enabled', async () => {
  const tpm = await freshTpm();
  try {
    const firmware = await tpm.readPcrs(TPM_ALG.SHA1, [0, 1, 2, 3, 4, 5, 6, 7]);
    const entries = [
      await entry('ima-ng', [dng('sha1', (await bootAggregate(TPM_ALG.SHA1, firmware, 8))!), nul('boot_aggregate')]),
      await entry('ima-ng', [dng('sha1', new Uint8Array(20).fill(1)), nul('/sbin/init')]),
      violation('/tmp/x'),
    ];
    await extendIma(tpm, entries, true);
    const pcrs = await quoted(tpm);
    const log = parseImaLog(encodeImaBinary(entries));
    await assert.rejects(verifyImaAgainstQuote(log, pcrs), (e) => isSigilError(e, 'eventlog.quirk_required') && e.details.quirk === 'ima-sha1-padded-template-hash');
    const result = await verifyImaAgainstQuote(log, pcrs, { quirks: ['ima-sha1-padded-template-hash'] });
    assert.equal(result.verifiedEntries, 3);
    assert.deepEqual(result.quirks.map((q) => q.id), ['ima-sha1-padded-template-hash']);
    assert.equal(result.bootAggregate?.matches, 'pcrs-0-7');
    // Only the SHA-1 bank quoted: no padding question at all.
    assert.equal((await verifyImaAgainstQuote(log, new Map([[TPM_ALG.SHA1, pcrs.get(TPM_ALG.SHA1)!]]))).verifiedEntries, 3);
  } finally {
    await tpm.close();
  }
});

test('a binary list read from binary_runtime_measurements_sha256 (SHA-256 template hashes)', async () => {
  const fields = [dng('sha256', new Uint8Array(32).fill(6)), nul('/bin/sh')];
  const bytes = encodeImaBinary([{ pcr: 10, templateName: 'ima-ng', fields, templateHash: await digest('SHA-256', templateHashInput('ima-ng', fields)) }]);
  const log = parseImaLog(bytes, { templateHashAlg: TPM_ALG.SHA256 });
  await verifyTemplateHashes(log);
  const replayed = await replayIma(log, [TPM_ALG.SHA256]);
  assert.equal(toHex(replayed.get(TPM_ALG.SHA256)!.get(10)!), toHex(await digest('SHA-256', new Uint8Array(32), log.entries[0].templateHash)));
  assert.throws(() => parseImaLog(bytes), (e) => isSigilError(e) && e.code.startsWith('ima.'), 'read as a SHA-1 list it does not parse');
});
