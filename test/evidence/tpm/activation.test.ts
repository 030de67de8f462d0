import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { isSigilError } from '../../../src/core/errors.ts';
import { digest } from '../../../src/core/hash.ts';
import { toBase64, toHex } from '../../../src/core/hex.ts';
import { signActivationRecord, type ActivationRecord } from '../../../src/evidence/tpm/activation-record.ts';
import { parseTpmBundle } from '../../../src/evidence/tpm/bundle.ts';
import { verifyTpmBundle, type TpmBundleTrust } from '../../../src/evidence/tpm/bundle-verify.ts';
import { parseCertificates } from '../../../src/evidence/tpm/ek-certificate.ts';
import { parseQuote, verifyQuote } from '../../../src/evidence/tpm/quote.ts';
import { EV } from '../../../src/eventlog/event-types.ts';
import { eventDigests, writeCryptoAgileLog } from '../../../src/eventlog/tcg-writer.ts';
import { makeCredential } from '../../../src/tpm/credential.ts';
import { HASH_ALGS, TPM_ALG } from '../../../src/tpm/constants.ts';
import { marshal } from '../../../src/tpm/marshal/codec.ts';
import { TPMT_PUBLIC } from '../../../src/tpm/structures/public.ts';
import { startSwtpm, type SwtpmInstance } from '../../../src/tpm/swtpm-process.ts';
import { activateCredential, quote, type QuoteEvidence } from '../../../src/tpm/tpm-attest.ts';
import { createAttestationKey, endorsementKey, readEkCertificate, storageKey, type AttestationKey } from '../../../src/tpm/tpm-keys.ts';
import { selectionFromSpec } from '../../../src/tpm/tpm-seal.ts';
import { Tpm } from '../../../src/tpm/tpm.ts';
import { ascii, efiAction, grub, separators, ukiSection } from '../../eventlog/builders.ts';
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

/**
 * The whole TPM evidence path on a real (software) TPM: EK certificate from swtpm_setup's CA, AK
 * activated against the EK (MakeCredential / ActivateCredential), the verifier's signed activation
 * record, a boot log extended into the PCRs, a quote by the AK, and the bundle verified through
 * "ek-activation" trust, with each broken link refused by name.
 */
let swtpm: SwtpmInstance;
let tpm: Tpm;
let ekCert: Uint8Array;
let ca: x509.X509Certificate[];
const verifierKeys = crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']) as Promise<CryptoKeyPair>;

before(async () => {
  swtpm = await startSwtpm({ ekCert: true, pcrBanks: ['sha1', 'sha256'] });
  tpm = new Tpm(swtpm.transport());
  ekCert = (await readEkCertificate(tpm, 'rsa'))!;
  ca = [...parseCertificates(await readFile(swtpm.localCa!.rootCert, 'utf8')), ...parseCertificates(await readFile(swtpm.localCa!.intermediateCert, 'utf8'))];
});

after(async () => {
  await tpm?.close();
  await swtpm?.stop();
});

const BOOT = [...separators(), efiAction(4, 'Calling EFI Application from Boot Option'), grub('kernel_cmdline: ', '/vmlinuz ro'), ...ukiSection('.linux', ascii('kernel'))];

async function extendBootLog(): Promise<Uint8Array> {
  const banks = [TPM_ALG.SHA1, TPM_ALG.SHA256];
  for (const event of BOOT) await tpm.extend(event.pcr, (await eventDigests(event, banks)).map((d) => ({ hashAlg: d.alg, digest: d.digest })));
  return writeCryptoAgileLog(BOOT, banks);
}

/** A new AK activated against the EK; the caller flushes it. */
async function activatedAk(type: 'ecc' | 'rsa'): Promise<AttestationKey> {
  const srk = await storageKey(tpm);
  const ak = await tpm.using(srk.handle, () => createAttestationKey(tpm, srk, type));
  const ek = await endorsementKey(tpm, 'rsa');
  try {
    const challenge = await tpm.random(32);
    const credential = await makeCredential({ ekPublic: ek.publicArea, objectName: ak.name, credential: challenge });
    assert.equal(toHex(await activateCredential(tpm, ak, ek, credential)), toHex(challenge));
  } finally {
    await tpm.flush(ek.handle);
  }
  return ak;
}

function bundleOf(evidence: QuoteEvidence, ak: AttestationKey, extra: Record<string, unknown>): Record<string, unknown> {
  const pcrs: Record<string, Record<number, string>> = {};
  for (const [alg, values] of evidence.pcrValues) pcrs[HASH_ALGS[alg].label] = Object.fromEntries([...values].map(([i, v]) => [i, toHex(v)]));
  return { quote: toHex(evidence.attestBytes), signature: toHex(evidence.signatureBytes), akPublic: toHex(marshal(TPMT_PUBLIC, ak.publicArea)), pcrs, ...extra };
}

test('EK certificate + signed activation record make the AK trusted; the boot log replays into the quote', async () => {
  const log = await extendBootLog();
  const ak = await activatedAk('ecc');
  const nonce = await tpm.random(16);
  const evidence = await tpm.using(ak.handle, () => quote(tpm, ak, nonce, selectionFromSpec('sha256:0,1,2,3,4,5,6,7,8,11,16+sha1:0,4,7')));
  const { privateKey, publicKey } = await verifierKeys;
  const ekSha256 = toHex(await digest('SHA-256', ekCert));
  const now = new Date();
  const record = await signActivationRecord({ version: 1, ekCertificateSha256: ekSha256, akName: toHex(ak.name), activatedAt: new Date(now.getTime() - 60_000).toISOString(), verifier: 'sigil-test' }, privateKey);
  const bundle = bundleOf(evidence, ak, { ekCertificate: toBase64(ekCert), activation: record, eventLog: toBase64(log) });
  const trust: TpmBundleTrust = {
    nonce,
    ekRoots: ca.filter((c) => c.subject === c.issuer),
    intermediates: ca.filter((c) => c.subject !== c.issuer),
    activationKeys: [publicKey],
  };
  const verified = await verifyTpmBundle(parseTpmBundle(JSON.stringify(bundle)), trust, now);
  const { claims } = verified;
  assert.equal(claims.ak.trustedBy, 'ek-activation');
  assert.equal(claims.ak.name, toHex(ak.name));
  assert.equal(claims.ak.ek?.sha256, ekSha256);
  assert.equal(claims.ak.activatedAt, record.activatedAt);
  assert.deepEqual(claims.quotes.map((q) => [q.signatureScheme, q.signatureHash, q.nonce]), [['ECDSA', 'sha256', toHex(nonce)]]);
  assert.deepEqual(claims.eventLog?.verifiedPcrs, [0, 1, 2, 3, 4, 5, 6, 7, 8, 11]);
  assert.deepEqual(claims.eventLog?.bootState.kernelCmdline, { text: '/vmlinuz ro', source: 'grub' });
  assert.deepEqual(claims.eventLog?.bootState.systemd?.ukiSections.map((s) => s.name), ['.linux']);
  assert.equal(claims.eventLog?.comparisons.find((c) => c.pcr === 16)?.status, 'not-in-log');

  const reject = async (change: Record<string, unknown>, trustChange: Partial<TpmBundleTrust>, code: string) =>
    assert.rejects(verifyTpmBundle(parseTpmBundle({ ...bundle, ...change }), { ...trust, ...trustChange }, now), (e) => isSigilError(e, code), code);
  const stranger = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  await reject({}, { activationKeys: [stranger.publicKey] }, 'tpm.activation_signature_invalid');
  await reject({ activation: { ...record, akName: `000b${'00'.repeat(32)}` } }, {}, 'tpm.activation_mismatch');
  await reject({ activation: undefined }, {}, 'tpm.activation_missing');
  await reject({}, { activationMaxAgeMs: 1_000 }, 'tpm.activation_expired');
  await reject({ activation: await signActivationRecord({ ...record, activatedAt: new Date(now.getTime() + 3_600_000).toISOString() }, privateKey) }, {}, 'tpm.activation_in_future');
  const otherRootKeys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const otherRoot = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=Other EK CA', notBefore: new Date(0), notAfter: new Date('2100-01-01'), keys: otherRootKeys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
  await reject({}, { ekRoots: [otherRoot] }, 'tpm.ek_cert_untrusted');
  await reject({}, { nonce: new Uint8Array(16) }, 'tpm.quote_nonce_mismatch');
  // A record from the verifier's own store needs no signature.
  const { signature: _s, ...unsigned } = record;
  const stored = await verifyTpmBundle(parseTpmBundle({ ...bundle, activation: undefined }), { ...trust, activationRecords: [unsigned as ActivationRecord] }, now);
  assert.equal(stored.claims.ak.trustedBy, 'ek-activation');
  // Without a nonce, verify leaves the comparison to the caller and reports what the quote holds.
  const nonceless = await verifyTpmBundle(parseTpmBundle(bundle), { ...trust, nonce: undefined }, now);
  assert.equal(nonceless.claims.quotes[0].nonce, toHex(nonce));

  // Every bit of this ECDSA quote's signed bytes, flipped, is refused.
  const attest = evidence.attestBytes;
  let refused = 0;
  for (let bit = 0; bit < attest.length * 8; bit++) {
    const mutated = attest.slice();
    mutated[bit >> 3] ^= 1 << (bit & 7);
    try {
      await verifyQuote(parseQuote(mutated, evidence.signatureBytes), { akPublic: ak.publicArea, nonce, pcrValues: evidence.pcrValues });
    } catch (error) {
      if (isSigilError(error) && error.code.startsWith('tpm.')) refused++;
      else throw error;
    }
  }
  assert.equal(refused, attest.length * 8);
});

test('an RSA AK (RSASSA) and an event log that no longer matches the TPM', async () => {
  const ak = await activatedAk('rsa');
  const nonce = await tpm.random(8);
  const evidence = await tpm.using(ak.handle, () => quote(tpm, ak, nonce, selectionFromSpec('sha256:0,4,7,8')));
  const pinned: TpmBundleTrust = { nonce, pinnedAkNames: [toHex(ak.name)] };
  const log = await writeCryptoAgileLog(BOOT, [TPM_ALG.SHA1, TPM_ALG.SHA256]);
  const ok = await verifyTpmBundle(parseTpmBundle(bundleOf(evidence, ak, { eventLog: toBase64(log) })), pinned, new Date());
  assert.deepEqual(ok.claims.quotes.map((q) => q.signatureScheme), ['RSASSA']);
  assert.equal(ok.claims.ak.trustedBy, 'pinned');
  // The same log plus one more firmware event: PCR 4 no longer replays to the quote.
  const longer = await writeCryptoAgileLog([...BOOT, { pcr: 4, type: EV.EFI_BOOT_SERVICES_APPLICATION, data: new Uint8Array(32), measured: ascii('late') }], [TPM_ALG.SHA1, TPM_ALG.SHA256]);
  await assert.rejects(
    verifyTpmBundle(parseTpmBundle(bundleOf(evidence, ak, { eventLog: toBase64(longer) })), pinned, new Date()),
    (e) => isSigilError(e, 'tpm.eventlog_replay_mismatch') && (e.details.mismatches as { pcr: number }[]).map((m) => m.pcr).join() === '4',
  );
});
