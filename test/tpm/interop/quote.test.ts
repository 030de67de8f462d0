/**
 * Quote interop with tpm2-tools 5.4 on the same swtpm, both directions: a quote Sigil makes passes
 * tpm2_checkquote, and a quote tpm2_quote makes passes Sigil's parseQuote/verifyQuote, each
 * failing for a wrong nonce and a wrong PCR value. ECC (ECDSA) and RSA (RSASSA) attestation keys.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isSigilError } from '../../../src/core/errors.ts';
import { toHex } from '../../../src/core/hex.ts';
import { parseQuote, verifyQuote } from '../../../src/evidence/tpm/quote.ts';
import { getCapability } from '../../../src/tpm/commands/startup.ts';
import { TPM_ALG, TPM_CAP } from '../../../src/tpm/constants.ts';
import { unmarshal } from '../../../src/tpm/marshal/codec.ts';
import { objectName } from '../../../src/tpm/names.ts';
import { tpmPublicToPem } from '../../../src/tpm/public-key.ts';
import { TPM2B_PUBLIC } from '../../../src/tpm/structures/public.ts';
import { quote } from '../../../src/tpm/tpm-attest.ts';
import { createAttestationKey, storageKey } from '../../../src/tpm/tpm-keys.ts';
import { selectionFromSpec } from '../../../src/tpm/tpm-seal.ts';
import { InteropFixture, pcrValuesFile, serializedPcrs, toolsMissing } from './interop-fixture.ts';

const skip = await toolsMissing();
let fx: InteropFixture;

before(async () => {
  if (skip) return;
  fx = await InteropFixture.start();
  // Non-zero PCRs, so the digest checks compare something.
  await fx.sigil(async (tpm) => {
    await tpm.extendEvent(7, new TextEncoder().encode('secure boot state'));
    await tpm.extendEvent(16, new TextEncoder().encode('sigil interop'));
  });
});

after(async () => {
  await fx?.stop();
});

/** Flip one bit of one PCR value (a copy), for the "altered PCR" checks. */
function alterOne(values: Map<number, Map<number, Uint8Array>>, bank: number, index: number) {
  const copy = new Map([...values].map(([b, m]) => [b, new Map(m)]));
  const changed = Uint8Array.from(copy.get(bank)!.get(index)!);
  changed[0] ^= 1;
  copy.get(bank)!.set(index, changed);
  return copy;
}

for (const type of ['ecc', 'rsa'] as const) {
  test(`a Sigil quote with a ${type.toUpperCase()} AK passes tpm2_checkquote, and fails it for a wrong nonce or PCR value`, { skip }, async () => {
    const nonce = new Uint8Array(randomBytes(20));
    const selection = selectionFromSpec('sha1:16+sha256:0,7,16');
    const { evidence, akPublic } = await fx.sigil(async (tpm) => {
      const srk = await storageKey(tpm);
      try {
        const ak = await createAttestationKey(tpm, srk, type);
        const made = await tpm.using(ak.handle, () => quote(tpm, ak, nonce, selection));
        return { evidence: made, akPublic: ak.publicArea };
      } finally {
        if (srk.transient) await tpm.flush(srk.handle);
      }
    });
    // Sigil's own verifier agrees before tpm2-tools is asked.
    await verifyQuote(parseQuote(evidence.attestBytes, evidence.signatureBytes), { akPublic, nonce, pcrValues: evidence.pcrValues });

    await writeFile(fx.file(`${type}.msg`), evidence.attestBytes);
    await writeFile(fx.file(`${type}.sig`), evidence.signatureBytes);
    await writeFile(fx.file(`${type}.pem`), tpmPublicToPem(akPublic));
    await writeFile(fx.file(`${type}.pcrs`), serializedPcrs(selection, evidence.pcrValues));
    await writeFile(fx.file(`${type}.values`), pcrValuesFile(selection, evidence.pcrValues));
    await writeFile(fx.file(`${type}.bad-pcrs`), serializedPcrs(selection, alterOne(evidence.pcrValues, TPM_ALG.SHA256, 7)));
    const base = ['-u', `${type}.pem`, '-m', `${type}.msg`, '-s', `${type}.sig`, '-g', 'sha256'];

    const plain = await fx.tool('tpm2_checkquote', [...base, '-q', toHex(nonce)]);
    assert.equal(plain.rc, 0, plain.stderr);
    // Serialized PCR file (the format tpm2_quote -o writes) and raw values with -l: both match the digest.
    const withPcrs = await fx.tool('tpm2_checkquote', [...base, '-q', toHex(nonce), '-f', `${type}.pcrs`]);
    assert.equal(withPcrs.rc, 0, withPcrs.stderr);
    const sha256_16 = toHex(evidence.pcrValues.get(TPM_ALG.SHA256)!.get(16)!);
    assert.match(withPcrs.stdout, new RegExp(`16\\s*: 0x${sha256_16}`, 'i'));
    const withValues = await fx.tool('tpm2_checkquote', [...base, '-q', toHex(nonce), '-f', `${type}.values`, '-l', 'sha1:16+sha256:0,7,16']);
    assert.equal(withValues.rc, 0, withValues.stderr);

    const wrongNonce = Uint8Array.from(nonce);
    wrongNonce[19] ^= 0xff;
    const refusedNonce = await fx.tool('tpm2_checkquote', [...base, '-q', toHex(wrongNonce), '-f', `${type}.pcrs`]);
    assert.notEqual(refusedNonce.rc, 0);
    assert.match(refusedNonce.stderr, /nonce/i);
    const refusedPcr = await fx.tool('tpm2_checkquote', [...base, '-q', toHex(nonce), '-f', `${type}.bad-pcrs`]);
    assert.notEqual(refusedPcr.rc, 0);
    assert.match(refusedPcr.stderr, /PCR composite/i);
  });
}

for (const [type, scheme, sigAlg] of [
  ['ecc', 'ecdsa', TPM_ALG.ECDSA],
  ['rsa', 'rsassa', TPM_ALG.RSASSA],
] as const) {
  test(`a tpm2_quote with a ${type.toUpperCase()} (${scheme}) AK passes Sigil's verifyQuote; a wrong nonce or PCR value is refused`, { skip }, async () => {
    const nonce = new Uint8Array(randomBytes(16));
    const spec = 'sha256:0,1,2,3,4,5,6,7,16';
    const p = (name: string) => `t-${type}-${name}`;
    await fx.toolOk('tpm2_createek', ['-c', p('ek.ctx'), '-G', 'rsa']);
    await fx.toolOk('tpm2_createak', ['-C', p('ek.ctx'), '-c', p('ak.ctx'), '-G', type, '-g', 'sha256', '-s', scheme, '-u', p('ak.pub'), '-n', p('ak.name')]);
    await fx.toolOk('tpm2_quote', ['-c', p('ak.ctx'), '-l', spec, '-q', toHex(nonce), '-m', p('quote.msg'), '-s', p('quote.sig'), '-o', p('quote.pcrs'), '-g', 'sha256']);

    const akPublic = unmarshal(TPM2B_PUBLIC, new Uint8Array(await readFile(fx.file(p('ak.pub')))));
    assert.equal(akPublic.type, type === 'ecc' ? TPM_ALG.ECC : TPM_ALG.RSA);
    // tpm2_createak -n writes the AK's name: Sigil computes the same from the public area.
    assert.equal(toHex(await objectName(akPublic)), toHex(new Uint8Array(await readFile(fx.file(p('ak.name'))))));

    const selection = selectionFromSpec(spec);
    const pcrValues = await fx.sigil((tpm) => tpm.readSelection(selection));
    // tpm2_quote's PCR file is byte-for-byte what Sigil serializes from its own PCR read.
    assert.equal(toHex(new Uint8Array(await readFile(fx.file(p('quote.pcrs'))))), toHex(serializedPcrs(selection, pcrValues)));

    const parsed = parseQuote(new Uint8Array(await readFile(fx.file(p('quote.msg')))), new Uint8Array(await readFile(fx.file(p('quote.sig')))));
    assert.equal(parsed.signature.sigAlg, sigAlg);
    assert.equal(toHex(parsed.attest.extraData), toHex(nonce));
    const verified = await verifyQuote(parsed, { akPublic, nonce, pcrValues });
    assert.equal(verified.verified, true);
    assert.deepEqual(Object.keys(verified.pcrs.sha256).map(Number), [0, 1, 2, 3, 4, 5, 6, 7, 16]);
    assert.equal(verified.pcrs.sha256[16], toHex(pcrValues.get(TPM_ALG.SHA256)!.get(16)!));
    assert.equal(toHex(verified.qualifiedSigner.subarray(0, 2)), '000b');

    const wrongNonce = Uint8Array.from(nonce);
    wrongNonce[0] ^= 0x80;
    await assert.rejects(verifyQuote(parsed, { akPublic, nonce: wrongNonce, pcrValues }), (e) => isSigilError(e, 'tpm.quote_nonce_mismatch'));
    await assert.rejects(
      verifyQuote(parsed, { akPublic, nonce, pcrValues: alterOne(pcrValues, TPM_ALG.SHA256, 16) }),
      (e) => isSigilError(e, 'tpm.quote_pcr_digest_mismatch'),
    );
    // The tools left nothing loaded in the TPM.
    const left = await fx.sigil(async (tpm) => (await tpm.client.run(getCapability(TPM_CAP.HANDLES, 0x80000000, 8))).data);
    assert.deepEqual(left.capability === TPM_CAP.HANDLES ? left.handles : ['unexpected capability'], []);
  });
}
