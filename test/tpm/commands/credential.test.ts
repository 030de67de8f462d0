/**
 * MakeCredential / ActivateCredential against swtpm: the TPM plays the CA (MakeCredential on a
 * public key loaded with LoadExternal) and the device (ActivateCredential), so the blob format is
 * the TPM's own. Protectors: a storage key (password auth) and the EK itself (PolicySecret).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isSigilError } from '../../../src/core/errors.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_RH } from '../../../src/tpm/constants.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { activateCredential, makeCredential, type Credential } from '../../../src/tpm/commands/credential.ts';
import { create, createPrimary, load, loadExternal } from '../../../src/tpm/commands/object.ts';
import { PolicySession } from '../../../src/tpm/session/policy.ts';
import type { TpmPublic } from '../../../src/tpm/structures/public.ts';
import { akEccP256Template, akRsa2048Template, ekEccP256Template, ekRsa2048Template, srkEccP256Template, srkRsa2048Template } from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;

before(async () => {
  fixture = await TpmFixture.start();
});

after(async () => {
  await fixture?.stop();
});

/** The CA side: only the protector's public area and the credentialed object's name are needed. */
async function makeCredentialFor(protector: TpmPublic, secret: Uint8Array, objectName: Uint8Array): Promise<Credential> {
  return withLoaded(fixture.tpm, fixture.tpm.run(loadExternal(protector, TPM_RH.NULL)), (external) =>
    fixture.tpm.run(makeCredential(external.handle, secret, objectName)),
  );
}

/** The AK's public area and name (created under an SRK, not yet loaded). */
async function createAk(srkHandle: number, template: TpmPublic) {
  return fixture.tpm.run(create(auth(srkHandle), { inPublic: template }));
}

test('ActivateCredential with a storage key as protector returns the secret (password sessions only)', async () => {
  await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkRsa2048Template() })), async (srk) => {
    const ak = await createAk(srk.handle, akEccP256Template());
    await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), ak.outPrivate, ak.outPublic)), async (loadedAk) => {
      const secret = new Uint8Array(randomBytes(32));
      const credential = await makeCredentialFor(srk.outPublic, secret, loadedAk.name);
      assert.ok(credential.credentialBlob.length > 32 && credential.secret.length === 256, 'HMAC ‖ encIdentity, and an OAEP-wrapped seed');
      assert.deepEqual(await fixture.tpm.run(activateCredential(auth(loadedAk.handle), auth(srk.handle), credential)), secret);

      // A credential made for another name does not open for this AK (its HMAC binds the name).
      const otherName = loadedAk.name.slice();
      otherName[otherName.length - 1] ^= 1;
      const forOther = await makeCredentialFor(srk.outPublic, secret, otherName);
      await assert.rejects(fixture.tpm.run(activateCredential(auth(loadedAk.handle), auth(srk.handle), forOther)), (e: unknown) =>
        isSigilError(e, 'tpm.rc.integrity'),
      );
    });
  });
});

for (const [label, ekTemplate, akTemplate] of [
  ['RSA', ekRsa2048Template(), akRsa2048Template()],
  ['ECC', ekEccP256Template(), akEccP256Template()],
] as const) {
  test(`ActivateCredential with the ${label} EK (PolicySecret(TPM_RH_ENDORSEMENT)) returns the secret`, async () => {
    // swtpm holds three objects: EK, then SRK + AK; the SRK goes once the AK is loaded, which
    // frees the slot LoadExternal needs for MakeCredential.
    const ek = await fixture.tpm.run(createPrimary(auth(TPM_RH.ENDORSEMENT), { inPublic: ekTemplate }));
    try {
      const srk = await fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: label === 'RSA' ? srkRsa2048Template() : srkEccP256Template() }));
      let loadedAk;
      try {
        const ak = await createAk(srk.handle, akTemplate);
        loadedAk = await fixture.tpm.run(load(auth(srk.handle), ak.outPrivate, ak.outPublic));
      } finally {
        await fixture.tpm.run(flushContext(srk.handle));
      }
      try {
        const secret = new Uint8Array(randomBytes(16));
        const credential = await makeCredentialFor(ek.outPublic, secret, loadedAk.name);

        // Without the policy the EK refuses: userWithAuth is clear, so a password cannot act as USER.
        await assert.rejects(fixture.tpm.run(activateCredential(auth(loadedAk.handle), auth(ek.handle), credential)), (e: unknown) =>
          isSigilError(e, 'tpm.rc.auth_unavailable'),
        );

        const session = await PolicySession.start(fixture.tpm);
        try {
          await session.policySecret(auth(TPM_RH.ENDORSEMENT));
          const certInfo = await fixture.tpm.run(activateCredential(auth(loadedAk.handle), { handle: ek.handle, session }, credential));
          assert.deepEqual(certInfo, secret);
        } finally {
          await session.flush(fixture.tpm);
        }
      } finally {
        await fixture.tpm.run(flushContext(loadedAk.handle));
      }
    } finally {
      await fixture.tpm.run(flushContext(ek.handle));
    }
  });
}
