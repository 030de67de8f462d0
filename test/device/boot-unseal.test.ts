/**
 * Boot-time unseal on swtpm: secrets sealed once under PolicyAuthorize(vendor policy key), opened
 * with a signed policy (PolicyPCR + PolicyNV on the release floor), locked out for the rest of the
 * boot by the PCR 15 extend, open again after a power cycle; refusals for changed PCRs, foreign
 * signers, older releases and other products — from Sigil's checks and from the TPM itself.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isSigilError } from '../../src/core/errors.ts';
import { toHex } from '../../src/core/hex.ts';
import { parseBootPolicy, signBootPolicy, type BootPolicyDocument } from '../../src/device/boot-policy.ts';
import { bootUnseal, unsealSecrets, LOCKOUT_EVENT } from '../../src/device/boot-unseal.ts';
import { advanceReleaseFloor, readReleaseFloor } from '../../src/device/release-floor.ts';
import { parseSealedSecrets, sealSecrets } from '../../src/device/sealed-secrets.ts';
import { addToKeyring, assertKeyringAvailable, deliverSecret, parseSink } from '../../src/device/sinks.ts';
import { TPM_ALG } from '../../src/tpm/constants.ts';
import { measureBoot, makeVendor, predictedValues, provision, reboot, startMachine, PRODUCT, OTHER_PRODUCT, type Machine, type VendorFixture } from './support.ts';

let vendor: VendorFixture;
let machine: Machine;
let sealed: Record<string, string>;
let policyV1: BootPolicyDocument;
const secrets = { disk: new TextEncoder().encode('disk passphrase: correct horse battery staple'), 'service.key': new Uint8Array(3000).map((_, i) => i % 251) };

const sign = async (release: number, overrides: Partial<Parameters<typeof signBootPolicy>[0]> = {}) =>
  signBootPolicy({ policyKey: vendor.keyset.privateKey('policy-signing'), productId: PRODUCT, release, pcrValues: await predictedValues(machine), ...overrides });

const unseal = (policy: unknown, options: { commitRelease?: boolean } = {}) =>
  bootUnseal(machine.tpm, { trust: vendor.trust, policy: JSON.stringify(policy), sealed: JSON.stringify(sealed), ...options });

function refusedWith(code: string, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(isSigilError(error, code), `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

before(async () => {
  vendor = await makeVendor();
  machine = await startMachine();
  await provision(machine, vendor, 'SN-BOOT-1');
  // Sealing happens once, at installation; it needs no PCR values at all.
  sealed = await sealSecrets(machine.tpm, { productId: PRODUCT, signer: vendor.trust.policySigning.name, secrets });
});

after(async () => {
  await machine?.stop();
  await vendor?.remove();
});

beforeEach(async () => {
  // Every test starts from a fresh boot with the release's measurements.
  await reboot(machine);
  await measureBoot(machine);
  policyV1 ??= await sign(1);
});

test('a correctly signed policy unseals every secret, then PCR 15 is extended with the lock-out event', async () => {
  const pcr15Before = (await machine.tpm.readPcrs(TPM_ALG.SHA256, [15])).get(15)!;
  assert.equal(toHex(pcr15Before), '00'.repeat(32), 'the lock-out PCR starts at zero after a reboot');
  const result = await unseal(policyV1);
  assert.deepEqual(result.secrets.get('disk'), secrets.disk);
  assert.deepEqual(result.secrets.get('service.key'), secrets['service.key']);
  assert.equal(result.productId, PRODUCT);
  assert.equal(result.serial, 'SN-BOOT-1');
  assert.deepEqual(result.lockout, { pcr: 15, extended: true });
  const event = createHash('sha256').update(Buffer.concat([Buffer.from(LOCKOUT_EVENT), Buffer.from(policyV1.approvedPolicy, 'hex')])).digest();
  const expected = createHash('sha256').update(Buffer.concat([Buffer.alloc(32), event])).digest();
  assert.equal(toHex((await machine.tpm.readPcrs(TPM_ALG.SHA256, [15])).get(15)!), expected.toString('hex'), "PCR 15 = extend(0, SHA-256(Sigil's lock-out event))");
});

test('after the lock-out extend, a second unseal in the same boot fails — in Sigil and in the TPM', async () => {
  await unseal(policyV1);
  await assert.rejects(unseal(policyV1), refusedWith('device.locked_out', /lock-out PCR 15 was already extended/));
  // Without Sigil's own PCR check, the TPM refuses by itself.
  await assert.rejects(unsealSecrets(machine.tpm, vendor.trust, parseBootPolicy(JSON.stringify(policyV1)), parseSealedSecrets(JSON.stringify(sealed))), refusedWith('device.pcr_mismatch'));
});

test('a simulated reboot (swtpm power cycle + Startup) unseals again', async () => {
  await unseal(policyV1);
  await reboot(machine);
  await measureBoot(machine);
  const again = await unseal(policyV1);
  assert.deepEqual(again.secrets.get('disk'), secrets.disk);
});

test('a changed PCR (another kernel) is refused and says which PCR; the TPM refuses too', async () => {
  await reboot(machine);
  await measureBoot(machine, [
    [7, 'secure boot: PK KEK db dbx'],
    [11, 'uki: a kernel nobody signed a policy for'],
  ]);
  await assert.rejects(unseal(policyV1), refusedWith('device.pcr_mismatch', /PCR sha256:11/));
  await reboot(machine);
  await measureBoot(machine, [
    [7, 'secure boot: PK KEK db dbx'],
    [11, 'uki: a kernel nobody signed a policy for'],
  ]);
  await assert.rejects(unsealSecrets(machine.tpm, vendor.trust, parseBootPolicy(JSON.stringify(policyV1)), parseSealedSecrets(JSON.stringify(sealed))), refusedWith('device.pcr_mismatch'));
});

test('a new kernel needs only a new signed policy, not a reseal', async () => {
  await reboot(machine);
  const newKernel: [number, string][] = [
    [7, 'secure boot: PK KEK db dbx'],
    [11, 'uki: kernel 6.13'],
  ];
  await measureBoot(machine, newKernel);
  const policy = await sign(2);
  const result = await unseal(policy);
  assert.deepEqual(result.secrets.get('disk'), secrets.disk, 'the same sealed file opens under the new policy');
});

test('a policy signed by another key is refused before and by the TPM', async () => {
  const impostor = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const forged = await sign(1, { policyKey: impostor });
  await assert.rejects(unseal(forged), refusedWith('device.policy_signer_unknown', /not the vendor's policy-signing key/));
  // The impostor claims to be the vendor's key: the signature check catches it.
  await reboot(machine);
  await measureBoot(machine);
  const claimed = { ...forged, signer: policyV1.signer };
  await assert.rejects(unseal(claimed), refusedWith('device.policy_signature_invalid'));
  // And the TPM's VerifySignature on its own.
  await reboot(machine);
  await measureBoot(machine);
  await assert.rejects(unsealSecrets(machine.tpm, vendor.trust, parseBootPolicy(JSON.stringify(claimed)), parseSealedSecrets(JSON.stringify(sealed))), refusedWith('device.policy_signature_invalid'));
});

test('a policy for another product is refused: product binding and a different policyRef', async () => {
  const other = await sign(1, { productId: OTHER_PRODUCT });
  await assert.rejects(unseal(other), refusedWith('device.product_mismatch', /for product acme-cam, but this device is product acme-gw/));
  // Relabelled as this product, its policyRef no longer fits.
  await reboot(machine);
  await measureBoot(machine);
  await assert.rejects(unseal({ ...other, productId: PRODUCT }), refusedWith('device.policy_invalid', /reference does not belong to its product/));
});

test('altered sealed secrets or a policy file with a changed PCR value are refused', async () => {
  const tampered = { ...sealed, ciphertext: sealed.ciphertext.slice(0, -2) + (sealed.ciphertext.endsWith('00') ? '01' : '00') };
  await assert.rejects(
    bootUnseal(machine.tpm, { trust: vendor.trust, policy: JSON.stringify(policyV1), sealed: JSON.stringify(tampered) }),
    refusedWith('device.secrets_tampered'),
  );
  await reboot(machine);
  await measureBoot(machine);
  const values = structuredClone(policyV1.pcrs);
  values[0].values['7'] = '11'.repeat(32);
  await assert.rejects(unseal({ ...policyV1, pcrs: values }), refusedWith('device.policy_invalid', /does not match the PCRs and release/));
});

test('sinks: a 0600 file, stdout, and the kernel keyring (or a typed error without keyctl)', async () => {
  const result = await unseal(policyV1);
  const file = path.join(vendor.dir, 'disk.key');
  const delivered = await deliverSecret('disk', result.secrets.get('disk')!, parseSink(`disk=file:${file}`).sink);
  assert.deepEqual(delivered, { name: 'disk', sink: 'file', where: file });
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(new Uint8Array(await readFile(file)), secrets.disk);
  const written: Uint8Array[] = [];
  await deliverSecret('disk', secrets.disk, { kind: 'stdout' }, { write: (d) => written.push(d) });
  assert.deepEqual(written, [secrets.disk]);
  assert.deepEqual(parseSink('svc=keyring').sink, { kind: 'keyring', description: 'sigil:svc' });
  assert.throws(() => parseSink('disk=tcp:1.2.3.4'), refusedWith('cli.usage_sink'));
  await assert.rejects(addToKeyring('sigil:test', secrets.disk, 'keyctl-that-does-not-exist'), refusedWith('env.keyring_unavailable', /keyutils/));
  await assert.rejects(assertKeyringAvailable('keyctl-that-does-not-exist'), refusedWith('env.keyring_unavailable', /keyutils/));
});

// Last: it raises the floor, which every later test would have to follow.
test('bumping the release floor revokes every older signed policy, in software and in the TPM', async () => {
  const v3 = await sign(3);
  const v2 = await sign(2);
  // Committing release 3 at boot raises the floor (the update is kept).
  const committed = await unseal(v3, { commitRelease: true });
  assert.equal(committed.floor, 3);
  await reboot(machine);
  await measureBoot(machine);
  assert.equal(await readReleaseFloor(machine.tpm), 3, 'the floor survives the power cycle');
  await assert.rejects(unseal(v2), refusedWith('device.release_rolled_back', /release 2, older than this device's lowest accepted release 3/));
  await reboot(machine);
  await measureBoot(machine);
  await assert.rejects(unsealSecrets(machine.tpm, vendor.trust, parseBootPolicy(JSON.stringify(v2)), parseSealedSecrets(JSON.stringify(sealed))), refusedWith('device.release_rolled_back'));
  await reboot(machine);
  await measureBoot(machine);
  assert.deepEqual((await unseal(v3)).secrets.get('disk'), secrets.disk, 'the current release still unseals');
  assert.equal(await advanceReleaseFloor(machine.tpm, 3), 3, 'advancing to the current floor changes nothing');
});
