import { test } from 'node:test';
import assert from 'node:assert/strict';
import { concatBytes, utf8 } from '../../src/core/bytes.ts';
import { isSigilError } from '../../src/core/errors.ts';
import { digest } from '../../src/core/hash.ts';
import { EV } from '../../src/eventlog/event-types.ts';
import { QUIRKS, quirkDefinition, quirkRequired } from '../../src/eventlog/quirks.ts';
import { compareWithQuoted, extend, replayTcgLog } from '../../src/eventlog/replay.ts';
import { parseTcgEventLog } from '../../src/eventlog/tcg-log.ts';
import { writeCryptoAgileLog } from '../../src/eventlog/tcg-writer.ts';
import { HASH_ALGS, TPM_ALG } from '../../src/tpm/constants.ts';
import { fixture, fixtureTest } from '../support/fixtures.ts';
import { separators } from './builders.ts';

const BANKS = [TPM_ALG.SHA1, TPM_ALG.SHA256];

test('the quirk registry documents every quirk: id, firmware, effect, the fixture that needs it', () => {
  assert.equal(new Set(QUIRKS.map((q) => q.id)).size, QUIRKS.length);
  assert.deepEqual(QUIRKS.map((q) => q.id).sort(), [
    'boot-variable-whole-event-digest',
    'exit-boot-services-unlogged',
    'ima-sha1-padded-template-hash',
    'no-action-nonzero-digest',
    'shim-authority-digest-short',
    'trailing-zero-padding',
  ]);
  for (const q of QUIRKS) {
    assert.ok(q.firmware.length > 40 && q.effect.length > 40 && q.fixture.length > 10, q.id);
    assert.equal(quirkDefinition(q.id), q);
  }
  const error = quirkRequired('trailing-zero-padding', 'zeros');
  assert.equal(error.code, 'eventlog.quirk_required');
  assert.match(error.message, /"trailing-zero-padding"/);
});

test('trailing zero padding: refused by default, skipped and reported when enabled', fixtureTest(), async () => {
  const original = fixture('tpm/goeventlog_cos101_gce_amd_sev.bin');
  const padded = concatBytes(original, new Uint8Array(4096));
  assert.throws(() => parseTcgEventLog(padded), (e) => isSigilError(e, 'eventlog.quirk_required') && e.details.quirk === 'trailing-zero-padding' && e.details.length === 4096);
  const log = parseTcgEventLog(padded, { quirks: ['trailing-zero-padding'] });
  assert.equal(log.events.length, parseTcgEventLog(original).events.length);
  assert.deepEqual(log.quirks, [{ id: 'trailing-zero-padding', detail: '4096 zero bytes after event 48' }]);
  assert.deepEqual((await replayTcgLog(log)).banks, (await replayTcgLog(parseTcgEventLog(original))).banks);
});

test('EV_NO_ACTION with non-zero digests: refused by default, accepted (never extended) when enabled', async () => {
  const noAction = { pcr: 0, type: EV.NO_ACTION, data: utf8.encode('vendor data'), digests: BANKS.map((alg) => ({ alg, digest: new Uint8Array(HASH_ALGS[alg].size).fill(1) })) };
  const bytes = await writeCryptoAgileLog([noAction, ...separators()], BANKS);
  assert.throws(() => parseTcgEventLog(bytes), (e) => isSigilError(e, 'eventlog.quirk_required') && e.details.quirk === 'no-action-nonzero-digest');
  const log = parseTcgEventLog(bytes, { quirks: ['no-action-nonzero-digest'] });
  assert.deepEqual(log.quirks.map((q) => q.id), ['no-action-nonzero-digest']);
  const clean = parseTcgEventLog(await writeCryptoAgileLog(separators(), BANKS));
  assert.deepEqual((await replayTcgLog(log)).banks, (await replayTcgLog(clean)).banks);
});

test('ExitBootServices missing from the log: PCR 5 mismatches unless the quirk is enabled, then matches', async () => {
  const log = parseTcgEventLog(await writeCryptoAgileLog(separators(), BANKS));
  const replay = await replayTcgLog(log);
  // The TPM saw the two EBS actions after the log was copied.
  const quoted = new Map<number, Map<number, Uint8Array>>();
  for (const alg of BANKS) {
    let pcr5 = replay.banks.get(alg)!.get(5)!;
    for (const text of ['Exit Boot Services Invocation', 'Exit Boot Services Returned with Success']) pcr5 = await extend(alg, pcr5, await digest(HASH_ALGS[alg].name, utf8.encode(text)));
    quoted.set(alg, new Map([...replay.banks.get(alg)!, [5, pcr5]]));
  }
  const strict = await compareWithQuoted(replay, quoted);
  assert.deepEqual(strict.mismatches.map((m) => `${m.bank}:${m.pcr}`), ['sha1:5', 'sha256:5']);
  const lenient = await compareWithQuoted(replay, quoted, { quirks: ['exit-boot-services-unlogged'] });
  assert.deepEqual(lenient.mismatches, []);
  assert.deepEqual(lenient.quirks.map((q) => q.detail), [
    'sha1 PCR 5 matches after appending "Exit Boot Services Invocation", "Exit Boot Services Returned with Success"',
    'sha256 PCR 5 matches after appending "Exit Boot Services Invocation", "Exit Boot Services Returned with Success"',
  ]);
  // The quirk does not excuse any other difference.
  quoted.get(TPM_ALG.SHA256)!.set(5, new Uint8Array(32).fill(9));
  const other = await compareWithQuoted(replay, quoted, { quirks: ['exit-boot-services-unlogged'] });
  assert.deepEqual(other.mismatches.map((m) => `${m.bank}:${m.pcr}`), ['sha256:5']);
});

test('ExitBootServices events cut out of a real log are found again by the quirk', fixtureTest(), async () => {
  const full = parseTcgEventLog(fixture('tpm/goeventlog_rhel8_gce_uefi_sb.bin'));
  const quoted = (await replayTcgLog(full)).banks;
  const cut = { ...full, events: full.events.filter((e) => !(e.pcr === 5 && e.type === EV.EFI_ACTION)) };
  assert.equal(cut.events.length, full.events.length - 2);
  const replay = await replayTcgLog(cut);
  assert.equal((await compareWithQuoted(replay, quoted)).mismatches.length, 3);
  const result = await compareWithQuoted(replay, quoted, { quirks: ['exit-boot-services-unlogged'] });
  assert.deepEqual(result.mismatches, []);
  assert.equal(result.quirks.length, 3);
});
