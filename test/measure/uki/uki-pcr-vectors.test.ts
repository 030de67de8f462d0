import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { HashName } from '../../../src/core/hash.ts';
import { fromHex, toHex } from '../../../src/core/hex.ts';
import { actionEvent, CALLING_EFI_APPLICATION, replayEvents, separatorEvent, type PredictedEvent } from '../../../src/measure/uki/pcr-events.ts';
import { pcr11Events, utf16leWithNul } from '../../../src/measure/uki/predict.ts';
import { NEWEST_STUB, OLDEST_STUB, stubModel } from '../../../src/measure/uki/stub-versions.ts';
import { fixturesAvailable, fixtureTest, fixtureText } from '../../support/fixtures.ts';

/** ../shared/fixtures/measure/uki-pcr-vectors.json: systemd-measure (TEST-70) and flashbots/measured-boot facts. */
const vectors = fixturesAvailable() ? JSON.parse(fixtureText('measure/uki-pcr-vectors.json')) : undefined;

const BANKS: Record<string, HashName> = { sha1: 'SHA-1', sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

function given(pcr: number, description: string, digest: string): PredictedEvent {
  return { pcr, type: 'given', description, by: 'firmware', digests: { 'SHA-256': fromHex(digest) } };
}

test('systemd-measure vectors: PCR 11 in every bank, with and without phases, all 14 sections', fixtureTest(), async () => {
  const algorithm = vectors.systemd_measure.algorithm;
  // The canonical order Sigil uses for the newest stub is the one recorded from uki.h.
  assert.deepEqual(stubModel(258).sections, algorithm.section_order);
  let checked = 0;
  for (const c of vectors.systemd_measure.cases) {
    const sections = new Map<string, Uint8Array>();
    for (const s of c.inputs.sections) sections.set(s.name, fromHex(s.content_hex));
    for (const [label, expected] of Object.entries(c.expected)) {
      if (label === 'pcr') continue;
      const bank = BANKS[label];
      const events = await pcr11Events(sections, stubModel(NEWEST_STUB), [bank], c.inputs.phase_words_measured);
      assert.equal(toHex(await replayEvents(bank, events, 11)), expected, `${c.id} ${label}`);
      checked++;
    }
  }
  assert.equal(checked, 9);
});

test('systemd-measure: measurement order is the enum order, not the order sections are given in', fixtureTest(), async () => {
  const all = vectors.systemd_measure.cases.find((c: { id: string }) => c.id === 'systemd-measure.all_sections_phase_foo_sha1');
  const reversed = new Map<string, Uint8Array>([...all.inputs.sections].reverse().map((s: { name: string; content_hex: string }) => [s.name, fromHex(s.content_hex)]));
  const events = await pcr11Events(reversed, stubModel(258), ['SHA-1'], ['foo']);
  assert.equal(toHex(await replayEvents('SHA-1', events, 11)), all.expected.sha1);
  assert.deepEqual(events.filter((_, i) => i % 2 === 0).map((e) => e.description).slice(0, 5), ['.linux', '.osrel', '.cmdline', '.initrd', '.ucode']);
  assert.ok(!events.some((e) => e.description === '.pcrsig'));
});

test('flashbots extend steps: separator and "Calling EFI Application" digests and PCR values', fixtureTest(), async () => {
  const c = vectors.flashbots_measured_boot.cases.find((x: { id: string }) => x.id === 'measured-boot.extend_pcr');
  const separator = await separatorEvent(['SHA-256'], 4);
  const action = await actionEvent(['SHA-256'], 4, CALLING_EFI_APPLICATION);
  assert.equal(toHex(separator.digests['SHA-256']!), c.steps[0].digest);
  assert.equal(toHex(action.digests['SHA-256']!), c.steps[1].digest);
  assert.equal(toHex(await replayEvents('SHA-256', [separator], 4)), c.steps[0].pcr_after);
  assert.equal(toHex(await replayEvents('SHA-256', [separator, action], 4)), c.steps[1].pcr_after);
});

test('flashbots PCR 4: action, separator, then each boot stage Authenticode digest', fixtureTest(), async () => {
  const c = vectors.flashbots_measured_boot.cases.find((x: { id: string }) => x.id === 'measured-boot.predict_pcr4');
  const events = [await actionEvent(['SHA-256'], 4, CALLING_EFI_APPLICATION), await separatorEvent(['SHA-256'], 4)];
  for (const stage of c.inputs.boot_stages) events.push(given(4, stage.name, stage.authenticode_sha256));
  assert.equal(toHex(await replayEvents('SHA-256', events, 4)), c.expected);
});

test('flashbots PCR 9: UTF-16LE command line with its NUL, then the initrd digest', fixtureTest(), async () => {
  const c = vectors.flashbots_measured_boot.cases.find((x: { id: string }) => x.id === 'measured-boot.predict_pcr9');
  const loadOptions = utf16leWithNul('console=tty0');
  assert.equal(toHex(loadOptions), c.inputs.cmdline_utf16le_hex);
  const { createHash } = await import('node:crypto');
  const events = [given(9, 'LoadOptions', createHash('sha256').update(loadOptions).digest('hex')), given(9, 'initrd', c.inputs.initrd_sha256)];
  assert.equal(toHex(await replayEvents('SHA-256', events, 9)), c.expected);
});

test('flashbots PCR 11 (synthetic): name with NUL, then data digest, per measured section', fixtureTest(), async () => {
  const c = vectors.flashbots_measured_boot.cases.find((x: { id: string }) => x.id === 'measured-boot.predict_pcr11_synthetic');
  const { createHash } = await import('node:crypto');
  const events: PredictedEvent[] = [];
  for (const s of c.inputs.sections) {
    if (!s.measure) continue;
    const nameDigest = createHash('sha256').update(`${s.name}\0`).digest('hex');
    assert.equal(nameDigest, c.intermediate[`sha256("${s.name}\\0")`]);
    events.push(given(11, s.name, nameDigest), given(11, s.name, s.data_sha256));
  }
  assert.equal(toHex(await replayEvents('SHA-256', events, 11)), c.expected);
});

test('.pcrpkey, never .pcrkey: no stub version measures the misspelt section flashbots measures', fixtureTest(), () => {
  const facts = vectors.flashbots_measured_boot.cases.find((x: { id: string }) => x.id === 'measured-boot.uki_fixture_facts');
  assert.ok(facts.sections.some((s: [string]) => s[0] === '.pcrkey'));
  for (let version = OLDEST_STUB; version <= NEWEST_STUB; version++) {
    const model = stubModel(version);
    assert.ok(model.sections.includes('.pcrpkey'), `v${version} knows .pcrpkey`);
    assert.ok(!model.sections.includes('.pcrkey'), `v${version} does not know .pcrkey`);
  }
  // Per-version lists: 252 has no .uname, 253 adds it, 254 .sbat, 256 .ucode, 257 .profile/.dtbauto/.hwids.
  assert.deepEqual(stubModel(252).sections, ['.linux', '.osrel', '.cmdline', '.initrd', '.splash', '.dtb', '.pcrsig', '.pcrpkey']);
  assert.ok(stubModel(253).sections.includes('.uname') && !stubModel(253).sections.includes('.sbat'));
  assert.ok(stubModel(254).sections.includes('.sbat') && !stubModel(254).sections.includes('.ucode'));
  assert.equal(stubModel(256).sections[4], '.ucode');
  assert.deepEqual(stubModel(257).sections.slice(-3), ['.profile', '.dtbauto', '.hwids']);
});
