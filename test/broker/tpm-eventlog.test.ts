/**
 * The broker's TPM kind verifies the whole TPM bundle: quotes, event-log replay against the quoted
 * PCRs, boot state and quirks, with the AK pinned to the enrolled one. Real evidence: the GCE COS 85
 * attestation (three quotes, SHA-1/256/384 PCRs, the firmware event log; nonce 9009), enrolled by
 * an administrator, verified through /v1/verify with the time pinned, against policies over PCRs
 * and event-log claims (Secure Boot, EFI applications, kernel command line).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { toBase64, toHex } from '../../src/core/hex.ts';
import { parseTcgEventLog } from '../../src/eventlog/tcg-log.ts';
import { fixture, fixturesAvailable, fixtureTest } from '../support/fixtures.ts';
import { GCE_AK_NAME, GCE_AT, gceBundle } from '../evidence/tpm/gce-bundle.ts';
import { startTestBroker, type TestBroker } from './support/harness.ts';

interface Answer {
  status: string;
  claims: { akName?: string; eventLog?: { secureBoot: boolean; efiApplications: string[]; kernelCmdline: string; verifiedPcrs: number[] }; quirks?: string[] };
  trace: { rule: string; result: string; actual: unknown }[];
}

const PCR0 = '0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf';
const PCR7 = '3365d7fa2b024c852913c06e04ffbfa6ea5289f743bbf1a76f7ffdf21ed84793';
const at = GCE_AT.toISOString();

/** The bundle as broker evidence: no AK material (the enrolled AK is used), quotes in hex as `sigil tpm quote --json` prints them. */
function evidence(options: { eventLog?: boolean } = {}): Record<string, unknown> {
  const { akCertificate: _c, akCertificateChain: _cc, akPublic: _ak, kind: _k, ...rest } = gceBundle(options);
  return rest;
}

let h: TestBroker;
const failed = (a: Answer) => a.trace.filter((t) => t.result === 'fail').map((t) => t.rule);
const verify = (policyId: string, body: Record<string, unknown> = evidence()) =>
  h.admin.call<Answer>('POST', '/v1/verify', { tenant: 'gce', kind: 'tpm', deviceId: 'cos85', evidence: body, policyId, expectedBinding: '9009', at });

before(async () => {
  if (!fixturesAvailable()) return;
  h = await startTestBroker();
  await h.admin.call('PUT', '/v1/admin/tenants/gce', {});
  // The administrator vouches for the AK (as after enrolment); its name is what verify pins.
  const device = await h.admin.call<{ material: { akName: string } }>('PUT', '/v1/admin/tenants/gce/devices/cos85', { kind: 'tpm', material: { akPublic: toHex(fixture('tpm/gotpmtools_gce_cos85_ak_pub.tpmt_public.bin')) } });
  assert.equal(device.material.akName, GCE_AK_NAME);
  await h.admin.call('PUT', '/v1/admin/tenants/gce/policies/pcrs', { kind: 'tpm', referenceValues: { pcrs: { sha256: { 0: [PCR0], 7: [PCR7] } }, allowedQuirks: ['shim-authority-digest-short'] } });
});

after(async () => h?.close());

test('GCE COS 85 through the broker: quotes, event log replay and boot state; quirks named in the trace', fixtureTest(), async () => {
  const pcrsOnly = await verify('pcrs');
  assert.equal(pcrsOnly.status, 'affirming', JSON.stringify(failed(pcrsOnly)));
  assert.equal(pcrsOnly.claims.akName, GCE_AK_NAME);
  const log = pcrsOnly.claims.eventLog!;
  assert.deepEqual(log.verifiedPcrs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(log.secureBoot, true);
  assert.match(log.kernelCmdline, /root_hexdigest=795872ee03859c10dfcc4d67b4b96c85094b340c2d8784783abc2fa12a6ed671/);
  assert.deepEqual(pcrsOnly.claims.quirks, ['shim-authority-digest-short']);
  assert.deepEqual(
    pcrsOnly.trace.filter((t) => t.rule.startsWith('eventlog.quirk')).map((t) => [t.rule, t.result]),
    [['eventlog.quirk:shim-authority-digest-short', 'pass']],
  );
  // Without accepting the quirk, the same evidence is only a warning.
  await h.admin.call('PUT', '/v1/admin/tenants/gce/policies/strict', { kind: 'tpm', referenceValues: { pcrs: { sha256: { 0: [PCR0] } } } });
  const strict = await verify('strict');
  assert.equal(strict.status, 'warning');
  assert.deepEqual(strict.trace.filter((t) => t.result === 'warn').map((t) => t.rule), ['eventlog.quirk:shim-authority-digest-short']);
});

test('event-log policies: Secure Boot, allowed EFI applications and kernel command line; one changed value names its rule', fixtureTest(), async () => {
  const claims = (await verify('pcrs')).claims.eventLog!;
  const bootPolicy = {
    pcrs: { sha256: { 7: [PCR7] } },
    requireEventLog: true,
    requireSecureBoot: true,
    allowedEfiApplications: claims.efiApplications,
    allowedKernelCmdlines: [claims.kernelCmdline],
    allowedQuirks: ['shim-authority-digest-short'],
  };
  await h.admin.call('PUT', '/v1/admin/tenants/gce/policies/boot', { kind: 'tpm', referenceValues: bootPolicy });
  const good = await verify('boot');
  assert.equal(good.status, 'affirming');
  assert.deepEqual(
    good.trace.filter((t) => t.rule.startsWith('boot.')).map((t) => [t.rule, t.result]),
    [['boot.secure-boot', 'pass'], ['boot.efi-applications', 'pass'], ['boot.kernel-cmdline', 'pass']],
  );
  await h.admin.call('PUT', '/v1/admin/tenants/gce/policies/cmdline', { kind: 'tpm', referenceValues: { ...bootPolicy, allowedKernelCmdlines: [claims.kernelCmdline.replace('ro ', 'rw ')] } });
  assert.deepEqual(failed(await verify('cmdline')), ['boot.kernel-cmdline']);
  await h.admin.call('PUT', '/v1/admin/tenants/gce/policies/apps', { kind: 'tpm', referenceValues: { ...bootPolicy, allowedEfiApplications: claims.efiApplications.slice(1) } });
  const apps = await verify('apps');
  assert.deepEqual(failed(apps), ['boot.efi-applications']);
  assert.deepEqual(apps.trace.find((t) => t.rule === 'boot.efi-applications')!.actual, { unknown: [claims.efiApplications[0]] });
  // The same quotes without their event log: nothing proves Secure Boot or what was loaded.
  const noLog = await verify('boot', evidence({ eventLog: false }));
  assert.deepEqual(failed(noLog), ['eventlog.present', 'boot.secure-boot', 'boot.efi-applications', 'boot.kernel-cmdline']);
});

test('an event log that does not replay to the quotes, or another AK than the enrolled one, fails verification by name', fixtureTest(), async () => {
  const log = fixture('tpm/gotpmtools_gce_cos85_eventlog.bin');
  const grub = parseTcgEventLog(log).events.find((e) => e.pcr === 8)!;
  log[grub.offset + 12 + 2] ^= 0x01;
  const tampered = await verify('pcrs', { ...evidence(), eventLog: toBase64(log) });
  assert.deepEqual(failed(tampered), ['evidence.verify']);
  assert.equal(tampered.trace.find((t) => t.rule === 'evidence.verify')!.actual, 'tpm.eventlog_replay_mismatch');
  const ak = fixture('tpm/gotpmtools_gce_cos85_ak_pub.tpmt_public.bin');
  ak[ak.length - 1] ^= 1;
  const foreign = await verify('pcrs', { ...evidence(), akPublic: toHex(ak) });
  assert.equal(foreign.trace.find((t) => t.rule === 'evidence.verify')!.actual, 'tpm.ak_untrusted');
  const rebound = await h.admin.call<Answer>('POST', '/v1/verify', { tenant: 'gce', kind: 'tpm', deviceId: 'cos85', evidence: evidence(), policyId: 'pcrs', expectedBinding: '900a', at });
  assert.deepEqual(failed(rebound), ['binding.runtime-key']);
});

test('TPM reference values are checked when stored: empty lists, unknown fields and quirks are refused', fixtureTest(), async () => {
  for (const referenceValues of [{ pcrs: { sha256: { 7: [] } } }, { allowedEfiApplications: [] }, { secureBoot: true }, { allowedQuirks: ['made-up'] }, { requireSecureBoot: 'yes' }]) {
    await assert.rejects(h.admin.call('PUT', '/v1/admin/tenants/gce/policies/bad', { kind: 'tpm', referenceValues }), (e: Error & { code?: string }) => e.code === 'policy.reference_values_invalid', JSON.stringify(referenceValues));
  }
  // A policy of requirements only (no reference value for what ran) fails closed at appraisal.
  await h.admin.call('PUT', '/v1/admin/tenants/gce/policies/requirements', { kind: 'tpm', referenceValues: { requireSecureBoot: true, allowedQuirks: ['shim-authority-digest-short'] } });
  assert.deepEqual(failed(await verify('requirements')), ['tpm.reference-values']);
});
