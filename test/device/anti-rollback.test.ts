/**
 * Anti-rollback and product binding on swtpm: the release floor is a TPM NV counter; a signed
 * release N is accepted and raises it, N-1 is refused afterwards, the counter survives a power
 * cycle, and releases for another product, by another signer or expired are refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { isSigilError } from '../../src/core/errors.ts';
import { issueCertificate } from '../../src/device/certificates.ts';
import { RELEASE_FLOOR_NV_INDEX } from '../../src/device/identifiers.ts';
import { acceptRelease, signRelease } from '../../src/device/release.ts';
import { advanceReleaseFloor, defineReleaseFloor, readReleaseFloor, releaseFloorName, MAX_FLOOR_STEP } from '../../src/device/release-floor.ts';
import { nvPublic, nvCounterIncrement, nvDefine, nvUndefine } from '../../src/tpm/tpm-nv.ts';
import { makeVendor, provision, reboot, startMachine, OTHER_PRODUCT, PRODUCT, type Machine, type VendorFixture } from './support.ts';

let vendor: VendorFixture;
let machine: Machine;

before(async () => {
  vendor = await makeVendor();
  machine = await startMachine();
  await provision(machine, vendor, 'SN-ROLL-1');
});

after(async () => {
  await machine?.stop();
  await vendor?.remove();
});

function refusedWith(code: string, pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(isSigilError(error, code), `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

const release = (n: number, productId = PRODUCT, extra: { expires?: string; signer?: string } = {}) =>
  JSON.stringify(
    signRelease(
      { productId, release: n, issuedAt: new Date().toISOString(), expires: extra.expires, content: { note: `release ${n}` } },
      vendor.keyset.productKey(extra.signer ?? productId),
      vendor.keyset.productCertificate(extra.signer ?? productId),
    ),
  );

test('the floor is the counter the signed policies name, defined by provisioning at release 1', async () => {
  const { nvPublic: info, nvName } = await nvPublic(machine.tpm, RELEASE_FLOOR_NV_INDEX);
  assert.equal(info.dataSize, 8);
  assert.deepEqual(nvName, await releaseFloorName(), 'the name every signed policy binds is the name the TPM reports');
  assert.equal(await readReleaseFloor(machine.tpm), 1);
});

test('release N is accepted; N-1 is refused after N; the counter survives a reboot', async () => {
  assert.deepEqual(await acceptRelease(machine.tpm, vendor.trust, release(2)).then((r) => r.floor), 2);
  const accepted = await acceptRelease(machine.tpm, vendor.trust, release(3));
  assert.equal(accepted.floor, 3);
  assert.deepEqual(accepted.statement.content, { note: 'release 3' });
  await assert.rejects(acceptRelease(machine.tpm, vendor.trust, release(2)), refusedWith('device.release_rolled_back', /release 2, older than this device's lowest accepted release 3/));
  await reboot(machine);
  assert.equal(await readReleaseFloor(machine.tpm), 3, 'the floor survives the power cycle');
  await assert.rejects(acceptRelease(machine.tpm, vendor.trust, release(2)), refusedWith('device.release_rolled_back'));
  assert.equal((await acceptRelease(machine.tpm, vendor.trust, release(3))).floor, 3, 'the current release is still accepted');
});

test('a manifest for another product, by another signer, expired or forged is refused with a clear error', async () => {
  await assert.rejects(acceptRelease(machine.tpm, vendor.trust, release(4, OTHER_PRODUCT)), refusedWith('device.product_mismatch', /for product acme-cam, but this device is product acme-gw/));
  // The other product's key signing a statement that claims this product.
  const crossSigned = JSON.parse(release(4, PRODUCT));
  const other = JSON.parse(release(4, OTHER_PRODUCT));
  await assert.rejects(
    acceptRelease(machine.tpm, vendor.trust, JSON.stringify({ ...crossSigned, certificate: other.certificate })),
    refusedWith('device.product_mismatch', /signed with the certificate of product acme-cam/),
  );
  // A look-alike certificate from a CA the vendor never made.
  const rogueKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const rogueCa = await issueCertificate({ role: 'product-ca', commonName: 'Acme Devices product CA', vendor: 'Acme Devices', subjectKey: rogueKey, issuerKey: rogueKey });
  const rogueCert = await issueCertificate({ role: 'product', commonName: 'rogue', vendor: 'Acme Devices', productId: PRODUCT, subjectKey: rogueKey, issuerKey: rogueKey, issuerCertificate: rogueCa });
  const forged = signRelease({ productId: PRODUCT, release: 4, issuedAt: new Date().toISOString() }, rogueKey, rogueCert);
  await assert.rejects(acceptRelease(machine.tpm, vendor.trust, JSON.stringify(forged)), refusedWith('device.release_signer_untrusted'));
  // Same payload, signature flipped.
  const good = JSON.parse(release(4));
  const signature = Buffer.from(good.signature, 'base64');
  signature[signature.length - 1] ^= 1;
  await assert.rejects(acceptRelease(machine.tpm, vendor.trust, JSON.stringify({ ...good, signature: signature.toString('base64') })), refusedWith('device.release_signature_invalid'));
  await assert.rejects(acceptRelease(machine.tpm, vendor.trust, release(4, PRODUCT, { expires: '2020-01-01T00:00:00Z' })), refusedWith('device.release_expired'));
  assert.equal(await readReleaseFloor(machine.tpm), 3, 'no refused release moved the floor');
});

test('the floor never moves down, nor jumps further than the per-step limit', async () => {
  await assert.rejects(advanceReleaseFloor(machine.tpm, 2), refusedWith('device.release_rolled_back'));
  await assert.rejects(advanceReleaseFloor(machine.tpm, 3 + MAX_FLOOR_STEP + 1), refusedWith('device.release_step_too_large'));
  // Only the (escrowed) owner can undefine the counter; with the empty authorization it stays.
  await assert.rejects(nvUndefine(machine.tpm, RELEASE_FLOOR_NV_INDEX), (e: unknown) => isSigilError(e) && /^tpm\.rc\.(bad_auth|auth_fail)/.test(e.code));
  assert.equal(await readReleaseFloor(machine.tpm), 3);
});

test('a TPM whose counters already ran higher cannot be provisioned at a lower release', async () => {
  const fresh = await startMachine();
  try {
    // A counter that reached 5 and was deleted: the next counter on this TPM starts above 5.
    await nvDefine(fresh.tpm, { index: 0x01500150, counter: true });
    for (let i = 0; i < 5; i++) await nvCounterIncrement(fresh.tpm, 0x01500150);
    await nvUndefine(fresh.tpm, 0x01500150);
    await assert.rejects(defineReleaseFloor(fresh.tpm, 1), refusedWith('device.release_floor_too_high', /starts at 6, above the initial release 1/));
  } finally {
    await fresh.stop();
  }
});
