import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SigilError } from '../../src/core/errors.ts';
import { TpmClient } from '../../src/tpm/client.ts';
import { auth, type Command } from '../../src/tpm/command.ts';
import { certify, quote, sign } from '../../src/tpm/commands/attestation.ts';
import { contextSave, flushContext } from '../../src/tpm/commands/context.ts';
import { nvDefineSpace, nvRead, nvReadPublic, nvUndefineSpace, nvWrite } from '../../src/tpm/commands/nv.ts';
import { create, createPrimary, load, readPublic } from '../../src/tpm/commands/object.ts';
import { pcrEvent, pcrRead } from '../../src/tpm/commands/pcr.ts';
import { getCapability, getRandom } from '../../src/tpm/commands/startup.ts';
import { TPM_ALG, TPM_CAP, TPM_RH, TPMA_NV } from '../../src/tpm/constants.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { akEccP256Template, akRsa2048Template, eccSigningTemplate, srkEccP256Template } from '../../src/tpm/templates.ts';
import type { TpmTransport } from '../../src/tpm/transport/transport.ts';
import { mutate, prng } from '../support/fuzz.ts';

/**
 * Every command's response path (header, handles, parameter area, password auth area, the
 * command's own unmarshalers) fed mutated copies of real swtpm responses: the client must answer
 * each with a result or a typed SigilError, never another exception or a hang.
 */
let swtpm: SwtpmInstance;
const samples: { command: Command<unknown>; response: Uint8Array }[] = [];

class CapturingTransport implements TpmTransport {
  last: Uint8Array = new Uint8Array(0);
  private readonly inner: TpmTransport;
  constructor(inner: TpmTransport) {
    this.inner = inner;
  }
  async send(command: Uint8Array): Promise<Uint8Array> {
    this.last = await this.inner.send(command);
    return this.last;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

before(async () => {
  swtpm = await startSwtpm();
  const transport = new CapturingTransport(swtpm.transport());
  const client = new TpmClient(transport);
  const record = async <R>(command: Command<R>): Promise<R> => {
    const result = await client.run(command);
    samples.push({ command: command as Command<unknown>, response: transport.last });
    return result;
  };
  await record(getRandom(16));
  for (const cap of [TPM_CAP.PCRS, TPM_CAP.ALGS, TPM_CAP.COMMANDS, TPM_CAP.ECC_CURVES]) await record(getCapability(cap, 0, 64));
  await record(getCapability(TPM_CAP.TPM_PROPERTIES, 0x100, 64));
  await record(getCapability(TPM_CAP.HANDLES, 0x40000000, 64));
  await record(pcrRead([{ hash: TPM_ALG.SHA256, pcrs: [0, 1, 2, 3, 4, 5, 6, 7] }, { hash: TPM_ALG.SHA1, pcrs: [16] }]));
  await record(pcrEvent(auth(16), new TextEncoder().encode('fuzz')));
  const srk = await record(createPrimary(auth(TPM_RH.OWNER), { inPublic: srkEccP256Template(), creationPcr: [{ hash: TPM_ALG.SHA256, pcrs: [7] }] }));
  for (const template of [akEccP256Template(), akRsa2048Template(), eccSigningTemplate()]) {
    const key = await record(create(auth(srk.handle), { inPublic: template }));
    const loaded = await record(load(auth(srk.handle), key.outPrivate, key.outPublic));
    await record(readPublic(loaded.handle));
    const scheme = template.scheme.scheme === TPM_ALG.NULL ? { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 } : undefined;
    await record(quote(auth(loaded.handle), new Uint8Array(16), [{ hash: TPM_ALG.SHA256, pcrs: [0, 7, 16] }], scheme));
    await record(certify(auth(srk.handle), auth(loaded.handle), new Uint8Array(8)));
    await record(contextSave(loaded.handle));
    await client.run(flushContext(loaded.handle));
  }
  const signer = await client.run(createPrimary(auth(TPM_RH.OWNER), { inPublic: eccSigningTemplate() }));
  await record(sign(auth(signer.handle), new Uint8Array(32).fill(1), { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 }));
  await client.run(flushContext(signer.handle));
  const index = 0x01500020;
  await client.run(nvDefineSpace(auth(TPM_RH.OWNER), new Uint8Array(0), { nvIndex: index, nameAlg: TPM_ALG.SHA256, attributes: TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE, authPolicy: new Uint8Array(0), dataSize: 64 }));
  await client.run(nvWrite(auth(index), index, new Uint8Array(64).fill(3)));
  await record(nvRead(auth(index), index, 64));
  await record(nvReadPublic(index));
  await client.run(nvUndefineSpace(auth(TPM_RH.OWNER), index));
  await client.run(flushContext(srk.handle));
  await client.close();
});

after(async () => {
  await swtpm?.stop();
});

test('recorded responses parse cleanly before mutation', async () => {
  assert.ok(samples.length >= 20, `recorded ${samples.length} responses`);
  for (const { command, response } of samples) {
    const client = new TpmClient({ send: async () => response, close: async () => undefined });
    await client.run(command);
  }
});

test('120,000 mutated responses give results or typed SigilErrors only', async () => {
  const random = prng(0x7e57);
  const perSample = Math.ceil(120_000 / samples.length);
  let rejected = 0;
  let total = 0;
  for (const { command, response } of samples) {
    let current = response;
    const client = new TpmClient({ send: async () => current, close: async () => undefined });
    for (let i = 0; i < perSample; i++) {
      current = mutate(response, random);
      total++;
      try {
        await client.run(command);
      } catch (error) {
        if (!(error instanceof SigilError) || !error.code.startsWith('tpm.')) {
          assert.fail(`command 0x${command.code.toString(16)}: ${String(error)} for ${Buffer.from(current).toString('hex')}`);
        }
        rejected++;
      }
    }
  }
  assert.ok(total >= 120_000);
  assert.ok(rejected > total / 2, `most mutations are rejected (${rejected} of ${total})`);
});
