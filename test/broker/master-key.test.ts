import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { decryptEnvelope, encryptEnvelope, loadMasterKey, masterKeyFromBytes } from '../../src/broker/master-key.ts';
import { SigilError } from '../../src/core/errors.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';

let dir: string;
let swtpm: SwtpmInstance;
before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-master-'));
  swtpm = await startSwtpm();
});
after(async () => {
  await swtpm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const isCode = (code: string) => (error: unknown) => error instanceof SigilError && error.code === code;

test('envelopes round-trip and are bound to their row (AAD) and their master key', () => {
  const master = masterKeyFromBytes(new Uint8Array(32).fill(1), 'env');
  const sealed = encryptEnvelope(master, new TextEncoder().encode('secret'), 'resource|acme|disk/key');
  const envelope = JSON.parse(sealed);
  assert.equal(envelope.v, 1);
  assert.equal(envelope.kek, master.id);
  assert.ok(!sealed.includes('secret'));
  assert.equal(new TextDecoder().decode(decryptEnvelope(master, sealed, 'resource|acme|disk/key')), 'secret');
  assert.throws(() => decryptEnvelope(master, sealed, 'resource|other|disk/key'), isCode('broker.envelope_invalid'));
  assert.throws(() => decryptEnvelope(masterKeyFromBytes(new Uint8Array(32).fill(2), 'env'), sealed, 'resource|acme|disk/key'), isCode('broker.master_key_mismatch'));
  const flipped = { ...envelope, ct: Buffer.from(Buffer.from(envelope.ct, 'base64').map((b: number, i: number) => (i === 0 ? b ^ 1 : b))).toString('base64') };
  assert.throws(() => decryptEnvelope(master, JSON.stringify(flipped), 'resource|acme|disk/key'), isCode('broker.envelope_invalid'));
  // A fresh data key per value: the same secret twice gives different ciphertexts.
  assert.notEqual(JSON.parse(encryptEnvelope(master, new Uint8Array([1]), 'a')).dek, JSON.parse(encryptEnvelope(master, new Uint8Array([1]), 'a')).dek);
});

test('master key sources: created 0600 on first start, then re-read; env wins; a loose key file is refused', async () => {
  const first = await loadMasterKey({ dataDir: dir, env: {} });
  const file = path.join(dir, 'master.key');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.equal((await loadMasterKey({ dataDir: dir, env: {} })).id, first.id);
  const hex = 'ab'.repeat(32);
  const fromEnv = await loadMasterKey({ dataDir: dir, env: { SIGIL_MASTER_KEY: hex } });
  assert.equal(fromEnv.source, 'env');
  assert.equal(fromEnv.id, masterKeyFromBytes(Buffer.from(hex, 'hex'), 'env').id);
  assert.equal((await loadMasterKey({ dataDir: dir, env: { SIGIL_MASTER_KEY: Buffer.from(hex, 'hex').toString('base64') } })).id, fromEnv.id);
  const loose = path.join(dir, 'loose.key');
  writeFileSync(loose, hex);
  chmodSync(loose, 0o644);
  await assert.rejects(loadMasterKey({ dataDir: dir, file: loose, env: {} }), isCode('broker.master_key_permissions'));
  await assert.rejects(loadMasterKey({ dataDir: dir, env: { SIGIL_MASTER_KEY: 'short' } }), isCode('broker.master_key_invalid'));
});

test('a master key sealed to the host TPM: sealed on first start, unsealed later, refused after the PCR changes', async () => {
  const tpmDir = mkdtempSync(path.join(dir, 'tpm-'));
  const sealedFirst = await loadMasterKey({ dataDir: tpmDir, tpm: swtpm.uri, tpmPcrs: 'sha256:16', env: {} });
  assert.equal(sealedFirst.source, 'tpm');
  const sealedFile = path.join(tpmDir, 'master-key.sealed.json');
  assert.ok(existsSync(sealedFile));
  assert.equal(statSync(sealedFile).mode & 0o777, 0o600);
  assert.equal(JSON.parse(readFileSync(sealedFile, 'utf8')).format, 'sigil.sealed.v1');
  assert.equal((await loadMasterKey({ dataDir: tpmDir, tpm: swtpm.uri, tpmPcrs: 'sha256:16', env: {} })).id, sealedFirst.id);
  const { Tpm } = await import('../../src/tpm/tpm.ts');
  const tpm = new Tpm(swtpm.transport());
  try {
    await tpm.extendEvent(16, new TextEncoder().encode('host changed'));
  } finally {
    await tpm.close();
  }
  await assert.rejects(loadMasterKey({ dataDir: tpmDir, tpm: swtpm.uri, tpmPcrs: 'sha256:16', env: {} }), isCode('tpm.policy_pcr_mismatch'));
});
