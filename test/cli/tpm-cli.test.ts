/**
 * The `sigil tpm ...` and `sigil demo` commands, run as a user runs them (`sh scripts/sigil`),
 * against a private swtpm: output formats, files written, and exit codes (0 ok, 1 refused,
 * 2 usage, 3 environment). Each invocation opens its own TPM connection; swtpm serves one client
 * at a time, so this process only connects between CLI runs, and closes again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { toHex } from '../../src/core/hex.ts';
import { parseQuote, verifyQuote } from '../../src/evidence/tpm/quote.ts';
import { TPM_ALG } from '../../src/tpm/constants.ts';
import { unmarshal } from '../../src/tpm/marshal/codec.ts';
import { TPM2B_PUBLIC } from '../../src/tpm/structures/public.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../src/tpm/tpm.ts';
import { endorsementKey } from '../../src/tpm/tpm-keys.ts';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../..');
let swtpm: SwtpmInstance;
let dir: string;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `sh scripts/sigil <args>`; a non-zero exit is returned, not thrown. */
async function sigil(args: string[], options: { tpm?: boolean } = {}): Promise<CliResult> {
  const full = options.tpm === false ? args : [...args, '--tpm', swtpm.uri];
  const env = { ...process.env };
  delete env.SIGIL_TPM;
  try {
    const { stdout, stderr } = await run('sh', [path.join(repo, 'scripts/sigil'), ...full], { cwd: dir, env, encoding: 'utf8', timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function ok(args: string[]): Promise<string> {
  const result = await sigil(args);
  assert.equal(result.code, 0, `sigil ${args.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** A short Sigil connection from the test process, closed before the next CLI run. */
async function direct<T>(use: (tpm: Tpm) => Promise<T>): Promise<T> {
  const tpm = new Tpm(swtpm.transport());
  try {
    return await use(tpm);
  } finally {
    await tpm.close();
  }
}

before(async () => {
  swtpm = await startSwtpm();
  dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-cli-'));
});

after(async () => {
  await swtpm?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('tpm pcrs --bank sha256 --json prints all 24 PCRs as hex', async () => {
  const out = JSON.parse(await ok(['tpm', 'pcrs', '--bank', 'sha256', '--json']));
  assert.deepEqual(Object.keys(out), ['sha256']);
  assert.deepEqual(Object.keys(out.sha256).map(Number), Array.from({ length: 24 }, (_, i) => i));
  assert.equal(out.sha256['0'], '00'.repeat(32));
  for (const value of Object.values(out.sha256)) assert.match(value as string, /^[0-9a-f]{64}$/);
  // Without --bank: every allocated bank (swtpm here: sha1 and sha256).
  const all = JSON.parse(await ok(['tpm', 'pcrs', '--json', '--pcrs', '0,16']));
  assert.deepEqual(Object.keys(all).sort(), ['sha1', 'sha256']);
  assert.deepEqual(Object.keys(all.sha1), ['0', '16']);
});

test('tpm extend 16:sha256=<hex> --json extends, and pcrs shows H(old ‖ digest)', async () => {
  const before = JSON.parse(await ok(['tpm', 'pcrs', '--bank', 'sha256', '--pcrs', '16', '--json'])).sha256['16'];
  const digest = createHash('sha256').update('cli extend').digest('hex');
  const out = JSON.parse(await ok(['tpm', 'extend', `16:sha256=${digest}`, '--json']));
  assert.deepEqual(out, { pcr: 16, digests: [{ bank: 'sha256', digest }] });
  const expected = createHash('sha256').update(Buffer.from(before + digest, 'hex')).digest('hex');
  const after = JSON.parse(await ok(['tpm', 'pcrs', '--bank', 'sha256', '--pcrs', '16', '--json'])).sha256['16'];
  assert.equal(after, expected);
  const text = await ok(['tpm', 'pcrs', '--bank', 'sha256', '--pcrs', '16']);
  assert.equal(text.trim(), `sha256:16 ${expected}`);
});

test('tpm seal writes a 0600 sealed object; tpm unseal prints the secret; after an extend it exits 1 with tpm.policy_pcr_mismatch', async () => {
  const secret = 'disk passphrase: correct horse battery';
  await writeFile(path.join(dir, 'secret'), secret);
  const sealedOut = JSON.parse(await ok(['tpm', 'seal', '--pcrs', 'sha256:16', '--in', 'secret', '--out', 'sealed.json', '--json']));
  assert.equal(sealedOut.out, 'sealed.json');
  assert.deepEqual(sealedOut.pcrs, [{ bank: 'sha256', pcrs: [16] }]);
  const file = path.join(dir, 'sealed.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const sealed = JSON.parse(await readFile(file, 'utf8'));
  assert.equal(sealed.format, 'sigil.sealed.v1');
  assert.equal(sealed.policyDigest, sealedOut.policyDigest);
  assert.ok(!JSON.stringify(sealed).includes(Buffer.from(secret).toString('hex')), 'the sealed object does not carry the secret in clear');

  assert.equal(await ok(['tpm', 'unseal', '--in', 'sealed.json']), secret);
  assert.deepEqual(JSON.parse(await ok(['tpm', 'unseal', '--in', 'sealed.json', '--json'])), { secret: Buffer.from(secret).toString('hex') });

  await ok(['tpm', 'extend', '16', '--data', 'lock the sealed secret']);
  const refused = await sigil(['tpm', 'unseal', '--in', 'sealed.json']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /tpm\.policy_pcr_mismatch/);
  assert.equal(refused.stdout, '');
  const refusedJson = await sigil(['tpm', 'unseal', '--in', 'sealed.json', '--json']);
  assert.equal(refusedJson.code, 1);
  assert.equal(JSON.parse(refusedJson.stdout).error.code, 'tpm.policy_pcr_mismatch');
});

test('tpm quote --json --out-dir writes a quote that verifies, with the nonce it was given', async () => {
  const nonce = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
  const result = await ok(['tpm', 'quote', '--pcrs', 'sha256:0,16', '--nonce', nonce, '--json', '--out-dir', 'q']);
  const out = JSON.parse(result);
  assert.equal(out.verified, true);
  assert.deepEqual(Object.keys(out.pcrs.sha256), ['0', '16']);
  const outDir = path.join(dir, 'q');
  for (const name of ['quote.msg', 'quote.sig', 'ak.pub', 'ak.pem', 'pcrs.json']) assert.ok(existsSync(path.join(outDir, name)), `${name} written`);
  const msg = new Uint8Array(await readFile(path.join(outDir, 'quote.msg')));
  assert.equal(toHex(msg), out.quote);
  const akPublic = unmarshal(TPM2B_PUBLIC, new Uint8Array(await readFile(path.join(outDir, 'ak.pub'))));
  assert.equal(akPublic.type, TPM_ALG.ECC);
  assert.match(await readFile(path.join(outDir, 'ak.pem'), 'utf8'), /^-----BEGIN PUBLIC KEY-----/);
  const pcrs = JSON.parse(await readFile(path.join(outDir, 'pcrs.json'), 'utf8'));
  assert.deepEqual(pcrs, out.pcrs);
  // An independent verification of the written files, against PCR values read now.
  const values = await direct((tpm) => tpm.readPcrs(TPM_ALG.SHA256, [0, 16]));
  assert.equal(pcrs.sha256['16'], toHex(values.get(16)!));
  const parsed = parseQuote(msg, new Uint8Array(await readFile(path.join(outDir, 'quote.sig'))));
  assert.equal(toHex(parsed.attest.extraData), nonce);
  const verified = await verifyQuote(parsed, { akPublic, nonce: Buffer.from(nonce, 'hex'), pcrValues: new Map([[TPM_ALG.SHA256, values]]) });
  assert.equal(verified.verified, true);
});

test('tpm ek --json prints the RSA EK (the one the TPM derives) and no certificate on an unmanufactured swtpm', async () => {
  const out = JSON.parse(await ok(['tpm', 'ek', '--json']));
  const ek = await direct(async (tpm) => {
    const key = await endorsementKey(tpm, 'rsa');
    await tpm.flush(key.handle);
    return key;
  });
  assert.equal(out.type, 'rsa');
  assert.equal(out.name, toHex(ek.name));
  assert.match(out.publicKeyPem, /^-----BEGIN PUBLIC KEY-----\n/);
  assert.equal(out.certificate, null);
  assert.equal(out.validation, null);
  const ecc = JSON.parse(await ok(['tpm', 'ek', '--type', 'ecc', '--json']));
  assert.equal(ecc.type, 'ecc');
  assert.match(ecc.name, /^000b[0-9a-f]{64}$/);
  assert.notEqual(ecc.name, out.name);
});

test('tpm nv define --counter, then increment twice prints 1 then 2', async () => {
  const index = '0x1500010';
  const defined = JSON.parse(await ok(['tpm', 'nv', 'define', '--index', index, '--counter', '--json']));
  assert.equal(defined.nvIndex, 0x1500010);
  assert.equal(defined.dataSize, 8);
  assert.equal((await ok(['tpm', 'nv', 'increment', '--index', index])).trim(), '1');
  assert.equal((await ok(['tpm', 'nv', 'increment', '--index', index])).trim(), '2');
  assert.deepEqual(JSON.parse(await ok(['tpm', 'nv', 'read', '--index', index, '--json'])), { data: '0000000000000002' });
  await ok(['tpm', 'nv', 'undefine', '--index', index]);
  const gone = await sigil(['tpm', 'nv', 'read', '--index', index]);
  assert.equal(gone.code, 1);
});

test('usage errors exit 2, an unreachable TPM exits 3', async () => {
  const badSpec = await sigil(['tpm', 'quote', '--pcrs', 'sha256:0,99', '--nonce', '00']);
  assert.equal(badSpec.code, 2);
  assert.match(badSpec.stderr, /cli\.usage_pcr_spec/);
  const badBank = await sigil(['tpm', 'seal', '--pcrs', 'nobank:7', '--in', 'secret', '--out', 'x.json']);
  assert.equal(badBank.code, 2);
  const missingOption = await sigil(['tpm', 'quote', '--pcrs', 'sha256:0']);
  assert.equal(missingOption.code, 2);
  assert.match(missingOption.stderr, /--nonce/);
  assert.equal(existsSync(path.join(dir, 'x.json')), false);

  const noTpm = await sigil(['tpm', 'pcrs', '--tpm', 'swtpm://127.0.0.1:1'], { tpm: false });
  assert.equal(noTpm.code, 3);
  assert.match(noTpm.stderr, /\[tpm\.transport/);
  const badUri = await sigil(['tpm', 'pcrs', '--tpm', 'ftp://x'], { tpm: false });
  assert.equal(badUri.code, 2, "a malformed TPM URI is a usage error");
});

test('demo --only tpm --json runs the TPM chain on its own swtpm and reports 7 steps', async () => {
  const result = await sigil(['demo', '--only', 'tpm', '--json'], { tpm: false });
  assert.equal(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout);
  assert.equal(out.demo, 'ok');
  assert.deepEqual(Object.keys(out.sections), ['tpm']);
  assert.equal(out.sections.tpm.length, 7);
  assert.match(out.sections.tpm[6].detail, /tpm\.policy_pcr_mismatch/);
  const bad = await sigil(['demo', '--only', 'nothing'], { tpm: false });
  assert.equal(bad.code, 2);
});
