/**
 * The bundle reader against 100,000 mutations of a real bundle: half byte-level (flips, truncation,
 * garbage), half structural on the JSON tree and re-written in the canonical layout, so they pass
 * the JSON and canonical-form layers and reach the field, public-area, PCR and policy checks. Every
 * input must parse or fail with a SigilError; the first 2,000 that parse but differ from the original
 * go through the signature check too, and must fail it. The duplication files' parsers get 20,000 each.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SigilError } from '../../src/core/errors.ts';
import { bundleText, parseBundle, verifyBundleSignature } from '../../src/bundle/bundle-format.ts';
import { sealBundle } from '../../src/bundle/seal.ts';
import { mutate, prng } from '../support/fuzz.ts';
import { mutateJson } from '../device/json-fuzz.ts';
import { makeVendor, predictedValues, PRODUCT, type VendorFixture } from '../device/support.ts';
import { integrityOf, provisionedMachine, type BundleMachine } from './support.ts';

const COUNT = 100_000;
let vendor: VendorFixture;
let machine: BundleMachine;
let text: string;

before(async () => {
  vendor = await makeVendor();
  machine = await provisionedMachine(vendor, 'SN-FUZZ-B');
  text = bundleText(
    await sealBundle({
      keyset: vendor.keyset,
      productId: PRODUCT,
      recipients: [machine.record],
      pcrs: await predictedValues(machine),
      integrity: integrityOf({ kernel: new Uint8Array([1, 2, 3]), initrd: new Uint8Array([4]), cmdline: 'ro' }),
      secrets: { disk: new TextEncoder().encode('pw') },
    }),
  );
});

after(async () => {
  await machine?.stop();
  await vendor?.remove();
});

function* mutations(count: number, seed: number): Generator<Uint8Array> {
  const random = prng(seed);
  const bytes = new TextEncoder().encode(text);
  const doc = JSON.parse(text);
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      yield mutate(bytes, random);
      continue;
    }
    const mutated = mutateJson(doc, random);
    // Re-write structural mutations in the canonical layout so they reach the field checks.
    yield new TextEncoder().encode(`${JSON.stringify(JSON.parse(new TextDecoder().decode(mutated)), null, 2)}\n`);
  }
}

test('bundle parser: 100k mutations, only SigilError', async () => {
  await parseBundle(text);
  const codes = new Map<string, number>();
  let parsed = 0;
  let index = 0;
  let verified = 0;
  let unchanged = 0;
  for (const input of mutations(COUNT, 0xb0d1e)) {
    const same = new TextDecoder().decode(input) === text;
    if (same) unchanged++;
    try {
      const bundle = await parseBundle(input);
      parsed++;
      if (!same && verified++ < 2000) {
        verifyBundleSignature(bundle, vendor.trust, PRODUCT);
        assert.fail(`mutation ${index} changed the bundle and still verified`);
      }
    } catch (error) {
      if (!(error instanceof SigilError)) {
        assert.fail(`mutation ${index} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\ninput: ${new TextDecoder().decode(input).slice(0, 300)}`);
      }
      codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
    }
    index++;
  }
  assert.equal(index, COUNT);
  assert.ok(parsed < COUNT / 2, `${parsed} mutations parsed`);
  // The mutations reach past the JSON layer into the field checks and the canonical-form check.
  assert.ok((codes.get('bundle.invalid') ?? 0) > COUNT / 4, JSON.stringify([...codes]));
  assert.ok((codes.get('bundle.not_canonical') ?? 0) > 100, JSON.stringify([...codes]));
  if (process.env.SIGIL_TEST_VERBOSE) console.log({ parsed, unchanged, verified, codes: [...codes] });
});

test('duplication file parsers (wrapping key, approval, duplicated key): 20k mutations each, only SigilError', async () => {
  const { createWrappingKey, parseWrappingKey } = await import('../../src/bundle/wrapping-key.ts');
  const { signDuplicationApproval, parseDuplicationApproval } = await import('../../src/bundle/duplication-policy.ts');
  const { parseDuplicatedKey, DUPLICATED_FORMAT } = await import('../../src/bundle/duplication.ts');
  const keyDoc = await createWrappingKey(machine.tpm, { signer: vendor.trust.policySigning.name, productId: PRODUCT });
  const key = await parseWrappingKey(JSON.stringify(keyDoc));
  const approval = await signDuplicationApproval({ policyKey: vendor.keyset.privateKey('policy-signing'), productId: PRODUCT, objectName: key.name, newParentPublic: machine.record.storageKey.publicArea, newParentSerial: machine.serial });
  const duplicated = { format: DUPLICATED_FORMAT, productId: PRODUCT, signer: keyDoc.signer, name: keyDoc.name, public: keyDoc.public, newParentName: approval.newParent.name, encryptionKey: '11'.repeat(16), duplicate: 'ab'.repeat(120), seed: 'cd'.repeat(68) };
  const cases: [string, unknown, (input: Uint8Array) => unknown][] = [
    ['wrapping key', keyDoc, (input) => parseWrappingKey(input)],
    ['approval', approval, (input) => parseDuplicationApproval(input)],
    ['duplicated key', duplicated, (input) => parseDuplicatedKey(input)],
  ];
  for (const [name, doc, parse] of cases) {
    await parse(new TextEncoder().encode(JSON.stringify(doc)));
    const random = prng(0xd0d0 + name.length);
    const text = new TextEncoder().encode(JSON.stringify(doc));
    let refused = 0;
    for (let i = 0; i < 20_000; i++) {
      const input = i % 2 === 0 ? mutate(text, random) : mutateJson(doc, random);
      try {
        await parse(input);
      } catch (error) {
        if (!(error instanceof SigilError)) assert.fail(`${name} mutation ${i} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
        refused++;
      }
    }
    assert.ok(refused > 10_000, `${name}: ${refused} refused`);
  }
});
