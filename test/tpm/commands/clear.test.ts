/** TPM2_Clear and ClearControl on a swtpm of their own (Clear wipes the owner hierarchy). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_ALG, TPM_CAP, TPM_PT_VAR, TPM_RH, TPMA_NV, TPMA_PERMANENT } from '../../../src/tpm/constants.ts';
import { clear, clearControl, hierarchyChangeAuth } from '../../../src/tpm/commands/hierarchy.ts';
import { nvDefineSpace } from '../../../src/tpm/commands/nv.ts';
import { createPrimary } from '../../../src/tpm/commands/object.ts';
import { getCapability } from '../../../src/tpm/commands/startup.ts';
import { marshal } from '../../../src/tpm/marshal/codec.ts';
import { TPMT_PUBLIC } from '../../../src/tpm/structures/public.ts';
import { srkEccP256Template } from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;

before(async () => {
  fixture = await TpmFixture.start();
});

after(async () => {
  await fixture?.stop();
});

async function permanent(): Promise<number> {
  const { data } = await fixture.tpm.run(getCapability(TPM_CAP.TPM_PROPERTIES, TPM_PT_VAR.PERMANENT, 1));
  return data.capability === TPM_CAP.TPM_PROPERTIES ? data.properties[0].value : -1;
}

async function nvIndices(): Promise<number[]> {
  const { data } = await fixture.tpm.run(getCapability(TPM_CAP.HANDLES, 0x01000000, 64));
  return data.capability === TPM_CAP.HANDLES ? data.handles : [];
}

async function srkPublicHex(ownerAuth?: Uint8Array): Promise<string> {
  return withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER, ownerAuth), { inPublic: srkEccP256Template() })), async (srk) =>
    toHex(marshal(TPMT_PUBLIC, srk.outPublic)),
  );
}

test('Clear (lockout) wipes owner NV, owner auth and the storage seed; ClearControl can disable it', async () => {
  const ownerPassword = utf8.encode('owner');
  const index = 0x01500020;
  await fixture.tpm.run(
    nvDefineSpace(auth(TPM_RH.OWNER), new Uint8Array(0), {
      nvIndex: index,
      nameAlg: TPM_ALG.SHA256,
      attributes: TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD,
      authPolicy: new Uint8Array(0),
      dataSize: 8,
    }),
  );
  await fixture.tpm.run(hierarchyChangeAuth(auth(TPM_RH.OWNER), ownerPassword));
  const srkBefore = await srkPublicHex(ownerPassword);
  assert.equal(srkBefore, await srkPublicHex(ownerPassword), 'a primary key is a function of the seed');
  assert.ok((await nvIndices()).includes(index));
  assert.ok((await permanent()) & TPMA_PERMANENT.ownerAuthSet);

  // ClearControl(disable) from the lockout hierarchy blocks Clear; only the platform can re-enable it.
  await fixture.tpm.run(clearControl(auth(TPM_RH.LOCKOUT), true));
  assert.ok((await permanent()) & TPMA_PERMANENT.disableClear);
  await assert.rejects(fixture.tpm.run(clear(auth(TPM_RH.LOCKOUT))), (e: unknown) => isSigilError(e, 'tpm.rc.disabled'));
  await fixture.tpm.run(clearControl(auth(TPM_RH.PLATFORM), false));
  assert.equal((await permanent()) & TPMA_PERMANENT.disableClear, 0);

  await fixture.tpm.run(clear(auth(TPM_RH.LOCKOUT)));
  assert.equal((await permanent()) & TPMA_PERMANENT.ownerAuthSet, 0, 'owner auth is empty again');
  assert.ok(!(await nvIndices()).includes(index), 'owner NV indices are gone');
  assert.notEqual(await srkPublicHex(), srkBefore, 'a new storage seed makes a different SRK');
});
