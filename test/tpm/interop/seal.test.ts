/**
 * Sealing interop with tpm2-tools 5.4: both tools share the SRK, made persistent at 0x81000001 by
 * Sigil. An object Sigil seals under PolicyPCR(sha256:7,16) opens with tpm2_load + tpm2_unseal;
 * one tpm2_create seals under tpm2_createpolicy's PolicyPCR opens with Sigil's unseal(); after a
 * PCR 16 extend both tools refuse both objects.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isSigilError } from '../../../src/core/errors.ts';
import { fromHex, toHex } from '../../../src/core/hex.ts';
import { auth } from '../../../src/tpm/command.ts';
import { evictControl } from '../../../src/tpm/commands/context.ts';
import { TPM_RH, TPMA_OBJECT } from '../../../src/tpm/constants.ts';
import { marshal, unmarshal } from '../../../src/tpm/marshal/codec.ts';
import { TPM2B_PUBLIC } from '../../../src/tpm/structures/public.ts';
import { SRK_PERSISTENT_HANDLE, storageKey } from '../../../src/tpm/tpm-keys.ts';
import { pcrPolicyDigest, seal, selectionFromSpec, unseal, type SealedObject } from '../../../src/tpm/tpm-seal.ts';
import { InteropFixture, toolsMissing } from './interop-fixture.ts';

const skip = await toolsMissing();
const selection = selectionFromSpec('sha256:7,16');
const SRK = `0x${SRK_PERSISTENT_HANDLE.toString(16)}`;
let fx: InteropFixture;
let sigilSealed: SealedObject;
let sigilSecret: Uint8Array;
let toolsSealed: SealedObject;
let toolsSecret: Uint8Array;

before(async () => {
  if (skip) return;
  fx = await InteropFixture.start();
  await fx.sigil(async (tpm) => {
    await tpm.extendEvent(7, new TextEncoder().encode('secure boot: db, dbx'));
    await tpm.extendEvent(16, new TextEncoder().encode('sigil: boot stage 1'));
    // Persist Sigil's SRK, so tpm2-tools (-C 0x81000001) and Sigil (storageKey) use one parent.
    const srk = await storageKey(tpm);
    assert.equal(srk.transient, true);
    try {
      await tpm.client.run(evictControl(auth(TPM_RH.OWNER), srk.handle, SRK_PERSISTENT_HANDLE));
    } finally {
      await tpm.flush(srk.handle);
    }
  });
});

after(async () => {
  await fx?.stop();
});

test('the SRK Sigil persisted is the one tpm2_readpublic reports, and storageKey now uses it', { skip }, async () => {
  const srk = await fx.sigil((tpm) => storageKey(tpm));
  assert.equal(srk.handle, SRK_PERSISTENT_HANDLE);
  assert.equal(srk.transient, false);
  await fx.toolOk('tpm2_readpublic', ['-c', SRK, '-o', 'srk.pub', '-n', 'srk.name']);
  assert.equal(toHex(new Uint8Array(await readFile(fx.file('srk.pub')))), toHex(marshal(TPM2B_PUBLIC, srk.publicArea)));
  assert.equal(toHex(new Uint8Array(await readFile(fx.file('srk.name')))), toHex(srk.name));
});

test('an object Sigil seals to sha256:7,16 opens with tpm2_load + tpm2_unseal -p pcr:sha256:7,16', { skip }, async () => {
  sigilSecret = new Uint8Array(randomBytes(32));
  sigilSealed = await fx.sigil((tpm) => seal(tpm, { secret: sigilSecret, selection }));
  await writeFile(fx.file('sigil.pub'), fromHex(sigilSealed.public));
  await writeFile(fx.file('sigil.priv'), fromHex(sigilSealed.private));
  await fx.toolOk('tpm2_load', ['-C', SRK, '-u', 'sigil.pub', '-r', 'sigil.priv', '-c', 'sigil.ctx']);
  await fx.toolOk('tpm2_unseal', ['-c', 'sigil.ctx', '-p', 'pcr:sha256:7,16', '-o', 'sigil.out']);
  assert.equal(toHex(new Uint8Array(await readFile(fx.file('sigil.out')))), toHex(sigilSecret));
});

test('an object tpm2_create seals under tpm2_createpolicy --policy-pcr opens with Sigil unseal()', { skip }, async () => {
  toolsSecret = new Uint8Array(randomBytes(48));
  await writeFile(fx.file('secret.bin'), toolsSecret);
  await fx.toolOk('tpm2_createpolicy', ['--policy-pcr', '-l', 'sha256:7,16', '-L', 'pol.bin']);
  await fx.toolOk('tpm2_create', ['-C', SRK, '-L', 'pol.bin', '-i', 'secret.bin', '-u', 's.pub', '-r', 's.priv', '-a', 'fixedtpm|fixedparent']);

  // tpm2-tools and Sigil compute the same PolicyPCR digest for the same PCR values.
  const values = await fx.sigil((tpm) => tpm.readSelection(selection));
  const policy = new Uint8Array(await readFile(fx.file('pol.bin')));
  assert.equal(toHex(policy), toHex(await pcrPolicyDigest(selection, values)));
  assert.equal(toHex(policy), sigilSealed.policyDigest);

  const publicBytes = new Uint8Array(await readFile(fx.file('s.pub')));
  const publicArea = unmarshal(TPM2B_PUBLIC, publicBytes);
  assert.equal(toHex(publicArea.authPolicy), toHex(policy));
  assert.equal(publicArea.objectAttributes & TPMA_OBJECT.userWithAuth, 0);
  assert.equal(publicArea.objectAttributes & (TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent), TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent);
  toolsSealed = {
    format: 'sigil.sealed.v1',
    public: toHex(publicBytes),
    private: toHex(new Uint8Array(await readFile(fx.file('s.priv')))),
    pcrs: [{ bank: 'sha256', pcrs: [7, 16] }],
    policyDigest: toHex(policy),
    parentName: '',
  };
  const opened = await fx.sigil((tpm) => unseal(tpm, toolsSealed));
  assert.equal(toHex(opened), toHex(toolsSecret));
});

test('after Sigil extends PCR 16, tpm2_unseal and Sigil unseal() both refuse', { skip }, async () => {
  assert.ok(sigilSealed && toolsSealed, 'the two sealing tests ran first');
  await fx.sigil((tpm) => tpm.extendEvent(16, new TextEncoder().encode('sigil: boot stage 2')));

  const refused = await fx.tool('tpm2_unseal', ['-c', 'sigil.ctx', '-p', 'pcr:sha256:7,16']);
  await fx.flushAll();
  assert.notEqual(refused.rc, 0);
  assert.match(refused.stderr, /policy/i);
  assert.doesNotMatch(refused.stdout, new RegExp(toHex(sigilSecret)));

  await fx.toolOk('tpm2_load', ['-C', SRK, '-u', 's.pub', '-r', 's.priv', '-c', 's.ctx']);
  const refusedTools = await fx.tool('tpm2_unseal', ['-c', 's.ctx', '-p', 'pcr:sha256:7,16']);
  await fx.flushAll();
  assert.notEqual(refusedTools.rc, 0);

  for (const sealed of [toolsSealed, sigilSealed]) {
    await assert.rejects(fx.sigil((tpm) => unseal(tpm, sealed)), (e) => isSigilError(e, 'tpm.policy_pcr_mismatch'));
  }
});
