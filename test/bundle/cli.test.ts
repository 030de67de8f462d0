/**
 * Bundles and key duplication as a user runs them. Machine A is a swtpm driven by `sigil`
 * processes (keyset create, device provision, bundle seal | inspect | open | revoke); machine B is
 * provisioned in-process and is a second recipient and the duplication target. `sigil tpm
 * duplicate` is exercised in-process through registerTpmDuplicate (the lead wires it into
 * `sigil tpm`). swtpm serves one client at a time: this process connects only between CLI runs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { isSigilError } from '../../src/core/errors.ts';
import { registerTpmDuplicate } from '../../src/cli/tpm-duplicate.ts';
import { Keyset } from '../../src/device/keyset.ts';
import { provisionDevice } from '../../src/device/provision.ts';
import type { SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../src/tpm/tpm.ts';
import { measureBoot, startMachine, type Machine } from '../device/support.ts';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../..');
let machineA: Machine;
let swtpm: SwtpmInstance;
let machineB: Machine;
let dir: string;

async function sigil(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, SIGIL_TPM: swtpm.uri };
  delete env.SIGIL_KEYSET_PASSPHRASE;
  try {
    const { stdout, stderr } = await run('sh', [path.join(repo, 'scripts/sigil'), ...args], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function ok(...args: string[]): Promise<string> {
  const result = await sigil(...args);
  assert.equal(result.code, 0, `sigil ${args.join(' ')} exited ${result.code}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** `sigil tpm duplicate ...` in this process. */
async function duplicateCli(...args: string[]): Promise<void> {
  const program = new Command('sigil').exitOverride();
  registerTpmDuplicate(program.command('tpm'));
  const cwd = process.cwd();
  const log = console.log;
  process.chdir(dir);
  console.log = () => undefined; // the command's one-line report
  try {
    await program.parseAsync(['tpm', 'duplicate', ...args], { from: 'user' });
  } finally {
    console.log = log;
    process.chdir(cwd);
  }
}

/** Replay the boot measurements on A from this process (the CLI is not running). */
async function measureA(): Promise<void> {
  const tpm = new Tpm(swtpm.transport());
  try {
    await measureBoot({ ...machineA, tpm });
  } finally {
    await tpm.close();
  }
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-bundle-cli-'));
  machineA = await startMachine();
  swtpm = machineA.swtpm;
  await machineA.tpm.close(); // the CLI owns A's connection from here on
  machineB = await startMachine();
  await writeFile(path.join(dir, 'disk.txt'), 'root disk passphrase via the CLI');
  await writeFile(path.join(dir, 'vmlinuz'), randomBytes(3000));
  await writeFile(path.join(dir, 'initrd.img'), randomBytes(5000));
  await writeFile(path.join(dir, 'cmdline'), 'root=/dev/mapper/root ro quiet\n');
});

after(async () => {
  machineA.tpm = new Tpm(swtpm.transport());
  await machineA?.stop();
  await machineB?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('bundle seal, inspect, open, revoke and tpm duplicate through the CLI', async () => {
  await ok('keyset', 'create', '--dir', 'keyset', '--vendor', 'Acme CLI', '--product', 'acme-gw');
  await ok('keyset', 'trust', '--keyset', 'keyset', '--out', 'trust.json');
  await ok('device', 'provision', '--keyset', 'keyset', '--product', 'acme-gw', '--serial', 'SN-CLI-A', '--ek-ca', swtpm.localCa!.rootCert, swtpm.localCa!.intermediateCert, '--out', 'a.json');
  const keyset = await Keyset.open(path.join(dir, 'keyset'));
  const { record: recordB } = await provisionDevice(machineB.tpm, { keyset, productId: 'acme-gw', serial: 'SN-CLI-B', ekRoots: machineB.ekRoots, ekIntermediates: machineB.ekIntermediates });
  await writeFile(path.join(dir, 'b.json'), JSON.stringify(recordB));
  await measureA();

  const artefacts = ['--kernel', 'vmlinuz', '--initrd', 'initrd.img', '--cmdline-file', 'cmdline'];
  const sealed = JSON.parse(
    await ok('bundle', 'seal', '--keyset', 'keyset', '--product', 'acme-gw', '--record', 'a.json', '--record', 'b.json', '--secret', 'root-disk=disk.txt', ...artefacts, '--from-tpm', swtpm.uri, '--id', 'cli-fleet', '--out', 'bundle.json', '--json'),
  );
  assert.deepEqual(sealed.recipients, [
    { serial: 'SN-CLI-A', pcrs: 'sha256:7,11' },
    { serial: 'SN-CLI-B', pcrs: 'sha256:7,11' },
  ]);
  const inspected = JSON.parse(await ok('bundle', 'inspect', '--bundle', 'bundle.json', '--trust', 'trust.json', '--json'));
  assert.equal(inspected.signature, 'verified');
  assert.equal(inspected.epoch, 1);

  const opened = await sigil('bundle', 'open', '--trust', 'trust.json', '--bundle', 'bundle.json', ...artefacts);
  assert.equal(opened.code, 0, opened.stderr);
  assert.equal(opened.stdout, 'root disk passphrase via the CLI');
  assert.match(opened.stderr, /epoch 1 opened on SN-CLI-A \(kernel, initrd, cmdline match\)/);
  await writeFile(path.join(dir, 'vmlinuz.evil'), randomBytes(3000));
  const evil = await sigil('bundle', 'open', '--trust', 'trust.json', '--bundle', 'bundle.json', '--kernel', 'vmlinuz.evil', '--initrd', 'initrd.img', '--cmdline-file', 'cmdline');
  assert.equal(evil.code, 1);
  assert.equal(evil.stdout, '');
  assert.match(evil.stderr, /\[bundle\.integrity_mismatch\]/);
  const pcr16 = await sigil('bundle', 'seal', '--keyset', 'keyset', '--product', 'acme-gw', '--record', 'a.json', '--secret', 'd=disk.txt', ...artefacts, '--from-tpm', swtpm.uri, '--pcrs', 'sha256:7,16', '--out', 'x.json');
  assert.equal(pcr16.code, 1);
  assert.match(pcr16.stderr, /PCR 16 can be reset .*\[bundle\.pcr_resettable\]/);

  // Revoke A (the CLI machine): B stays, A is refused, and the old file still says epoch 1.
  const revoked = JSON.parse(await ok('bundle', 'revoke', '--keyset', 'keyset', '--bundle', 'bundle.json', '--serial', 'SN-CLI-A', '--out', 'bundle2.json', '--json'));
  assert.equal(revoked.epoch, 2);
  assert.deepEqual(revoked.recipients.map((r: { serial: string }) => r.serial), ['SN-CLI-B']);
  const refused = await sigil('bundle', 'open', '--trust', 'trust.json', '--bundle', 'bundle2.json', ...artefacts);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /SN-CLI-A is not a recipient of bundle cli-fleet \(epoch 2\).*\[bundle\.not_a_recipient\]/);
  const rolledBack = await sigil('bundle', 'open', '--trust', 'trust.json', '--bundle', 'bundle.json', ...artefacts, '--min-epoch', '2');
  assert.match(rolledBack.stderr, /\[bundle\.epoch_rolled_back\]/);

  // Key duplication: create on A, the vendor approves B's SRK, export on A, import on B (not on A).
  await duplicateCli('create-key', '--trust', 'trust.json', '--out', 'wrap.json', '--tpm', swtpm.uri);
  assert.equal(JSON.parse(await readFile(path.join(dir, 'wrap.json'), 'utf8')).productId, 'acme-gw', 'the product comes from the device certificate');
  await duplicateCli('approve', '--keyset', 'keyset', '--key', 'wrap.json', '--new-parent', 'b.json', '--out', 'approval.json');
  await duplicateCli('export', '--trust', 'trust.json', '--key', 'wrap.json', '--approval', 'approval.json', '--out', 'moved.json', '--tpm', swtpm.uri);
  await assert.rejects(duplicateCli('import', '--trust', 'trust.json', '--duplicate', 'moved.json', '--out', 'wrapA.json', '--tpm', swtpm.uri), (e: unknown) => isSigilError(e, 'duplication.wrong_parent'));
  await machineB.tpm.close();
  try {
    await duplicateCli('import', '--trust', 'trust.json', '--duplicate', 'moved.json', '--out', 'wrapB.json', '--tpm', machineB.swtpm.uri);
  } finally {
    machineB.tpm = new Tpm(machineB.swtpm.transport());
  }
  const onB = JSON.parse(await readFile(path.join(dir, 'wrapB.json'), 'utf8'));
  assert.equal(onB.name, JSON.parse(await readFile(path.join(dir, 'wrap.json'), 'utf8')).name);
  assert.equal(onB.parentName, JSON.parse(await readFile(path.join(dir, 'b.json'), 'utf8')).storageKey.name);
  // An approval signed for A's SRK, relabelled to name B's, is refused before the TPM sees it.
  await duplicateCli('approve', '--keyset', 'keyset', '--key', 'wrap.json', '--new-parent', 'a.json', '--out', 'approval-a.json');
  const approvalA = JSON.parse(await readFile(path.join(dir, 'approval-a.json'), 'utf8'));
  const forged = { ...approvalA, newParent: JSON.parse(await readFile(path.join(dir, 'approval.json'), 'utf8')).newParent };
  await writeFile(path.join(dir, 'forged.json'), JSON.stringify(forged));
  await assert.rejects(duplicateCli('export', '--trust', 'trust.json', '--key', 'wrap.json', '--approval', 'forged.json', '--out', 'x.json', '--tpm', swtpm.uri), (e: unknown) =>
    isSigilError(e, 'duplication.approval_invalid'),
  );
});
