/**
 * Sealed bundles on three swtpm machines of one product: A and B are recipients, C is provisioned
 * but never listed. Each recipient opens; C cannot (Sigil refuses, and C's TPM refuses every wrap);
 * revoking B re-keys the bundle so B cannot open the new one even with its old wrap; the PCR policy
 * refuses resettable PCRs and the sealed PCRs cannot be reset; artefacts must match.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isSigilError } from '../../src/core/errors.ts';
import { bundleText, parseBundle, payloadAad, type BundleDocument } from '../../src/bundle/bundle-format.ts';
import { openBundle, unwrapDataKey } from '../../src/bundle/open.ts';
import { decryptPayload } from '../../src/bundle/payload.ts';
import { pcrUnsealPolicy } from '../../src/bundle/pcr-policy.ts';
import { sealBundle, revokeBundle, rekeyBundle } from '../../src/bundle/seal.ts';
import { auth } from '../../src/tpm/command.ts';
import { pcrReset } from '../../src/tpm/commands/pcr.ts';
import { TPM_ALG, TPMA_OBJECT } from '../../src/tpm/constants.ts';
import { sealToRemoteTpm } from '../../src/tpm/credential.ts';
import { makeVendor, measureBoot, predictedValues, reboot, OTHER_PRODUCT, PRODUCT, type VendorFixture } from '../device/support.ts';
import { integrityOf, makeArtefacts, provisionedMachine, resign, type BundleMachine } from './support.ts';

let vendor: VendorFixture;
let a: BundleMachine;
let b: BundleMachine;
let c: BundleMachine;
let pcrs: Map<number, Map<number, Uint8Array>>;
let bundleAB: string;
const artefacts = makeArtefacts();
const secrets = { 'root-disk': new TextEncoder().encode('root disk passphrase: tr0ub4dor&3'), 'service.key': new Uint8Array(randomBytes(2000)) };

function refusedWith(code: string) {
  return (error: unknown) => {
    assert.ok(isSigilError(error, code), `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    return true;
  };
}

const open = (machine: BundleMachine, bundle: string, options: { minEpoch?: number; artefacts?: typeof artefacts } = {}) =>
  openBundle(machine.tpm, { trust: vendor.trust, bundle, artefacts: options.artefacts ?? artefacts, minEpoch: options.minEpoch });

before(async () => {
  vendor = await makeVendor();
  a = await provisionedMachine(vendor, 'SN-BUNDLE-A');
  b = await provisionedMachine(vendor, 'SN-BUNDLE-B');
  c = await provisionedMachine(vendor, 'SN-BUNDLE-C');
  pcrs = await predictedValues(a);
  const doc = await sealBundle({ keyset: vendor.keyset, productId: PRODUCT, bundleId: 'fleet-root-disk', recipients: [b.record, a.record], pcrs, integrity: integrityOf(artefacts), secrets });
  bundleAB = bundleText(doc);
});

after(async () => {
  for (const machine of [a, b, c]) await machine?.stop();
  await vendor?.remove();
});

test('the bundle file: epoch 1, recipients in serial order, each sealed under PolicyPCR(7, 11) + PolicyCommandCode(Unseal)', async () => {
  const doc = JSON.parse(bundleAB) as BundleDocument;
  assert.equal(doc.format, 'sigil.sealed-bundle.v1');
  assert.equal(doc.epoch, 1);
  assert.deepEqual(doc.recipients.map((r) => r.serial), ['SN-BUNDLE-A', 'SN-BUNDLE-B']);
  assert.deepEqual(Object.keys(doc.recipients[0].pcrs[0].values), ['7', '11']);
  assert.equal(doc.recipients[0].storageKey.name, Buffer.from(a.record.storageKey.name).toString('hex'));
  assert.ok(!bundleAB.includes('tr0ub4dor'), 'no secret in clear');
  const parsed = await parseBundle(bundleAB);
  assert.equal(parsed.recipients[0].sealedKey.publicArea.objectAttributes & (TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent), 0, 'the wrapped data key is importable (fixedTPM/fixedParent clear) …');
  assert.deepEqual(parsed.recipients[0].sealedKey.publicArea.authPolicy, parsed.recipients[0].authPolicy, '… and opens only under the PCR policy');
});

test('each authorized machine opens the bundle and gets the secrets', async () => {
  for (const machine of [a, b]) {
    const opened = await open(machine, bundleAB);
    assert.equal(opened.serial, machine.serial);
    assert.equal(opened.epoch, 1);
    assert.deepEqual(opened.checked, ['kernel', 'initrd', 'cmdline']);
    assert.deepEqual(opened.secrets.get('root-disk'), secrets['root-disk']);
    assert.deepEqual(opened.secrets.get('service.key'), secrets['service.key']);
  }
});

test('an unlisted machine cannot open: Sigil refuses, and its TPM refuses every wrap in the bundle', async () => {
  await assert.rejects(open(c, bundleAB), refusedWith('bundle.not_a_recipient'));
  const bundle = await parseBundle(bundleAB);
  for (const recipient of bundle.recipients) {
    await assert.rejects(unwrapDataKey(c.tpm, recipient), refusedWith('bundle.not_for_this_tpm'));
  }
});

test('revoking B re-keys the bundle: epoch 2, a new data key for A only; B is refused and its old wrap does not open the new payload', async () => {
  const revoked = bundleText(await revokeBundle({ keyset: vendor.keyset, bundle: bundleAB, revoke: ['SN-BUNDLE-B'] }));
  const before = await parseBundle(bundleAB);
  const after = await parseBundle(revoked);
  assert.equal(after.bundleId, before.bundleId);
  assert.equal(after.epoch, 2);
  assert.deepEqual(after.recipients.map((r) => r.serial), ['SN-BUNDLE-A']);
  assert.notDeepEqual(after.recipients[0].sealedKey.duplicate, before.recipients[0].sealedKey.duplicate);

  const opened = await open(a, revoked, { minEpoch: 2 });
  assert.equal(opened.epoch, 2);
  assert.deepEqual(opened.secrets.get('root-disk'), secrets['root-disk']);
  await assert.rejects(open(b, revoked), refusedWith('bundle.not_a_recipient'));
  // B kept the old file: its TPM still unwraps the old data key, which does not open epoch 2.
  const oldKey = await unwrapDataKey(b.tpm, before.recipients.find((r) => r.serial === 'SN-BUNDLE-B')!);
  assert.equal(oldKey.length, 32);
  assert.throws(() => decryptPayload(oldKey, after.payload, payloadAad(after)), refusedWith('bundle.payload_tampered'));
  // B's wrap lifted into the new file (re-signed) is refused too: the AAD names A alone.
  assert.throws(() => decryptPayload(oldKey, after.payload, payloadAad(before)), refusedWith('bundle.payload_tampered'));
  // A device that has seen epoch 2 refuses the older file.
  await assert.rejects(open(a, bundleAB, { minEpoch: 2 }), refusedWith('bundle.epoch_rolled_back'));

  // Revoking the last recipient, or someone who is not one, is refused.
  await assert.rejects(revokeBundle({ keyset: vendor.keyset, bundle: revoked, revoke: ['SN-BUNDLE-A'] }), refusedWith('bundle.no_recipients'));
  await assert.rejects(revokeBundle({ keyset: vendor.keyset, bundle: revoked, revoke: ['SN-BUNDLE-C'] }), refusedWith('bundle.recipient_unknown'));
  // Re-adding B later, with rotated secrets, makes epoch 3 that both open.
  const rotated = { 'root-disk': new TextEncoder().encode('rotated after revocation') };
  const readded = bundleText(await rekeyBundle({ keyset: vendor.keyset, bundle: revoked, add: [b.record], secrets: rotated }));
  assert.equal((await parseBundle(readded)).epoch, 3);
  for (const machine of [a, b]) assert.deepEqual((await open(machine, readded)).secrets.get('root-disk'), rotated['root-disk']);
});

test('resettable PCRs are refused at seal time, and in a bundle file', async () => {
  for (const pcr of [16, 17, 18, 19, 20, 21, 22, 23]) {
    const withResettable = new Map([[TPM_ALG.SHA256, new Map([...pcrs.get(TPM_ALG.SHA256)!, [pcr, new Uint8Array(32)]])]]);
    await assert.rejects(
      sealBundle({ keyset: vendor.keyset, productId: PRODUCT, recipients: [a.record], pcrs: withResettable, integrity: integrityOf(artefacts), secrets }),
      refusedWith('bundle.pcr_resettable'),
      `PCR ${pcr}`,
    );
  }
  const doc = JSON.parse(bundleAB) as BundleDocument;
  doc.recipients[0].pcrs[0].values['16'] = '00'.repeat(32);
  await assert.rejects(parseBundle(`${JSON.stringify(doc, null, 2)}\n`), refusedWith('bundle.pcr_resettable'));
});

test('why: a key sealed to PCR 16 (the PEF lockbox policy) opens for anyone who resets PCR 16 and replays it', async () => {
  // The hole, shown on the same TPM with the same wrapping: seal to the PCR 16 value a "boot" reached…
  await c.tpm.extendEvent(16, new TextEncoder().encode('lockbox measurement'));
  const pcr16 = new Map([[TPM_ALG.SHA256, await c.tpm.readPcrs(TPM_ALG.SHA256, [16])]]);
  const policy = { selection: [{ hash: TPM_ALG.SHA256, pcrs: [16] }], values: pcr16 };
  const authPolicy = await pcrUnsealPolicy(policy);
  const secret = new Uint8Array(randomBytes(32));
  const blob = await sealToRemoteTpm({ parentPublic: c.record.storageKey.publicArea, secret, policyDigest: authPolicy });
  const recipient = {
    serial: c.serial,
    storageKey: { publicArea: c.record.storageKey.publicArea, name: c.record.storageKey.name },
    pcrPolicy: policy,
    authPolicy,
    sealedKey: { publicArea: blob.objectPublic, duplicate: blob.duplicate, seed: blob.inSymSeed },
  };
  // …later in the same boot the PCR moved on, which should lock the key away…
  await c.tpm.extendEvent(16, new TextEncoder().encode('after the lockbox was used'));
  await assert.rejects(unwrapDataKey(c.tpm, recipient), refusedWith('bundle.pcr_mismatch'));
  // …but any process can reset PCR 16 and replay the measurement.
  await c.tpm.client.run(pcrReset(auth(16)));
  await c.tpm.extendEvent(16, new TextEncoder().encode('lockbox measurement'));
  assert.deepEqual(await unwrapDataKey(c.tpm, recipient), secret, 'the PCR 16 policy was defeated by a reset');
  await c.tpm.client.run(pcrReset(auth(16)));
});

test('a changed boot state is refused by Sigil and by the TPM, and PCR resets do not bring it back', async () => {
  try {
    await a.tpm.extendEvent(11, new TextEncoder().encode('an unexpected kernel'));
    await assert.rejects(open(a, bundleAB), refusedWith('bundle.pcr_mismatch'));
    const recipient = (await parseBundle(bundleAB)).recipients.find((r) => r.serial === a.serial)!;
    await assert.rejects(unwrapDataKey(a.tpm, recipient), refusedWith('bundle.pcr_mismatch'));
    // PCRs 0-15 cannot be reset from software; PCR 16 can, and is in no bundle policy.
    await assert.rejects(a.tpm.client.run(pcrReset(auth(11))), (e: unknown) => isSigilError(e) && e.code.startsWith('tpm.rc.locality'));
    await a.tpm.client.run(pcrReset(auth(16)));
    await a.tpm.extendEvent(16, new TextEncoder().encode('replay'));
    await assert.rejects(open(a, bundleAB), refusedWith('bundle.pcr_mismatch'));
  } finally {
    await reboot(a);
    await measureBoot(a);
  }
  assert.equal((await open(a, bundleAB)).serial, a.serial, 'after a reboot with the right boot chain it opens again');
});

test('the artefacts must match: another kernel, initrd or cmdline, or a missing one, is refused', async () => {
  await assert.rejects(open(a, bundleAB, { artefacts: { ...artefacts, kernel: new Uint8Array(randomBytes(4096)) } }), refusedWith('bundle.integrity_mismatch'));
  await assert.rejects(open(a, bundleAB, { artefacts: { ...artefacts, initrd: artefacts.initrd!.subarray(1) } }), refusedWith('bundle.integrity_mismatch'));
  await assert.rejects(open(a, bundleAB, { artefacts: { ...artefacts, cmdline: `${artefacts.cmdline} init=/bin/sh` } }), refusedWith('bundle.integrity_mismatch'));
  await assert.rejects(open(a, bundleAB, { artefacts: { kernel: artefacts.kernel, cmdline: artefacts.cmdline } }), refusedWith('bundle.artefact_missing'));
  // /proc/cmdline ends in a newline: the same command line.
  assert.equal((await open(a, bundleAB, { artefacts: { ...artefacts, cmdline: `${artefacts.cmdline}\n` } })).checked.length, 3);
});

test('product binding: recipients of another product are refused at sealing, and a bundle signed by another product key at opening', async () => {
  await assert.rejects(
    sealBundle({ keyset: vendor.keyset, productId: OTHER_PRODUCT, recipients: [a.record], pcrs, integrity: integrityOf(artefacts), secrets }),
    refusedWith('device.product_mismatch'),
  );
  const foreign = await resign(vendor, bundleAB, (bundle) => bundle, OTHER_PRODUCT);
  await assert.rejects(open(a, foreign), refusedWith('bundle.signature_invalid'));
  const relabelled = await resign(vendor, bundleAB, (bundle) => ({ ...bundle, productId: OTHER_PRODUCT }));
  await assert.rejects(open(a, relabelled), refusedWith('device.product_mismatch'));
});

test('a kernel update: re-key with the new digests and PCR values; the new boot opens the new bundle and no longer the old one', async () => {
  const update = { ...makeArtefacts(), cmdline: artefacts.cmdline };
  try {
    await reboot(a);
    await measureBoot(a, [
      [7, 'secure boot: PK KEK db dbx'],
      [11, 'uki: kernel 6.13 initrd cmdline'],
    ]);
    const newPcrs = await predictedValues(a);
    const updated = bundleText(await rekeyBundle({ keyset: vendor.keyset, bundle: bundleAB, integrity: integrityOf(update), pcrs: newPcrs }));
    const opened = await open(a, updated, { artefacts: update });
    assert.equal(opened.epoch, 2);
    assert.deepEqual(opened.secrets.get('root-disk'), secrets['root-disk']);
    await assert.rejects(open(a, bundleAB, { artefacts: update }), refusedWith('bundle.pcr_mismatch'));
  } finally {
    await reboot(a);
    await measureBoot(a);
  }
});
