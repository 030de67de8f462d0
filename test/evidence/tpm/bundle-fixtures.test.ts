import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSigilError } from '../../../src/core/errors.ts';
import { toBase64, toHex } from '../../../src/core/hex.ts';
import { parseTpmBundle } from '../../../src/evidence/tpm/bundle.ts';
import { appraiseTpmBundle } from '../../../src/evidence/tpm/bundle-appraise.ts';
import { verifyTpmBundle, type TpmBundleTrust } from '../../../src/evidence/tpm/bundle-verify.ts';
import { checkTpmBundlePolicy } from '../../../src/evidence/tpm/bundle-policy.ts';
import { parseTcgEventLog } from '../../../src/eventlog/tcg-log.ts';
import { fixture, fixtureTest } from '../../support/fixtures.ts';
import { GCE_AK_NAME, GCE_AT, GCE_NONCE, gceBundle, gceIntermediate, gceQuotes, gceRoot } from './gce-bundle.ts';

/**
 * The GCE COS 85 attestation, the way google/go-tpm-tools server/verify_test.go checks it
 * (TestVerifyAttestationWithCerts, TestVerifyAutomaticallyUsesIntermediatesInAttestation): nonce
 * 9009, AK certificate chained to the GCE EK root through intermediate 2, all three quotes, PCR
 * digests, and the event log replayed against the quoted PCRs.
 */
const trust = (extra: Partial<TpmBundleTrust> = {}): TpmBundleTrust => ({ nonce: GCE_NONCE, akRoots: [gceRoot()], quirks: ['shim-authority-digest-short'], ...extra });

test('GCE COS 85: verifies (AK certificate chain, three quotes, event log) with the stated values', fixtureTest(), async () => {
  const evidence = parseTpmBundle(JSON.stringify(gceBundle()));
  assert.equal(evidence.quotes.length, 3);
  const sha256Quote = evidence.quotes[1];
  assert.equal(toHex(sha256Quote.attest.attested.pcrDigest), '048937cbaaf28af85a5b0c0997e725097a0d94e05fcda104a82ee3fb6b2e1808');
  assert.deepEqual(
    evidence.quotes.map((q) => q.attest.attested.pcrSelect.map((s) => [s.hash, s.pcrs.length])),
    [[[0x0004, 24]], [[0x000b, 24]], [[0x000c, 24]]],
  );
  const verified = await verifyTpmBundle(evidence, trust(), GCE_AT);
  const { claims } = verified;
  assert.equal(verified.kind, 'tpm');
  assert.equal(claims.ak.name, GCE_AK_NAME);
  assert.equal(claims.ak.trustedBy, 'ak-certificate');
  assert.match(claims.ak.certificate!.issuer, /CN=tpm_ek_v1_cloud_host-signer-0-2020-10-22T14:02:08-07:00/);
  assert.deepEqual(claims.quotes.map((q) => [q.nonce, q.signatureScheme, q.signatureHash, q.firmwareVersion]), Array(3).fill(['9009', 'RSASSA', 'sha256', '2016051100162800']));
  assert.equal(claims.pcrs.sha256[0], '0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf');
  assert.equal(claims.pcrs.sha256[4], 'd690bdac2aa8b73a1d718cb91990df07d0747b07ea57b3b2d0f0d511f0d90491');
  assert.equal(claims.pcrs.sha256[7], '3365d7fa2b024c852913c06e04ffbfa6ea5289f743bbf1a76f7ffdf21ed84793');
  assert.equal(claims.pcrs.sha256[8], '9e9b6511ae6ad443aae4c7bf998ffffbcd271c874f1efab9d692f129eb6e6c18');
  assert.equal(claims.pcrs.sha256[9], 'e01c8cf808763422c5ede2cdb34595b92bd7d06b8bbd6014b54d2e95b14b0963');
  for (const pcr of [17, 18, 19, 20, 21, 22]) assert.equal(claims.pcrs.sha256[pcr], 'ff'.repeat(32));
  assert.deepEqual(Object.keys(claims.pcrs), ['sha1', 'sha256', 'sha384']);
  const log = claims.eventLog!;
  assert.deepEqual(log.verifiedPcrs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(log.extendedAfterBoot, []);
  assert.equal(log.comparisons.filter((c) => c.status === 'match').length, 30, 'PCRs 0-9 of three banks');
  assert.equal(log.bootState.bank, 'sha256');
  assert.equal(log.bootState.secureBoot, true);
  assert.match(log.bootState.kernelCmdline!.text!, /root_hexdigest=795872ee03859c10dfcc4d67b4b96c85094b340c2d8784783abc2fa12a6ed671/);
  assert.deepEqual(claims.quirks.map((q) => q.id), ['shim-authority-digest-short', 'shim-authority-digest-short']);
  assert.equal(JSON.parse(JSON.stringify(claims)).ak.name, GCE_AK_NAME, 'claims are JSON-safe');
});

test('GCE COS 85: the intermediate may come from the verifier instead of the bundle', fixtureTest(), async () => {
  const evidence = parseTpmBundle(gceBundle({ intermediateInBundle: false }));
  await assert.rejects(verifyTpmBundle(evidence, trust(), GCE_AT), (e) => isSigilError(e, 'tpm.ak_cert_untrusted'));
  const verified = await verifyTpmBundle(evidence, trust({ intermediates: [gceIntermediate()] }), GCE_AT);
  assert.equal(verified.claims.ak.trustedBy, 'ak-certificate');
});

test('GCE COS 85: each failed check is named', fixtureTest(), async () => {
  const reject = async (bundle: Record<string, unknown>, code: string, extra: Partial<TpmBundleTrust> = {}, at = GCE_AT) =>
    assert.rejects(verifyTpmBundle(parseTpmBundle(bundle), trust(extra), at), (e) => isSigilError(e, code), code);
  await reject(gceBundle(), 'tpm.quote_nonce_mismatch', { nonce: new Uint8Array([0x90, 0x0a]) });
  await reject({ ...gceBundle(), akCertificateChain: [toBase64(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]))] }, 'x509.certificate_malformed');
  await reject(gceBundle(), 'tpm.ak_cert_chain_invalid', {}, new Date('2020-01-01T00:00:00Z'));
  await reject(gceBundle(), 'tpm.ak_untrusted', { akRoots: [] });
  // Another key under the same certificate (the AK certificate moved into a foreign attestation).
  const other = gceBundle();
  const ak = fixture('tpm/gotpmtools_gce_cos85_ak_pub.tpmt_public.bin');
  ak[ak.length - 1] ^= 1;
  other.akPublic = toHex(ak);
  await reject(other, 'tpm.ak_cert_key_mismatch');
  // A PCR value that is not what the TPM signed.
  const pcrs = gceBundle();
  (pcrs.pcrs as Record<string, Record<string, string>>).sha384['5'] = '00'.repeat(48);
  await reject(pcrs, 'tpm.quote_pcr_digest_mismatch');
  const missing = gceBundle();
  delete (missing.pcrs as Record<string, Record<string, string>>).sha1['23'];
  await reject(missing, 'tpm.quote_pcr_missing');
  // The quirk the log needs is a decision of the verifier.
  await reject(gceBundle(), 'eventlog.quirk_required', { quirks: [] });
});

test('GCE COS 85: a pinned AK needs no certificate; an event log that does not replay is refused', fixtureTest(), async () => {
  const { akCertificate: _c, akCertificateChain: _cc, ...bundle } = gceBundle();
  const pinned = await verifyTpmBundle(parseTpmBundle(bundle), { nonce: GCE_NONCE, pinnedAkNames: [GCE_AK_NAME.toUpperCase()], quirks: ['shim-authority-digest-short'] }, GCE_AT);
  assert.equal(pinned.claims.ak.trustedBy, 'pinned');
  const log = fixture('tpm/gotpmtools_gce_cos85_eventlog.bin');
  const parsed = parseTcgEventLog(log);
  const grubEvent = parsed.events.find((e) => e.pcr === 8)!;
  log[grubEvent.offset + 12 + 2] ^= 0x01; // first byte of its SHA-1 digest (after count and alg id)
  const tampered = { ...gceBundle(), eventLog: toBase64(log) };
  await assert.rejects(verifyTpmBundle(parseTpmBundle(tampered), trust(), GCE_AT), (e) => isSigilError(e, 'tpm.eventlog_replay_mismatch') && (e.details.mismatches as { bank: string; pcr: number }[]).map((m) => `${m.bank}:${m.pcr}`).join() === 'sha1:8');
  // Declared a runtime PCR, the same difference only removes PCR 8 from the verified boot state.
  const relaxed = await verifyTpmBundle(parseTpmBundle(tampered), trust({ runtimePcrs: [8, 10] }), GCE_AT);
  assert.deepEqual(relaxed.claims.eventLog!.extendedAfterBoot, [8]);
  assert.deepEqual(relaxed.claims.eventLog!.verifiedPcrs, [0, 1, 2, 3, 4, 5, 6, 7, 9]);
  assert.equal(relaxed.claims.eventLog!.bootState.grub?.commands.length ?? 0, 0);
  assert.equal(relaxed.claims.eventLog!.bootState.kernelCmdline, undefined);
});

test('GCE COS 85: appraisal against a policy built from its reference values, with a trace', fixtureTest(), async () => {
  const verified = await verifyTpmBundle(parseTpmBundle(gceBundle()), trust(), GCE_AT);
  const state = verified.claims.eventLog!.bootState;
  const policy = checkTpmBundlePolicy({
    akTrustedBy: ['ak-certificate'],
    pcrs: { sha256: { 0: ['0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf'], 7: '3365d7fa2b024c852913c06e04ffbfa6ea5289f743bbf1a76f7ffdf21ed84793' } },
    requireSafeClock: true,
    requireEventLog: true,
    requireSecureBoot: true,
    allowedEfiApplications: state.efiApplications.map((a) => a.digest),
    allowedKernelCmdlines: [state.kernelCmdline!.text!],
    requireSeparators: true,
    requireExitBootServices: true,
    allowedQuirks: ['shim-authority-digest-short'],
  });
  const good = appraiseTpmBundle(verified, policy);
  assert.equal(good.status, 'affirming');
  assert.deepEqual(good.trace.map((t) => [t.rule, t.result]), [
    ['tpm.ak-trust', 'pass'],
    ['pcr.sha256:0', 'pass'],
    ['pcr.sha256:7', 'pass'],
    ['tpm.clock-safe', 'pass'],
    ['eventlog.present', 'pass'],
    ['boot.secure-boot', 'pass'],
    ['boot.efi-applications', 'pass'],
    ['boot.kernel-cmdline', 'pass'],
    ['boot.separators', 'pass'],
    ['boot.exit-boot-services', 'pass'],
    ['eventlog.quirk:shim-authority-digest-short', 'pass'],
  ]);
  assert.deepEqual(good.trustVector, { instance_identity: 2, hardware: 2, configuration: 2, executables: 2 });

  const unlisted = appraiseTpmBundle(verified, { ...policy, allowedQuirks: undefined });
  assert.equal(unlisted.status, 'warning');
  assert.equal(unlisted.trustVector.configuration, 32);

  const bad = appraiseTpmBundle(verified, { ...policy, allowedKernelCmdlines: ['console=ttyS0 init=/bin/sh'], allowedEfiApplications: [state.efiApplications[0].digest] });
  assert.equal(bad.status, 'contraindicated');
  assert.equal(bad.trustVector.executables, 96);
  const cmdline = bad.trace.find((t) => t.rule === 'boot.kernel-cmdline')!;
  assert.deepEqual(cmdline.expected, ['console=ttyS0 init=/bin/sh']);
  assert.equal((cmdline.actual as { source: string }).source, 'grub');
  const apps = bad.trace.find((t) => t.rule === 'boot.efi-applications')!;
  assert.deepEqual(apps.actual, { unknown: state.efiApplications.slice(1).map((a) => a.digest) });
  assert.throws(() => checkTpmBundlePolicy({ requireSecureBoot: 'yes' }), (e) => isSigilError(e, 'policy.tpm_policy_invalid'));
  assert.throws(() => checkTpmBundlePolicy({ allowedQuirks: ['made-up'] }), (e) => isSigilError(e, 'policy.tpm_policy_invalid'));
  assert.equal(gceQuotes().sha256.pcr_bank, 'sha256');
});
