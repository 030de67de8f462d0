/**
 * Every device file parser against 100,000 mutations of a real file: boot policies, sealed
 * secrets, provisioning records, signed releases and vendor trust bundles (plus the full trust
 * loader with its chain checks and the keyset index reader at smaller counts). Each
 * mutation must either parse or fail with a SigilError — never a TypeError, RangeError or crash.
 * Inputs that still parse are counted, to show the mutations reached past the JSON layer.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SigilError } from '../../src/core/errors.ts';
import { parseBootPolicy, signBootPolicy } from '../../src/device/boot-policy.ts';
import { Keyset } from '../../src/device/keyset.ts';
import { parseProvisioningRecord } from '../../src/device/provisioning-record.ts';
import { parseSignedRelease, signRelease } from '../../src/device/release.ts';
import { parseSealedSecrets, sealSecrets } from '../../src/device/sealed-secrets.ts';
import { loadVendorTrust, parseVendorTrust } from '../../src/device/trust.ts';
import { jsonMutations } from './json-fuzz.ts';
import { makeVendor, measureBoot, predictedValues, provision, startMachine, PRODUCT, type Machine, type VendorFixture } from './support.ts';

const COUNT = 100_000;
let vendor: VendorFixture;
let machine: Machine;
const samples: Record<string, unknown> = {};

before(async () => {
  vendor = await makeVendor();
  machine = await startMachine();
  samples.record = (await provision(machine, vendor, 'SN-FUZZ-1')).record;
  await measureBoot(machine);
  samples.policy = await signBootPolicy({ policyKey: vendor.keyset.privateKey('policy-signing'), productId: PRODUCT, release: 7, pcrValues: await predictedValues(machine) });
  samples.sealed = await sealSecrets(machine.tpm, { productId: PRODUCT, signer: vendor.trust.policySigning.name, secrets: { disk: new TextEncoder().encode('s3cret') } });
  samples.release = signRelease({ productId: PRODUCT, release: 7, issuedAt: new Date().toISOString(), content: { targets: ['a'] } }, vendor.keyset.productKey(PRODUCT), vendor.keyset.productCertificate(PRODUCT));
  samples.trust = vendor.keyset.trustDocument();
});

after(async () => {
  await machine?.stop();
  await vendor?.remove();
});

async function fuzz(name: string, parse: (input: Uint8Array) => unknown | Promise<unknown>, count = COUNT): Promise<void> {
  const sample = samples[name];
  await parse(new TextEncoder().encode(JSON.stringify(sample))); // the real file parses
  let parsed = 0;
  let index = 0;
  for (const input of jsonMutations(sample, count, 0x5161 + name.length)) {
    try {
      await parse(input);
      parsed++;
    } catch (error) {
      if (!(error instanceof SigilError)) {
        assert.fail(`${name} mutation ${index} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\ninput: ${new TextDecoder().decode(input).slice(0, 400)}`);
      }
    }
    index++;
  }
  assert.equal(index, count);
  assert.ok(parsed < count, `${name}: some mutations must be refused`);
}

test('boot policy parser: 100k mutations, only SigilError', async () => {
  await fuzz('policy', (input) => parseBootPolicy(input));
});

test('sealed secrets parser: 100k mutations, only SigilError', async () => {
  await fuzz('sealed', (input) => parseSealedSecrets(input));
});

test('provisioning record parser: 100k mutations, only SigilError', async () => {
  await fuzz('record', (input) => parseProvisioningRecord(input));
});

test('signed release parser: 100k mutations, only SigilError', async () => {
  await fuzz('release', (input) => parseSignedRelease(input));
});

test('vendor trust bundle parser: 100k mutations, only SigilError', async () => {
  await fuzz('trust', (input) => parseVendorTrust(input));
});

test('vendor trust bundle loader with every chain check: 3k mutations, only SigilError', async () => {
  // Each structurally valid mutation costs five certificate-chain verifications (~6 ms).
  await fuzz('trust', (input) => loadVendorTrust(input), 3_000);
});

test('keyset index reader: 20k mutations, only SigilError', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-keyset-fuzz-'));
  try {
    samples.keyset = { format: 'sigil.keyset.v1', vendor: 'Acme', created: new Date().toISOString(), encrypted: false, policySigningKeyName: '00' };
    await fuzz(
      'keyset',
      async (input) => {
        await writeFile(path.join(dir, 'keyset.json'), input);
        return Keyset.open(dir);
      },
      20_000,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
