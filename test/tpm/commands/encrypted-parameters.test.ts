/**
 * The encryptableCommand / encryptableResponse flags of this stack's commands, checked by the TPM:
 * each command runs with a salted session that encrypts exactly what its flags claim. A flag set
 * on a command whose first parameter is not a TPM2B makes the TPM answer TPM_RC_ATTRIBUTES; a
 * wrong cipher makes the results wrong. Either way the assertions below would fail.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { concatBytes, utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import type { Command } from '../../../src/tpm/command.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_ALG, TPM_RH, TPM_ST, TPMA_OBJECT } from '../../../src/tpm/constants.ts';
import { ecdhKeyGen, ecdhZGen, oaepLabel, rsaDecrypt, rsaEncrypt } from '../../../src/tpm/commands/asymmetric.ts';
import { certify, certifyCreation, quote, sign, verifySignature } from '../../../src/tpm/commands/attestation.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { activateCredential, makeCredential } from '../../../src/tpm/commands/credential.ts';
import { importObject } from '../../../src/tpm/commands/duplication.ts';
import { hierarchyChangeAuth } from '../../../src/tpm/commands/hierarchy.ts';
import { create, createPrimary, load, loadExternal, type CreatePrimaryResult } from '../../../src/tpm/commands/object.ts';
import { marshal } from '../../../src/tpm/marshal/codec.ts';
import { keyObjectToTpmPublic, keyObjectToTpmSensitive, verifyTpmSignature } from '../../../src/tpm/public-key.ts';
import { HmacSession } from '../../../src/tpm/session/hmac.ts';
import { TPM2B_SENSITIVE } from '../../../src/tpm/structures/sensitive.ts';
import type { TpmPublic } from '../../../src/tpm/structures/public.ts';
import { akEccP256Template, eccEcdhTemplate, eccSigningTemplate, rsaDecryptionTemplate, srkEccP256Template } from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;
let srk: CreatePrimaryResult;
let session: HmacSession;

before(async () => {
  fixture = await TpmFixture.start();
  srk = await fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() }));
  session = await HmacSession.start(fixture.tpm, { salt: { handle: srk.handle, publicArea: srk.outPublic } });
});

after(async () => {
  if (session) await session.flush(fixture.tpm);
  if (srk) await fixture.tpm.run(flushContext(srk.handle));
  await fixture?.stop();
});

/** Run with the extra session encrypting exactly what the command's flags say may be encrypted. */
function runEncrypted<R>(command: Command<R>): Promise<R> {
  assert.ok(command.encryptableCommand || command.encryptableResponse, 'only commands with something to encrypt');
  session.decrypt = command.encryptableCommand;
  session.encrypt = command.encryptableResponse;
  return fixture.tpm.run(command, { extraSessions: [session] });
}

async function withChild<R>(template: TpmPublic, body: (handle: number, publicArea: TpmPublic, name: Uint8Array) => Promise<R>): Promise<R> {
  const created = await fixture.tpm.run(create(auth(srk.handle), { inPublic: template }));
  return withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), created.outPrivate, created.outPublic)), (key) =>
    body(key.handle, created.outPublic, key.name),
  );
}

const sha256 = (data: Uint8Array) => new Uint8Array(createHash('sha256').update(data).digest());

test('Quote, Certify, CertifyCreation, Sign, VerifySignature with encrypted parameters', async () => {
  await withChild(akEccP256Template(), async (ak, akPublic) => {
    const nonce = new Uint8Array(randomBytes(32));
    const quoted = await runEncrypted(quote(auth(ak), nonce, [{ hash: TPM_ALG.SHA256, pcrs: [0, 1, 2] }]));
    assert.deepEqual(quoted.attest.extraData, nonce);
    assert.equal(verifyTpmSignature(akPublic, quoted.attestBytes, quoted.signature), true);

    const created = await fixture.tpm.run(create(auth(srk.handle), { inPublic: eccSigningTemplate() }));
    await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), created.outPrivate, created.outPublic)), async (key) => {
      const certified = await runEncrypted(certify(auth(key.handle), auth(ak), nonce));
      assert.ok(certified.attest.attested.type === TPM_ST.ATTEST_CERTIFY && certified.attest.extraData.length === 32);
      assert.equal(verifyTpmSignature(akPublic, certified.attestBytes, certified.signature), true);

      const creation = await runEncrypted(certifyCreation(auth(ak), key.handle, nonce, created.creationHash, created.creationTicket));
      assert.ok(creation.attest.attested.type === TPM_ST.ATTEST_CREATION);
      assert.deepEqual(creation.attest.attested.creationHash, created.creationHash);

      const message = utf8.encode('encrypted digest');
      const signCommand = sign(auth(key.handle), sha256(message));
      assert.equal(signCommand.encryptableResponse, false, 'TPMT_SIGNATURE is not a TPM2B');
      const signature = await runEncrypted(signCommand);
      assert.equal(verifyTpmSignature(created.outPublic, message, signature), true);
      const ticket = await runEncrypted(verifySignature(key.handle, sha256(message), signature));
      assert.equal(ticket.tag, TPM_ST.VERIFIED);

      // The TPM itself refuses response encryption where the first response parameter is not a TPM2B.
      session.decrypt = false;
      session.encrypt = true;
      await assert.rejects(fixture.tpm.run(signCommand, { extraSessions: [session] }), (e: unknown) => isSigilError(e, 'tpm.rc.attributes'));
    });
  });
});

test('RSA_Encrypt / RSA_Decrypt and ECDH_KeyGen / ECDH_ZGen with encrypted parameters', async () => {
  await withChild(rsaDecryptionTemplate(), async (key) => {
    const scheme = { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA256 };
    const message = new Uint8Array(randomBytes(32));
    const encrypted = await runEncrypted(rsaEncrypt(key, message, scheme, oaepLabel('enc')));
    assert.deepEqual(await runEncrypted(rsaDecrypt(auth(key), encrypted, scheme, oaepLabel('enc'))), message);
  });
  await withChild(eccEcdhTemplate(), async (key, publicArea) => {
    if (publicArea.type !== TPM_ALG.ECC) throw new Error('unreachable');
    const peer = createECDH('prime256v1');
    const peerPoint = new Uint8Array(peer.generateKeys());
    const z = await runEncrypted(ecdhZGen(auth(key), { x: peerPoint.subarray(1, 33), y: peerPoint.subarray(33) }));
    assert.deepEqual(z.x, new Uint8Array(peer.computeSecret(concatBytes(new Uint8Array([4]), publicArea.unique.x, publicArea.unique.y))));
    const generated = await runEncrypted(ecdhKeyGen(key));
    assert.deepEqual(await runEncrypted(ecdhZGen(auth(key), generated.pubPoint)), generated.zPoint);
  });
});

test('MakeCredential / ActivateCredential, Import and HierarchyChangeAuth with encrypted parameters', async () => {
  await withChild(akEccP256Template(), async (ak, _akPublic, akName) => {
    const secret = new Uint8Array(randomBytes(20));
    const credential = await withLoaded(fixture.tpm, fixture.tpm.run(loadExternal(srk.outPublic, TPM_RH.NULL)), (external) =>
      runEncrypted(makeCredential(external.handle, secret, akName)),
    );
    assert.deepEqual(await runEncrypted(activateCredential(auth(ak), auth(srk.handle), credential)), secret);
  });

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const objectPublic = keyObjectToTpmPublic(privateKey, { objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign, scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 } });
  const outPrivate = await runEncrypted(importObject(auth(srk.handle), { objectPublic, duplicate: marshal(TPM2B_SENSITIVE, keyObjectToTpmSensitive(privateKey)) }));
  await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), outPrivate, objectPublic)), async (key) => {
    const message = utf8.encode('imported through an encrypted session');
    assert.equal(verifyTpmSignature(publicKey, message, await fixture.tpm.run(sign(auth(key.handle), sha256(message)))), true);
  });

  const password = utf8.encode('sent encrypted');
  await runEncrypted(hierarchyChangeAuth(auth(TPM_RH.ENDORSEMENT), password));
  try {
    await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.ENDORSEMENT, password), { inPublic: srkEccP256Template() })), async (key) => {
      assert.ok(key.handle >>> 24 === 0x80, 'the new password, decrypted by the TPM, authorizes');
    });
  } finally {
    await fixture.tpm.run(hierarchyChangeAuth(auth(TPM_RH.ENDORSEMENT, password), new Uint8Array(0)));
  }
});
