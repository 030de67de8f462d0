/** HierarchyChangeAuth and the dictionary-attack commands against swtpm (Clear has its own swtpm in clear.test.ts). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_CAP, TPM_PT_VAR, TPM_RH, TPMA_PERMANENT } from '../../../src/tpm/constants.ts';
import { dictionaryAttackLockReset, dictionaryAttackParameters, hierarchyChangeAuth } from '../../../src/tpm/commands/hierarchy.ts';
import { create, createPrimary, load, unseal } from '../../../src/tpm/commands/object.ts';
import { getCapability } from '../../../src/tpm/commands/startup.ts';
import { sealedDataTemplate, srkEccP256Template } from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;

before(async () => {
  fixture = await TpmFixture.start();
});

after(async () => {
  await fixture?.stop();
});

async function variableProperty(property: number): Promise<number> {
  const { data } = await fixture.tpm.run(getCapability(TPM_CAP.TPM_PROPERTIES, property, 1));
  assert.equal(data.capability, TPM_CAP.TPM_PROPERTIES);
  const found = data.capability === TPM_CAP.TPM_PROPERTIES ? data.properties.find((p) => p.property === property) : undefined;
  assert.ok(found, `property 0x${property.toString(16)} reported`);
  return found.value;
}

for (const [label, hierarchy, flag] of [
  ['owner', TPM_RH.OWNER, TPMA_PERMANENT.ownerAuthSet],
  ['endorsement', TPM_RH.ENDORSEMENT, TPMA_PERMANENT.endorsementAuthSet],
] as const) {
  test(`HierarchyChangeAuth sets the ${label} password, which then guards CreatePrimary, and resets it to empty`, async () => {
    const password = utf8.encode(`${label} password`);
    assert.equal((await variableProperty(TPM_PT_VAR.PERMANENT)) & flag, 0);
    await fixture.tpm.run(hierarchyChangeAuth(auth(hierarchy), password));
    try {
      assert.equal((await variableProperty(TPM_PT_VAR.PERMANENT)) & flag, flag);
      await assert.rejects(fixture.tpm.run(createPrimary(auth(hierarchy), { inPublic: srkEccP256Template() })), (e: unknown) =>
        isSigilError(e, 'tpm.rc.bad_auth'),
      );
      await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(hierarchy, password), { inPublic: srkEccP256Template() })), async (key) => {
        assert.ok(key.handle >>> 24 === 0x80);
      });
    } finally {
      await fixture.tpm.run(hierarchyChangeAuth(auth(hierarchy, password), new Uint8Array(0)));
    }
    assert.equal((await variableProperty(TPM_PT_VAR.PERMANENT)) & flag, 0);
  });
}

test('DictionaryAttackParameters sets the DA limits; a failed password counts; DictionaryAttackLockReset clears it', async () => {
  await fixture.tpm.run(dictionaryAttackParameters(auth(TPM_RH.LOCKOUT), { maxTries: 7, recoveryTime: 600, lockoutRecovery: 900 }));
  assert.equal(await variableProperty(TPM_PT_VAR.MAX_AUTH_FAIL), 7);
  assert.equal(await variableProperty(TPM_PT_VAR.LOCKOUT_INTERVAL), 600);
  assert.equal(await variableProperty(TPM_PT_VAR.LOCKOUT_RECOVERY), 900);
  assert.equal(await variableProperty(TPM_PT_VAR.LOCKOUT_COUNTER), 0);

  await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() })), async (srk) => {
    // A sealed object without noDA is DA-protected: a wrong password is an authorization failure.
    const sealed = await fixture.tpm.run(create(auth(srk.handle), { inPublic: sealedDataTemplate(), inSensitive: { userAuth: utf8.encode('right'), data: utf8.encode('x') } }));
    await withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), sealed.outPrivate, sealed.outPublic)), async (object) => {
      for (let i = 1; i <= 2; i++) {
        await assert.rejects(fixture.tpm.run(unseal(auth(object.handle, utf8.encode('wrong')))), (e: unknown) => isSigilError(e, 'tpm.rc.auth_fail'));
        assert.equal(await variableProperty(TPM_PT_VAR.LOCKOUT_COUNTER), i);
      }
    });
  });
  await fixture.tpm.run(dictionaryAttackLockReset(auth(TPM_RH.LOCKOUT)));
  assert.equal(await variableProperty(TPM_PT_VAR.LOCKOUT_COUNTER), 0);
});
