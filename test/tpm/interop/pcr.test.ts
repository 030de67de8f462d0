/**
 * PCR interop with tpm2-tools 5.4: what Sigil extends (PCR_Extend with explicit sha1 + sha256
 * digests, PCR_Event) reads back identically through tpm2_pcrread (YAML and -o values file) and
 * through Sigil's readPcrs, and equals the extend chain computed in software:
 * new = H(old ‖ digest), with PCR_Event's digest = H(event data) per bank.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { toHex } from '../../../src/core/hex.ts';
import { hashAlg } from '../../../src/tpm/algorithms.ts';
import { TPM_ALG } from '../../../src/tpm/constants.ts';
import { InteropFixture, parsePcrreadYaml, toolsMissing } from './interop-fixture.ts';

const skip = await toolsMissing();
let fx: InteropFixture;

before(async () => {
  if (!skip) fx = await InteropFixture.start();
});

after(async () => {
  await fx?.stop();
});

const h = (alg: 'sha1' | 'sha256', ...parts: Uint8Array[]) => {
  const hash = createHash(alg);
  for (const p of parts) hash.update(p);
  return new Uint8Array(hash.digest());
};

/** Software PCR bank: the same extend chain the TPM computes. */
class SoftPcr {
  value: Record<'sha1' | 'sha256', Uint8Array> = { sha1: new Uint8Array(20), sha256: new Uint8Array(32) };
  extend(alg: 'sha1' | 'sha256', digest: Uint8Array): void {
    this.value[alg] = h(alg, this.value[alg], digest);
  }
}

test('Sigil extends and events read back equal through tpm2_pcrread, Sigil readPcrs and a software extend chain', { skip }, async () => {
  const pcr16 = new SoftPcr();
  const pcr23 = new SoftPcr();
  await fx.sigil(async (tpm) => {
    for (const label of ['kernel', 'initrd', 'cmdline']) {
      const d1 = h('sha1', new TextEncoder().encode(label));
      const d256 = h('sha256', new TextEncoder().encode(label));
      await tpm.extend(16, [
        { hashAlg: TPM_ALG.SHA1, digest: d1 },
        { hashAlg: TPM_ALG.SHA256, digest: d256 },
      ]);
      pcr16.extend('sha1', d1);
      pcr16.extend('sha256', d256);
    }
    const event = new TextEncoder().encode('sigil: PCR_Event data, hashed by the TPM');
    const digests = await tpm.extendEvent(23, event);
    // PCR_Event reports H(data) for every hash the TPM implements (libtpms: sha384 and sha512
    // too, though those banks are not allocated here) and extends the allocated banks with it.
    const reported = new Map(digests.map((d) => [d.hashAlg, toHex(d.digest)]));
    assert.equal(reported.get(TPM_ALG.SHA1), toHex(h('sha1', event)));
    assert.equal(reported.get(TPM_ALG.SHA256), toHex(h('sha256', event)));
    for (const d of digests) assert.equal(toHex(d.digest), createHash(hashAlg(d.hashAlg).node).update(event).digest('hex'));
    pcr23.extend('sha1', h('sha1', event));
    pcr23.extend('sha256', h('sha256', event));
  });

  const expected = {
    sha1: { 16: toHex(pcr16.value.sha1), 23: toHex(pcr23.value.sha1) },
    sha256: { 16: toHex(pcr16.value.sha256), 23: toHex(pcr23.value.sha256) },
  };
  const sigil = await fx.sigil(async (tpm) => ({
    sha1: Object.fromEntries([...(await tpm.readPcrs(TPM_ALG.SHA1, [16, 23]))].map(([i, v]) => [i, toHex(v)])),
    sha256: Object.fromEntries([...(await tpm.readPcrs(TPM_ALG.SHA256, [16, 23]))].map(([i, v]) => [i, toHex(v)])),
  }));
  assert.deepEqual(sigil, expected);

  const yaml = await fx.toolOk('tpm2_pcrread', ['sha1:16,23+sha256:16,23', '-o', 'pcrs.values']);
  assert.deepEqual(parsePcrreadYaml(yaml), expected);
  // -o writes the values concatenated in selection order: sha1 16, 23 then sha256 16, 23.
  const file = toHex(new Uint8Array(await readFile(fx.file('pcrs.values'))));
  assert.equal(file, expected.sha1[16] + expected.sha1[23] + expected.sha256[16] + expected.sha256[23]);
});

test('tpm2_pcrextend and tpm2_pcrevent extends read back through Sigil readPcrs as the software chain', { skip }, async () => {
  const read = (pcr: number) =>
    fx.sigil(async (tpm) => ({ sha1: (await tpm.readPcrs(TPM_ALG.SHA1, [pcr])).get(pcr)!, sha256: (await tpm.readPcrs(TPM_ALG.SHA256, [pcr])).get(pcr)! }));
  const soft = new SoftPcr();
  soft.value = await read(15);
  const d1 = h('sha1', new TextEncoder().encode('tools extend'));
  const d256 = h('sha256', new TextEncoder().encode('tools extend'));
  await fx.toolOk('tpm2_pcrextend', [`15:sha1=${toHex(d1)},sha256=${toHex(d256)}`]);
  soft.extend('sha1', d1);
  soft.extend('sha256', d256);
  const event = new TextEncoder().encode('an event measured by tpm2_pcrevent');
  await writeFile(fx.file('event.bin'), event);
  await fx.toolOk('tpm2_pcrevent', ['15', 'event.bin']);
  soft.extend('sha1', h('sha1', event));
  soft.extend('sha256', h('sha256', event));
  const after = await read(15);
  assert.equal(toHex(after.sha1), toHex(soft.value.sha1));
  assert.equal(toHex(after.sha256), toHex(soft.value.sha256));
});
