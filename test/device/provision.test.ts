/**
 * Manufacturing on swtpm (made with EK certificates by swtpm_setup): the TPM-resident identity key
 * (fixedTPM | fixedParent; duplication and export fail), the device certificate (chains to the
 * manufacturing CA — checked by Sigil and by `openssl verify` — and carries product ID and serial
 * where documented, also in NV), ownership taken with escrowed random authorizations, and a
 * provisioning record a broker can verify. tpm2-tools read the same TPM as a second opinion.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { isSigilError } from '../../src/core/errors.ts';
import { toHex } from '../../src/core/hex.ts';
import { platformClaims, verifyChain } from '../../src/device/certificates.ts';
import { IDENTITY_KEY_ATTRIBUTES, identityKeyTemplate, readDeviceCertificate, readDeviceIdentity } from '../../src/device/device-identity.ts';
import { openOwnershipEscrow, parseProvisioningRecord, verifyProvisioningRecord, type ProvisioningRecord } from '../../src/device/provisioning-record.ts';
import { provisionDevice } from '../../src/device/provision.ts';
import { readReleaseFloor } from '../../src/device/release-floor.ts';
import { auth } from '../../src/tpm/command.ts';
import { contextSave, evictControl, flushContext } from '../../src/tpm/commands/context.ts';
import { duplicate } from '../../src/tpm/commands/duplication.ts';
import { dictionaryAttackLockReset } from '../../src/tpm/commands/hierarchy.ts';
import { create, load } from '../../src/tpm/commands/object.ts';
import { TPM_CC, TPM_RH, TPMA_OBJECT } from '../../src/tpm/constants.ts';
import { PolicyCalculator } from '../../src/tpm/policy/index.ts';
import { PolicySession } from '../../src/tpm/session/policy.ts';
import { SRK_PERSISTENT_HANDLE } from '../../src/tpm/tpm-keys.ts';
import { nvDefine, nvUndefine } from '../../src/tpm/tpm-nv.ts';
import { Tpm } from '../../src/tpm/tpm.ts';
import { makeVendor, provision, startMachine, PRODUCT, type Machine, type VendorFixture } from './support.ts';

const exec = promisify(execFile);
let vendor: VendorFixture;
let machine: Machine;
let recordJson: Record<string, unknown>;
let record: ProvisioningRecord;

before(async () => {
  vendor = await makeVendor({ passphrase: 'factory floor passphrase' });
  machine = await startMachine();
  recordJson = (await provision(machine, vendor, 'SN-0042')).record;
  record = parseProvisioningRecord(JSON.stringify(recordJson));
});

after(async () => {
  await machine?.stop();
  await vendor?.remove();
});

function refusedWith(code: string | RegExp) {
  return (error: unknown) => {
    const ok = isSigilError(error) && (typeof code === 'string' ? error.code === code : code.test(error.code));
    assert.ok(ok, `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    return true;
  };
}

/** Run tpm2-tools against the machine; the Sigil connection is closed meanwhile. */
async function tools(...args: string[]): Promise<string> {
  await machine.tpm.close();
  try {
    const { stdout } = await exec(args[0], args.slice(1), { env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${machine.swtpm.serverPort}` } });
    return stdout;
  } finally {
    machine.tpm = new Tpm(machine.swtpm.transport());
  }
}

test('the identity key is TPM-resident at 0x81000003: fixedTPM | fixedParent | sensitiveDataOrigin, signing, under the SRK', async () => {
  const { publicArea, name } = await machine.tpm.readPublic(0x81000003);
  assert.equal(publicArea.objectAttributes, IDENTITY_KEY_ATTRIBUTES);
  for (const bit of [TPMA_OBJECT.fixedTPM, TPMA_OBJECT.fixedParent, TPMA_OBJECT.sensitiveDataOrigin, TPMA_OBJECT.sign]) assert.ok(publicArea.objectAttributes & bit);
  assert.equal(publicArea.objectAttributes & (TPMA_OBJECT.decrypt | TPMA_OBJECT.restricted), 0);
  assert.deepEqual(name, record.identityKey.name);
  const readpublic = await tools('tpm2_readpublic', '-c', '0x81000003');
  assert.match(readpublic, /attributes:\s*\n\s*value: fixedtpm\|fixedparent\|sensitivedataorigin\|userwithauth\|noda\|sign\s*\n\s*raw: 0x40472/);
  assert.match(readpublic, new RegExp(`^name: ${toHex(name)}$`, 'm'), 'tpm2-tools names the key as Sigil does');
  assert.ok(await machine.tpm.persistentExists(SRK_PERSISTENT_HANDLE), 'the SRK is persistent too');
});

test('the identity key cannot be duplicated, context-saved, or evicted without the escrowed owner authorization', async () => {
  // Duplicate needs the DUP role, which only a policy session gives; the key has no policy at all.
  const session = await PolicySession.start(machine.tpm.client);
  try {
    await session.policyCommandCode(TPM_CC.Duplicate);
    await assert.rejects(machine.tpm.client.run(duplicate({ handle: 0x81000003, session }, TPM_RH.NULL)), refusedWith(/^tpm\.rc\.policy/));
  } finally {
    await session.flush(machine.tpm.client);
  }
  // Even a key of the same template whose policy allows Duplicate is refused for fixedParent:
  // the attribute, not only the missing policy, is what keeps the identity key in this TPM.
  const allowDuplicate = await new PolicyCalculator().policyCommandCode(TPM_CC.Duplicate).digest();
  for (const [attributes, expected] of [
    [IDENTITY_KEY_ATTRIBUTES, /^tpm\.rc\.attributes/],
    [IDENTITY_KEY_ATTRIBUTES & ~(TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent), null],
  ] as const) {
    const template = { ...identityKeyTemplate(), objectAttributes: attributes, authPolicy: allowDuplicate };
    const created = await machine.tpm.client.run(create(auth(SRK_PERSISTENT_HANDLE), { inPublic: template }));
    const loaded = await machine.tpm.client.run(load(auth(SRK_PERSISTENT_HANDLE), created.outPrivate, created.outPublic));
    const dup = await PolicySession.start(machine.tpm.client);
    try {
      await dup.policyCommandCode(TPM_CC.Duplicate);
      const attempt = machine.tpm.client.run(duplicate({ handle: loaded.handle, session: dup }, TPM_RH.NULL));
      if (expected) await assert.rejects(attempt, refusedWith(expected));
      else assert.ok((await attempt).duplicate.length > 0, 'the same template without fixedTPM/fixedParent duplicates');
    } finally {
      await dup.flush(machine.tpm.client).catch(() => undefined);
      await machine.tpm.client.run(flushContext(loaded.handle));
    }
  }
  await assert.rejects(machine.tpm.client.run(contextSave(0x81000003)), refusedWith(/^tpm\.rc\./));
  await assert.rejects(machine.tpm.client.run(evictControl(auth(TPM_RH.OWNER), 0x81000003, 0x81000003)), refusedWith(/^tpm\.rc\.(bad_auth|auth_fail)/));
  // The record carries only public parts: a public area, no TPM2B_PRIVATE anywhere.
  const text = JSON.stringify(recordJson);
  assert.doesNotMatch(text, /"private"/);
});

test('the device certificate chains to the manufacturing CA and carries product ID and serial where documented', async () => {
  const cert = record.deviceCertificate;
  const chain = await verifyChain(cert, { roots: [vendor.trust.root], intermediates: [vendor.trust.manufacturingCa], issuer: vendor.trust.manufacturingCa, code: 'device.certificate', what: 'device certificate' });
  assert.equal(chain.length, 3);
  assert.deepEqual(platformClaims(cert), { vendor: 'Acme Devices', productId: PRODUCT, serial: 'SN-0042' });
  const files = { root: path.join(vendor.dir, 'root.pem'), ca: path.join(vendor.dir, 'mfg.pem'), device: path.join(vendor.dir, 'device.pem') };
  await writeFile(files.root, vendor.trust.root.toString('pem'));
  await writeFile(files.ca, vendor.trust.manufacturingCa.toString('pem'));
  await writeFile(files.device, cert.toString('pem'));
  const verified = await exec('openssl', ['verify', '-CAfile', files.root, '-untrusted', files.ca, files.device]);
  assert.match(verified.stdout, /device\.pem: OK/);
  const text = (await exec('openssl', ['x509', '-in', files.device, '-noout', '-text'])).stdout;
  assert.match(text, /Subject: CN = SN-0042, serialNumber = SN-0042, O = Acme Devices/);
  assert.match(text, /DirName:\/2\.23\.133\.5\.1\.1=Acme Devices\/2\.23\.133\.5\.1\.4=acme-gw\/2\.23\.133\.5\.1\.6=SN-0042/);
  assert.match(text, /Not After : Dec 31 23:59:59 9999 GMT/);
  // The same certificate sits in NV 0x01500100, readable without any authorization.
  assert.deepEqual(await readDeviceCertificate(machine.tpm), new Uint8Array(cert.rawData));
  const identity = await readDeviceIdentity(machine.tpm, vendor.trust);
  assert.equal(identity.productId, PRODUCT);
  assert.equal(identity.serial, 'SN-0042');
  const nvFile = path.join(vendor.dir, 'nv.der');
  await tools('tpm2_nvread', '-C', '0x01500100', '-o', nvFile, '0x01500100');
  const nvText = (await exec('openssl', ['x509', '-inform', 'der', '-in', nvFile, '-noout', '-subject'])).stdout;
  assert.match(nvText, /serialNumber = SN-0042/);
});

test('ownership: hierarchy authorizations are random, escrowed to the vendor, and work when opened', async () => {
  await assert.rejects(nvDefine(machine.tpm, { index: 0x01500200 }), refusedWith(/^tpm\.rc\.(bad_auth|auth_fail)/), 'the empty owner authorization no longer works');
  const auths = openOwnershipEscrow(record, vendor.keyset.privateKey('escrow'));
  assert.deepEqual(Object.keys(auths).sort(), ['lockout', 'owner']);
  assert.equal(auths.owner!.length, 32);
  assert.notDeepEqual(auths.owner, auths.lockout);
  assert.ok(!JSON.stringify(recordJson).includes(toHex(auths.owner!)), 'the record never holds an authorization in clear');
  await nvDefine(machine.tpm, { index: 0x01500200, ownerAuth: auths.owner });
  await nvUndefine(machine.tpm, 0x01500200, auths.owner);
  await machine.tpm.client.run(dictionaryAttackLockReset(auth(TPM_RH.LOCKOUT, auths.lockout)));
  // The escrow only opens for the device it was made for.
  const moved = { ...record, serial: 'SN-0043' };
  assert.throws(() => openOwnershipEscrow(moved, vendor.keyset.privateKey('escrow')), refusedWith('device.escrow_open_failed'));
  assert.equal(await readReleaseFloor(machine.tpm), 1);
});

test('the provisioning record verifies for a broker, and every tampering is caught', async () => {
  await verifyProvisioningRecord(record, { trust: vendor.trust, ekRoots: machine.ekRoots, ekIntermediates: machine.ekIntermediates });
  const reparsed = () => parseProvisioningRecord(JSON.stringify(recordJson));
  const cases: [string, (r: ProvisioningRecord) => void, string][] = [
    ['another serial', (r) => (r.serial = 'SN-9999'), 'device.record_inconsistent'],
    ['identity key swapped for the AK', (r) => (r.identityKey = { ...r.attestationKey, handle: 0x81000003 }), 'device.identity_key_invalid'],
    ['certification signature altered', (r) => {
      const sig = r.identityCertification.signature;
      if ('r' in sig) sig.r[5] ^= 1;
    }, 'device.certification_invalid'],
    ['certification of another product', (r) => (r.identityCertification.qualifyingData = new Uint8Array(32)), 'device.certification_invalid'],
    ['EK name altered', (r) => (r.endorsementKey.name = new Uint8Array(34)), 'device.record_inconsistent'],
    ['device certificate from the product CA chain', (r) => (r.deviceCertificate = vendor.keyset.productCertificate(PRODUCT)), 'device.certificate_untrusted'],
  ];
  for (const [what, change, code] of cases) {
    const copy = reparsed();
    change(copy);
    await assert.rejects(verifyProvisioningRecord(copy, { trust: vendor.trust }), refusedWith(code), what);
  }
  // EK roots that are not the TPM vendor's.
  await assert.rejects(verifyProvisioningRecord(reparsed(), { trust: vendor.trust, ekRoots: [vendor.trust.root] }), refusedWith('tpm.ek_cert_untrusted'));
});

test('provisioning refuses a provisioned TPM, a missing EK CA, and an EK certificate from an unknown CA', async () => {
  await assert.rejects(provision(machine, vendor, 'SN-0042'), refusedWith('device.already_provisioned'));
  await assert.rejects(provisionDevice(machine.tpm, { keyset: vendor.keyset, productId: PRODUCT, serial: 'SN-1' }), refusedWith('device.ek_ca_required'));
  const fresh = await startMachine();
  try {
    await assert.rejects(provisionDevice(fresh.tpm, { keyset: vendor.keyset, productId: PRODUCT, serial: 'SN-2', ekRoots: machine.ekRoots, ekIntermediates: machine.ekIntermediates }), refusedWith('tpm.ek_cert_untrusted'));
    await assert.rejects(provisionDevice(fresh.tpm, { keyset: vendor.keyset, productId: 'no-such-product', serial: 'SN-2', allowUnverifiedEk: true }), refusedWith('device.product_unknown'));
    assert.equal(await fresh.tpm.persistentExists(0x81000003), false, 'nothing was created on a refused TPM');
  } finally {
    await fresh.stop();
  }
});
