/** RSA_Encrypt / RSA_Decrypt and ECDH_KeyGen / ECDH_ZGen against swtpm, cross-checked with node:crypto. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createECDH, publicEncrypt, randomBytes } from 'node:crypto';
import { concatBytes, utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_ALG, TPM_RH } from '../../../src/tpm/constants.ts';
import { ecdhKeyGen, ecdhZGen, oaepLabel, rsaDecrypt, rsaEncrypt } from '../../../src/tpm/commands/asymmetric.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { create, createPrimary, load, type CreatePrimaryResult } from '../../../src/tpm/commands/object.ts';
import { tpmPublicToKeyObject } from '../../../src/tpm/public-key.ts';
import type { TpmPublic } from '../../../src/tpm/structures/public.ts';
import { eccEcdhTemplate, rsaDecryptionTemplate, srkEccP256Template } from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;
let srk: CreatePrimaryResult;

before(async () => {
  fixture = await TpmFixture.start();
  srk = await fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() }));
});

after(async () => {
  if (srk) await fixture.tpm.run(flushContext(srk.handle));
  await fixture?.stop();
});

async function withChild<R>(template: TpmPublic, body: (handle: number, publicArea: TpmPublic) => Promise<R>): Promise<R> {
  const created = await fixture.tpm.run(create(auth(srk.handle), { inPublic: template }));
  return withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), created.outPrivate, created.outPublic)), (key) =>
    body(key.handle, created.outPublic),
  );
}

const OAEP_SHA256 = { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA256 };

test('oaepLabel appends the zero byte the TPM requires', () => {
  assert.deepEqual(oaepLabel('ab'), new Uint8Array([0x61, 0x62, 0]));
  assert.deepEqual(oaepLabel(''), new Uint8Array([0]));
});

test('RSA OAEP-SHA256 with a label: TPM and node encrypt, the TPM decrypts', async () => {
  await withChild(rsaDecryptionTemplate(), async (handle, publicArea) => {
    const message = utf8.encode('a 32-byte data encryption key!!!');
    const label = oaepLabel('sigil disk key');

    const fromTpm = await fixture.tpm.run(rsaEncrypt(handle, message, OAEP_SHA256, label));
    assert.equal(fromTpm.length, 256);
    assert.deepEqual(await fixture.tpm.run(rsaDecrypt(auth(handle), fromTpm, OAEP_SHA256, label)), message);

    const fromNode = publicEncrypt(
      { key: tpmPublicToKeyObject(publicArea), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label },
      message,
    );
    assert.deepEqual(await fixture.tpm.run(rsaDecrypt(auth(handle), new Uint8Array(fromNode), OAEP_SHA256, label)), message);

    // The label is bound into the padding: another label does not decrypt. The spec says
    // TPM_RC_VALUE; libtpms built on OpenSSL answers TPM_RC_FAILURE (and stays operational).
    await assert.rejects(fixture.tpm.run(rsaDecrypt(auth(handle), fromTpm, OAEP_SHA256, oaepLabel('other'))), (e: unknown) =>
      isSigilError(e) && ['tpm.rc.value', 'tpm.rc.failure'].includes(e.code),
    );
    assert.deepEqual(await fixture.tpm.run(rsaDecrypt(auth(handle), fromTpm, OAEP_SHA256, label)), message, 'the TPM still works');
    // A label without its terminating zero is refused outright.
    await assert.rejects(fixture.tpm.run(rsaEncrypt(handle, message, OAEP_SHA256, utf8.encode('no zero'))), (e: unknown) =>
      isSigilError(e, 'tpm.rc.value'),
    );
  });
});

test('RSAES (PKCS#1 v1.5) round trip, scheme chosen per call', async () => {
  await withChild(rsaDecryptionTemplate(), async (handle) => {
    const message = randomBytes(48);
    const encrypted = await fixture.tpm.run(rsaEncrypt(handle, message, { scheme: TPM_ALG.RSAES }));
    assert.deepEqual(await fixture.tpm.run(rsaDecrypt(auth(handle), encrypted, { scheme: TPM_ALG.RSAES })), new Uint8Array(message));
  });
});

test('ECDH_ZGen gives the same shared secret as node ECDH with the same peer key', async () => {
  await withChild(eccEcdhTemplate(), async (handle, publicArea) => {
    assert.equal(publicArea.type, TPM_ALG.ECC);
    if (publicArea.type !== TPM_ALG.ECC) return;
    const peer = createECDH('prime256v1');
    const peerPoint = new Uint8Array(peer.generateKeys());
    const inPoint = { x: peerPoint.subarray(1, 33), y: peerPoint.subarray(33, 65) };
    const outPoint = await fixture.tpm.run(ecdhZGen(auth(handle), inPoint));
    const tpmPoint = concatBytes(new Uint8Array([4]), publicArea.unique.x, publicArea.unique.y);
    const nodeZ = new Uint8Array(peer.computeSecret(tpmPoint));
    assert.deepEqual(outPoint.x, nodeZ);
    assert.equal(outPoint.y.length, 32);

    // KeyGen: the TPM's ephemeral point run back through ZGen gives the same Z (d·(e·G) = e·(d·G)).
    const { zPoint, pubPoint } = await fixture.tpm.run(ecdhKeyGen(handle));
    assert.deepEqual(await fixture.tpm.run(ecdhZGen(auth(handle), pubPoint)), zPoint);

    // A point off the curve is refused.
    const bad = { x: inPoint.x, y: inPoint.y.slice() };
    bad.y[31] ^= 1;
    await assert.rejects(fixture.tpm.run(ecdhZGen(auth(handle), bad)), (e: unknown) => isSigilError(e, 'tpm.rc.ecc_point'));
  });
});
