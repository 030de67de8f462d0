/** ContextSave / ContextLoad / EvictControl round trips against swtpm. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_CAP, TPM_RH } from '../../../src/tpm/constants.ts';
import { sign } from '../../../src/tpm/commands/attestation.ts';
import { contextLoad, contextSave, evictControl, flushContext } from '../../../src/tpm/commands/context.ts';
import { create, createPrimary, load, readPublic } from '../../../src/tpm/commands/object.ts';
import { getCapability } from '../../../src/tpm/commands/startup.ts';
import { verifyTpmSignature } from '../../../src/tpm/public-key.ts';
import { eccSigningTemplate, srkEccP256Template } from '../../../src/tpm/templates.ts';
import { TpmFixture, withLoaded } from './tpm-fixture.ts';

let fixture: TpmFixture;

before(async () => {
  fixture = await TpmFixture.start();
});

after(async () => {
  await fixture?.stop();
});

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

test('ContextSave, flush, ContextLoad: the reloaded key is the same key and still signs', async () => {
  const { context, publicArea, name } = await withLoaded(
    fixture.tpm,
    fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() })),
    async (srk) => {
      const created = await fixture.tpm.run(create(auth(srk.handle), { inPublic: eccSigningTemplate() }));
      return withLoaded(fixture.tpm, fixture.tpm.run(load(auth(srk.handle), created.outPrivate, created.outPublic)), async (key) => ({
        context: await fixture.tpm.run(contextSave(key.handle)),
        publicArea: created.outPublic,
        name: key.name,
      }));
    },
  );
  assert.equal(context.hierarchy, TPM_RH.OWNER);
  assert.ok(context.contextBlob.length > 0);
  assert.deepEqual(await fixture.transientHandles(), [], 'key and parent are flushed: only the saved context remains');

  // An object context (unlike a session's) can be loaded more than once.
  const first = await fixture.tpm.run(contextLoad(context));
  try {
    const second = await fixture.tpm.run(contextLoad(context));
    try {
      assert.notEqual(first, second);
      for (const handle of [first, second]) {
        assert.deepEqual((await fixture.tpm.run(readPublic(handle))).name, name);
        const message = utf8.encode(`signed by reloaded 0x${handle.toString(16)}`);
        assert.equal(verifyTpmSignature(publicArea, message, await fixture.tpm.run(sign(auth(handle), sha256(message)))), true);
      }
    } finally {
      await fixture.tpm.run(flushContext(second));
    }
  } finally {
    await fixture.tpm.run(flushContext(first));
  }

  const tampered = { ...context, contextBlob: context.contextBlob.slice() };
  tampered.contextBlob[tampered.contextBlob.length - 1] ^= 1;
  await assert.rejects(fixture.tpm.run(contextLoad(tampered)), (e: unknown) => isSigilError(e, 'tpm.rc.integrity'));
});

test('EvictControl makes a primary persistent and evicts it again', async () => {
  const persistent = 0x81000100;
  const name = await withLoaded(fixture.tpm, fixture.tpm.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template() })), async (srk) => {
    await fixture.tpm.run(evictControl(auth(TPM_RH.OWNER), srk.handle, persistent));
    return srk.name;
  });
  const persistentHandles = async () => {
    const { data } = await fixture.tpm.run(getCapability(TPM_CAP.HANDLES, 0x81000000, 32));
    return data.capability === TPM_CAP.HANDLES ? data.handles : [];
  };
  try {
    assert.deepEqual(await persistentHandles(), [persistent]);
    assert.deepEqual((await fixture.tpm.run(readPublic(persistent))).name, name);
  } finally {
    await fixture.tpm.run(evictControl(auth(TPM_RH.OWNER), persistent, persistent));
  }
  assert.deepEqual(await persistentHandles(), []);
});
