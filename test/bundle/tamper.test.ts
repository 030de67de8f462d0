/**
 * Any change to a bundle is detected. Every byte of a small bundle is flipped three ways (XOR 0x01,
 * 0x20 — which turns hex digits upper-case — and 0x80) and each result must be refused by
 * parse + signature check with a SigilError. Then changes a signature cannot catch, because the
 * vendor's own product key re-signed them, are caught by the TPM and the AEAD: another ciphertext,
 * epoch, bundle ID or recipient list, or a recipient's wrap moved to another entry.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SigilError, isSigilError } from '../../src/core/errors.ts';
import { bundleText, parseBundle, verifyBundleSignature } from '../../src/bundle/bundle-format.ts';
import { openBundle } from '../../src/bundle/open.ts';
import { sealBundle } from '../../src/bundle/seal.ts';
import { makeVendor, predictedValues, PRODUCT, type VendorFixture } from '../device/support.ts';
import { integrityOf, makeArtefacts, provisionedMachine, resign, type BundleMachine } from './support.ts';

let vendor: VendorFixture;
let a: BundleMachine;
let b: BundleMachine;
let small: string;
let pair: string;
const artefacts = { kernel: new TextEncoder().encode('vmlinuz'), cmdline: 'quiet' };

function refusedWith(code: string) {
  return (error: unknown) => {
    assert.ok(isSigilError(error, code), `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    return true;
  };
}

before(async () => {
  vendor = await makeVendor();
  a = await provisionedMachine(vendor, 'SN-T-A');
  b = await provisionedMachine(vendor, 'SN-T-B');
  const pcrs = await predictedValues(a);
  const common = { keyset: vendor.keyset, productId: PRODUCT, bundleId: 'b1', pcrs, integrity: integrityOf(artefacts) };
  small = bundleText(await sealBundle({ ...common, recipients: [a.record], secrets: { k: new Uint8Array([1]) } }));
  pair = bundleText(await sealBundle({ ...common, recipients: [a.record, b.record], secrets: { disk: new TextEncoder().encode('pw'), other: new TextEncoder().encode(makeArtefacts().cmdline!) } }));
});

after(async () => {
  for (const machine of [a, b]) await machine?.stop();
  await vendor?.remove();
});

test('flipping any byte of a bundle (every position, three ways) is refused', async () => {
  const bytes = new TextEncoder().encode(small);
  verifyBundleSignature(await parseBundle(bytes), vendor.trust, PRODUCT); // the original passes
  const byCode = new Map<string, number>();
  let tried = 0;
  for (let i = 0; i < bytes.length; i++) {
    for (const mask of [0x01, 0x20, 0x80]) {
      const changed = bytes.slice();
      changed[i] ^= mask;
      tried++;
      try {
        verifyBundleSignature(await parseBundle(changed), vendor.trust, PRODUCT);
        assert.fail(`byte ${i} ^ 0x${mask.toString(16)} (${JSON.stringify(String.fromCharCode(bytes[i]))}) was not detected`);
      } catch (error) {
        if (!(error instanceof SigilError)) throw error;
        byCode.set(error.code, (byCode.get(error.code) ?? 0) + 1);
      }
    }
  }
  assert.ok(bytes.length > 2000, `a ${bytes.length}-byte bundle`);
  if (process.env.SIGIL_TEST_VERBOSE) console.log(bytes.length, [...byCode]);
  assert.equal(tried, bytes.length * 3);
  // Both layers are exercised: canonical form / field checks, and the signature over the fields.
  assert.ok((byCode.get('bundle.signature_invalid') ?? 0) > 500, JSON.stringify([...byCode]));
  assert.ok((byCode.get('bundle.not_canonical') ?? 0) > 100, JSON.stringify([...byCode]));
});

test('changes re-signed by the vendor are still caught: the AEAD binds ciphertext, bundle ID, epoch and the recipient list', async () => {
  const open = (text: string) => openBundle(a.tpm, { trust: vendor.trust, bundle: text, artefacts });
  assert.deepEqual((await open(pair)).secrets.get('disk'), new TextEncoder().encode('pw'));
  const flipped = await resign(vendor, pair, (bundle) => {
    const ciphertext = bundle.payload.ciphertext.slice();
    ciphertext[3] ^= 1;
    return { ...bundle, payload: { ...bundle.payload, ciphertext } };
  });
  await assert.rejects(open(flipped), refusedWith('bundle.payload_tampered'));
  await assert.rejects(open(await resign(vendor, pair, (bundle) => ({ ...bundle, epoch: bundle.epoch + 1 }))), refusedWith('bundle.payload_tampered'));
  await assert.rejects(open(await resign(vendor, pair, (bundle) => ({ ...bundle, bundleId: 'b2' }))), refusedWith('bundle.payload_tampered'));
  // Dropping B from the list without re-encrypting (a "revocation" that did not re-key) does not open.
  const dropped = await resign(vendor, pair, (bundle) => ({ ...bundle, recipients: bundle.recipients.filter((r) => r.serial === a.serial) }));
  await assert.rejects(open(dropped), refusedWith('bundle.payload_tampered'));
  // B's wrap placed in A's entry: A's TPM cannot import what was wrapped to B's storage key.
  const swapped = await resign(vendor, pair, (bundle) => ({
    ...bundle,
    recipients: bundle.recipients.map((r) => (r.serial === a.serial ? { ...r, sealedKey: bundle.recipients.find((x) => x.serial === b.serial)!.sealedKey } : r)),
  }));
  await assert.rejects(open(swapped), refusedWith('bundle.not_for_this_tpm'));
  // A wrap changed by one bit: the import's HMAC fails.
  const wrapFlipped = await resign(vendor, pair, (bundle) => ({
    ...bundle,
    recipients: bundle.recipients.map((r) => {
      const duplicate = r.sealedKey.duplicate.slice();
      duplicate[duplicate.length - 1] ^= 1;
      return { ...r, sealedKey: { ...r.sealedKey, duplicate } };
    }),
  }));
  await assert.rejects(open(wrapFlipped), refusedWith('bundle.not_for_this_tpm'));
});
