/**
 * The device lifecycle as a user runs it (`sh scripts/sigil ...`) against a private swtpm:
 * keyset create → trust → device provision → policy sign → boot seal → boot unseal (stdout, then
 * refused in the same boot) → reboot → unseal to a 0600 file → releases and the floor. Exit codes:
 * 0 ok, 1 refused, 2 usage, 3 environment. swtpm serves one client at a time, so this process
 * connects only between CLI runs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startup } from '../../src/tpm/commands/startup.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../src/tpm/tpm.ts';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../..');
let swtpm: SwtpmInstance;
let dir: string;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function sigil(...args: string[]): Promise<CliResult> {
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

/** Reboot the TPM (power cycle + Startup) and replay the boot measurements, from this process. */
async function rebootAndMeasure(options: { reboot?: boolean } = {}): Promise<void> {
  const tpm = new Tpm(swtpm.transport());
  try {
    if (options.reboot !== false) {
      await swtpm.control.init();
      await tpm.client.run(startup());
    }
    await tpm.extendEvent(7, new TextEncoder().encode('cli secure boot'));
    await tpm.extendEvent(11, new TextEncoder().encode('cli kernel'));
  } finally {
    await tpm.close();
  }
}

before(async () => {
  swtpm = await startSwtpm({ ekCert: true });
  dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-device-cli-'));
  await writeFile(path.join(dir, 'pw'), 'cli keyset passphrase\n');
  await writeFile(path.join(dir, 'disk.txt'), 'disk passphrase via the CLI');
});

after(async () => {
  await swtpm?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the whole lifecycle through the CLI', async () => {
  const created = JSON.parse(await ok('keyset', 'create', '--dir', 'keyset', '--vendor', 'Acme CLI', '--product', 'acme-gw', '--passphrase-file', 'pw', '--json'));
  assert.deepEqual({ ...created, policySigningKeyName: undefined }, { dir: 'keyset', vendor: 'Acme CLI', encrypted: true, products: ['acme-gw'], policySigningKeyName: undefined });
  assert.match(created.policySigningKeyName, /^000b[0-9a-f]{64}$/);
  assert.equal(statSync(path.join(dir, 'keyset/manufacturing-ca.key')).mode & 0o777, 0o600);
  assert.match(await readFile(path.join(dir, 'keyset/policy-signing.key'), 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  await ok('keyset', 'trust', '--keyset', 'keyset', '--out', 'trust.json');

  // Without the passphrase the encrypted keyset refuses to sign.
  const noPass = await sigil('device', 'provision', '--keyset', 'keyset', '--product', 'acme-gw', '--serial', 'SN-CLI-1', '--out', 'record.json', '--allow-unverified-ek');
  assert.equal(noPass.code, 1);
  assert.match(noPass.stderr, /encrypted: give its passphrase .*\[keyset\.passphrase_required\]/);

  const ekCa = [swtpm.localCa!.rootCert, swtpm.localCa!.intermediateCert];
  const provisioned = JSON.parse(await ok('device', 'provision', '--keyset', 'keyset', '--product', 'acme-gw', '--serial', 'SN-CLI-1', '--ek-ca', ...ekCa, '--out', 'record.json', '--passphrase-file', 'pw', '--json'));
  assert.equal(provisioned.serial, 'SN-CLI-1');
  assert.equal(statSync(path.join(dir, 'record.json')).mode & 0o777, 0o600);
  const verified = JSON.parse(await ok('device', 'verify-record', 'record.json', '--trust', 'trust.json', '--ek-ca', ...ekCa, '--json'));
  assert.equal(verified.verified, true);
  assert.equal(verified.ekCertificateChecked, true);
  const shown = JSON.parse(await ok('device', 'show', '--trust', 'trust.json', '--json'));
  assert.equal(shown.productId, 'acme-gw');
  assert.equal(shown.serial, 'SN-CLI-1');
  assert.equal(shown.releaseFloor, 1);

  await rebootAndMeasure({ reboot: false });
  await ok('policy', 'sign', '--keyset', 'keyset', '--product', 'acme-gw', '--release', '1', '--from-tpm', swtpm.uri, '--pcrs', 'sha256:7,11', '--out', 'policy.json', '--passphrase-file', 'pw');
  const policyCheck = JSON.parse(await ok('policy', 'verify', 'policy.json', '--trust', 'trust.json', '--product', 'acme-gw', '--json'));
  assert.deepEqual(policyCheck, { verified: true, productId: 'acme-gw', release: 1, lockoutPcr: 15, pcrs: ['sha256:7,11,15'] });
  const otherProduct = await sigil('policy', 'verify', 'policy.json', '--trust', 'trust.json', '--product', 'acme-cam');
  assert.equal(otherProduct.code, 1);

  await ok('boot', 'seal', '--trust', 'trust.json', '--secret', 'disk=disk.txt', '--out', 'sealed.json');
  const unsealed = await sigil('boot', 'unseal', '--trust', 'trust.json', '--policy', 'policy.json', '--sealed', 'sealed.json');
  assert.equal(unsealed.code, 0, unsealed.stderr);
  assert.equal(unsealed.stdout, 'disk passphrase via the CLI');
  assert.match(unsealed.stderr, /PCR 15 extended \(locked out until reboot\)/);
  const again = await sigil('boot', 'unseal', '--trust', 'trust.json', '--policy', 'policy.json', '--sealed', 'sealed.json');
  assert.equal(again.code, 1);
  assert.equal(again.stdout, '');
  assert.match(again.stderr, /lock-out PCR 15 was already extended.*\[device\.locked_out\]/);

  await rebootAndMeasure();
  const report = JSON.parse(await ok('boot', 'unseal', '--trust', 'trust.json', '--policy', 'policy.json', '--sealed', 'sealed.json', '--sink', 'disk=file:disk.key', '--json'));
  assert.deepEqual(report.delivered, [{ name: 'disk', sink: 'file', where: 'disk.key' }]);
  assert.equal(report.lockoutPcr, 15);
  assert.equal(statSync(path.join(dir, 'disk.key')).mode & 0o777, 0o600);
  assert.equal(await readFile(path.join(dir, 'disk.key'), 'utf8'), 'disk passphrase via the CLI');

  await rebootAndMeasure();
  let keyctl = true;
  try {
    execFileSync('keyctl', ['--version'], { stdio: 'ignore' });
  } catch {
    keyctl = false;
  }
  const keyring = await sigil('boot', 'unseal', '--trust', 'trust.json', '--policy', 'policy.json', '--sealed', 'sealed.json', '--sink', 'disk=keyring:sigil-cli-test');
  if (keyctl) assert.equal(keyring.code, 0, keyring.stderr);
  else {
    assert.equal(keyring.code, 3, 'no keyctl: an environment error');
    assert.match(keyring.stderr, /keyutils.*\[env\.keyring_unavailable\]/);
    // Found out before unsealing: the boot's one attempt is still there.
    await ok('boot', 'unseal', '--trust', 'trust.json', '--policy', 'policy.json', '--sealed', 'sealed.json', '--sink', 'disk=file:disk2.key');
  }

  const usage = await sigil('policy', 'sign', '--keyset', 'keyset', '--product', 'acme-gw', '--release', '2', '--out', 'p2.json');
  assert.equal(usage.code, 2, 'neither --pcr-values nor --from-tpm');
});

test('releases through the CLI: accept N, refuse N-1, read the floor; escrow opens for the vendor', async () => {
  await ok('keyset', 'sign-release', '--keyset', 'keyset', '--product', 'acme-gw', '--release', '2', '--out', 'r2.json', '--passphrase-file', 'pw');
  await ok('keyset', 'sign-release', '--keyset', 'keyset', '--product', 'acme-gw', '--release', '1', '--out', 'r1.json', '--passphrase-file', 'pw');
  assert.deepEqual(JSON.parse(await ok('device', 'accept-release', 'r2.json', '--trust', 'trust.json', '--json')), { accepted: true, productId: 'acme-gw', release: 2, floor: 2 });
  const old = await sigil('device', 'accept-release', 'r1.json', '--trust', 'trust.json');
  assert.equal(old.code, 1);
  assert.match(old.stderr, /older than this device's lowest accepted release 2 \[device\.release_rolled_back\]/);
  assert.equal((await ok('device', 'floor')).trim(), '2');
  await ok('keyset', 'open-escrow', '--keyset', 'keyset', '--record', 'record.json', '--out', 'auths.json', '--passphrase-file', 'pw');
  assert.equal(statSync(path.join(dir, 'auths.json')).mode & 0o777, 0o600);
  const auths = JSON.parse(await readFile(path.join(dir, 'auths.json'), 'utf8'));
  assert.deepEqual(Object.keys(auths).sort(), ['lockout', 'owner']);
  assert.match(auths.owner, /^[0-9a-f]{64}$/);
});
