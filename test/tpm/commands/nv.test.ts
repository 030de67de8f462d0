/** NV_DefineSpace / Write / Read / Increment / Extend / ReadPublic / UndefineSpace against swtpm. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Reader, utf8 } from '../../../src/core/bytes.ts';
import { isSigilError } from '../../../src/core/errors.ts';
import { auth } from '../../../src/tpm/command.ts';
import { TPM_ALG, TPM_NT, TPM_RH, TPMA_NV, nvTypeBits } from '../../../src/tpm/constants.ts';
import { nvDefineSpace, nvExtend, nvIncrement, nvRead, nvReadPublic, nvUndefineSpace, nvWrite } from '../../../src/tpm/commands/nv.ts';
import { nvName } from '../../../src/tpm/names.ts';
import type { NvPublic } from '../../../src/tpm/structures/nv.ts';
import { TpmFixture } from './tpm-fixture.ts';

let fixture: TpmFixture;

before(async () => {
  fixture = await TpmFixture.start();
});

after(async () => {
  await fixture?.stop();
});

const ACCESS = TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE | TPMA_NV.NO_DA;

/** Define an index with the given type, run body, always undefine it. */
async function withIndex(nvPublic: NvPublic, authValue: Uint8Array, body: () => Promise<void>): Promise<void> {
  await fixture.tpm.run(nvDefineSpace(auth(TPM_RH.OWNER), authValue, nvPublic));
  try {
    await body();
  } finally {
    await fixture.tpm.run(nvUndefineSpace(auth(TPM_RH.OWNER), nvPublic.nvIndex));
  }
  await assert.rejects(fixture.tpm.run(nvReadPublic(nvPublic.nvIndex)), (e: unknown) => isSigilError(e, 'tpm.rc.handle'));
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

test('an ordinary index: write, read back, public area and name, wrong password refused', async () => {
  const password = utf8.encode('nv password');
  const nvPublic: NvPublic = { nvIndex: 0x01500001, nameAlg: TPM_ALG.SHA256, attributes: ACCESS | nvTypeBits(TPM_NT.ORDINARY), authPolicy: new Uint8Array(0), dataSize: 32 };
  await withIndex(nvPublic, password, async () => {
    const before = await fixture.tpm.run(nvReadPublic(nvPublic.nvIndex));
    assert.deepEqual(before.nvPublic, nvPublic);
    assert.equal(before.nvPublic.attributes & TPMA_NV.WRITTEN, 0);
    await assert.rejects(fixture.tpm.run(nvRead(auth(nvPublic.nvIndex, password), nvPublic.nvIndex, 4)), (e: unknown) => isSigilError(e, 'tpm.rc.nv_uninitialized'));

    await fixture.tpm.run(nvWrite(auth(nvPublic.nvIndex, password), nvPublic.nvIndex, utf8.encode('hello'), 3));
    const read = await fixture.tpm.run(nvRead(auth(nvPublic.nvIndex, password), nvPublic.nvIndex, 8));
    assert.deepEqual(read.subarray(3), utf8.encode('hello'));

    const after = await fixture.tpm.run(nvReadPublic(nvPublic.nvIndex));
    assert.equal(after.nvPublic.attributes, nvPublic.attributes | TPMA_NV.WRITTEN);
    assert.deepEqual(after.nvName, await nvName(after.nvPublic), 'name = nameAlg ‖ H(TPMS_NV_PUBLIC) with WRITTEN set');
    assert.notDeepEqual(after.nvName, before.nvName);

    // NO_DA: a wrong password is TPM_RC_BAD_AUTH, not a DA-counted TPM_RC_AUTH_FAIL.
    await assert.rejects(fixture.tpm.run(nvRead(auth(nvPublic.nvIndex, utf8.encode('wrong')), nvPublic.nvIndex, 8)), (e: unknown) =>
      isSigilError(e, 'tpm.rc.bad_auth'),
    );
  });
});

test('a counter index increments by one', async () => {
  const nvPublic: NvPublic = { nvIndex: 0x01500002, nameAlg: TPM_ALG.SHA256, attributes: ACCESS | nvTypeBits(TPM_NT.COUNTER), authPolicy: new Uint8Array(0), dataSize: 8 };
  await withIndex(nvPublic, new Uint8Array(0), async () => {
    const readCounter = async () => new Reader(await fixture.tpm.run(nvRead(auth(nvPublic.nvIndex), nvPublic.nvIndex, 8))).u64();
    await fixture.tpm.run(nvIncrement(auth(nvPublic.nvIndex), nvPublic.nvIndex));
    const first = await readCounter();
    await fixture.tpm.run(nvIncrement(auth(nvPublic.nvIndex), nvPublic.nvIndex));
    await fixture.tpm.run(nvIncrement(auth(nvPublic.nvIndex), nvPublic.nvIndex));
    assert.equal(await readCounter(), first + 2n);
    // A counter cannot be written directly.
    await assert.rejects(fixture.tpm.run(nvWrite(auth(nvPublic.nvIndex), nvPublic.nvIndex, new Uint8Array(8))), (e: unknown) =>
      isSigilError(e, 'tpm.rc.attributes'),
    );
  });
});

test('an extend index holds H(old ‖ data) after each NV_Extend', async () => {
  const nvPublic: NvPublic = { nvIndex: 0x01500003, nameAlg: TPM_ALG.SHA256, attributes: ACCESS | nvTypeBits(TPM_NT.EXTEND), authPolicy: new Uint8Array(0), dataSize: 32 };
  await withIndex(nvPublic, new Uint8Array(0), async () => {
    const read = () => fixture.tpm.run(nvRead(auth(nvPublic.nvIndex), nvPublic.nvIndex, 32));
    const first = utf8.encode('first measurement');
    const second = utf8.encode('second measurement, longer than one digest: ' + 'x'.repeat(40));
    await fixture.tpm.run(nvExtend(auth(nvPublic.nvIndex), nvPublic.nvIndex, first));
    const afterFirst = sha256(new Uint8Array(32), first);
    assert.deepEqual(await read(), afterFirst);
    await fixture.tpm.run(nvExtend(auth(nvPublic.nvIndex), nvPublic.nvIndex, second));
    assert.deepEqual(await read(), sha256(afterFirst, second));
  });
});
