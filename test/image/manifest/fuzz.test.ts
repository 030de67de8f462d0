/**
 * Fuzzing the manifest parsers with untrusted bytes: 100 000 mutations of a product manifest
 * document (half byte-level, half structural so the field checks are reached) and 20 000 of its
 * signature (compact text and the protected header's JSON). Each must give a value or throw
 * SigilError — never a TypeError, RangeError or a hang.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SigilError } from '../../../src/core/errors.ts';
import { encodeProductManifest, parseProductManifest } from '../../../src/image/manifest/product-manifest.ts';
import { parseManifestSignature, signProductManifest } from '../../../src/image/manifest/signature.ts';
import { verifyProductManifest } from '../../../src/image/manifest/verify.ts';
import { jsonMutations } from '../../device/json-fuzz.ts';
import { mutate, prng } from '../../support/fuzz.ts';
import { makeVendor, manifestOf, PRODUCT } from './fixtures.ts';

const DOCUMENT_ROUNDS = 100_000;
const SIGNATURE_ROUNDS = 20_000;

function outcome(run: () => unknown): 'ok' | 'refused' {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (error instanceof SigilError) return 'refused';
    throw error;
  }
}

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const seedManifest = manifestOf(12, [
  { name: 'web', version: '1.4.2', type: 'container', digest: digest('a'), size: 1234 },
  { name: 'kernel', version: '6.12.1', type: 'uki', repository: 'acme/kernel', digest: digest('b'), size: 800 },
  { name: 'root', version: '2025.1', type: 'host-root', digest: digest('c'), size: 900 },
]);

test(`product manifest document: ${DOCUMENT_ROUNDS} mutations → a value or SigilError`, () => {
  const document = JSON.parse(new TextDecoder().decode(encodeProductManifest({ ...seedManifest, annotations: { note: 'x' } })));
  const counts = { ok: 0, refused: 0 };
  for (const input of jsonMutations(document, DOCUMENT_ROUNDS, 0x5eed)) counts[outcome(() => parseProductManifest(input))]++;
  assert.equal(counts.ok + counts.refused, DOCUMENT_ROUNDS);
  assert.ok(counts.refused > DOCUMENT_ROUNDS / 2, `most mutations are refused (${counts.refused})`);
  assert.ok(counts.ok > 100, `some mutations still parse (${counts.ok}): the structural ones reach past the JSON syntax`);
});

test(`manifest signature: ${SIGNATURE_ROUNDS} mutations → a value or SigilError; a mutated signature never verifies`, async () => {
  const vendor = await makeVendor();
  try {
    const document = encodeProductManifest(seedManifest);
    const signature = await signProductManifest(document, vendor.keyset.productKey(PRODUCT), vendor.keyset.productCertificate(PRODUCT));
    const [headerB64, , value] = new TextDecoder().decode(signature).split('.');
    const header = JSON.parse(Buffer.from(headerB64, 'base64url').toString());
    const random = prng(0xc0ffee);
    const counts = { ok: 0, refused: 0 };
    const headerMutations = jsonMutations(header, SIGNATURE_ROUNDS / 2, 7);
    const parsedOk: Uint8Array[] = [];
    for (let i = 0; i < SIGNATURE_ROUNDS; i++) {
      let input: Uint8Array;
      if (i % 2 === 0) input = mutate(signature, random);
      else {
        const mutatedHeader = headerMutations.next().value as Uint8Array;
        input = new TextEncoder().encode(`${Buffer.from(mutatedHeader).toString('base64url')}..${value}`);
      }
      const result = outcome(() => parseManifestSignature(input));
      counts[result]++;
      if (result === 'ok' && parsedOk.length < 200 && Buffer.compare(Buffer.from(input), Buffer.from(signature)) !== 0) parsedOk.push(input);
    }
    assert.equal(counts.ok + counts.refused, SIGNATURE_ROUNDS);
    // Whatever still parses but differs from the real signature must not verify.
    const check = { trust: vendor.trust, deviceProductId: PRODUCT, floor: 1 };
    for (const input of parsedOk) {
      await assert.rejects(verifyProductManifest(document, input, check), (e: unknown) => e instanceof SigilError);
    }
    assert.equal((await verifyProductManifest(document, signature, check)).manifest.release, 12);
  } finally {
    await vendor.remove();
  }
});
