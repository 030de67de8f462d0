/**
 * `sigil measure snp` as a sev-snp-measure user runs it: same flags, same output (the digest
 * alone, hex or base64), plus --json and --rv-out; usage mistakes exit 2, refusals exit 1.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { FIXTURES, fixturesAvailable } from '../../support/fixtures.ts';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../../..');
const skip = fixturesAvailable() ? false : 'no fixtures';
const AMDSEV = path.join(FIXTURES, 'measure/snp/ovmf_AmdSev_suffix.bin');
const OVMFX64 = path.join(FIXTURES, 'measure/snp/ovmf_OvmfX64_suffix.bin');
let dir: string;
let empty: string;

async function sigil(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('sh', [path.join(repo, 'scripts/sigil'), ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-measure-snp-'));
  empty = path.join(dir, 'empty');
  await writeFile(empty, '');
});
after(async () => rm(dir, { recursive: true, force: true }));

test('sigil measure snp prints the sev-snp-measure digest (ssm.snp_default), hex and base64', { skip }, async () => {
  const args = ['measure', 'snp', '--mode', 'snp', '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--guest-features', '0x21', '--ovmf', AMDSEV, '--kernel', empty, '--initrd', empty, '--append', 'console=ttyS0 loglevel=7'];
  const hex = await sigil(args);
  assert.equal(hex.code, 0, hex.stderr);
  assert.equal(hex.stdout, '803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977\n');
  const b64 = await sigil([...args, '--output-format', 'base64', '--rv-out', 'values.json']);
  assert.equal(b64.stdout.trim(), Buffer.from(hex.stdout.trim(), 'hex').toString('base64'));
  const values = JSON.parse(await readFile(path.join(dir, 'values.json'), 'utf8')).values;
  assert.equal(values[0].kind, 'snp-measurement');
  assert.equal(values[0].value, hex.stdout.trim());
  assert.deepEqual(values[0].sources.map((s: { name: string }) => s.name), ['ovmf', 'kernel', 'initrd', 'cmdline']);
});

test('sigil measure snp: SEV-ES, the OVMF hash and its seed, --vcpu-family, --json', { skip }, async () => {
  const seves = await sigil(['measure', 'snp', '--mode', 'seves', '--vcpus', '4', '--vcpu-family', '23', '--vcpu-model', '1', '--vcpu-stepping', '2', '--ovmf', AMDSEV, '--kernel', empty, '--initrd', empty, '--append', '']);
  assert.equal(seves.stdout.trim(), '0dccbcaba8e90b261bd0d2e1863a2f9da714768b7b2a19363cd6ae35aa90de91');
  const seed = await sigil(['measure', 'snp', '--mode', 'snp:ovmf-hash', '--ovmf', AMDSEV]);
  assert.equal(seed.stdout.trim(), '086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74');
  const seeded = await sigil(['measure', 'snp', '--vcpus', '1', '--vcpu-sig', '0x800f12', '--guest-features', '0x1', '--ovmf', AMDSEV, '--kernel', empty, '--initrd', empty, '--append', '', '--snp-ovmf-hash', seed.stdout.trim(), '--json']);
  const json = JSON.parse(seeded.stdout);
  assert.equal(json.measurement, 'ddc5224521617a536ee7ce9dd6224d1b58a8d4fda1c741f3ac99fc4bfa04ba6e9fc98646d4a07a9079397fa3852819b5');
  assert.equal(json.referenceValue.parameters.guestFeatures, '0x1');
});

test('sigil measure snp --mode snp:svsm from the OVMF hash and size (ssm.snp_svsm_2_vcpus)', { skip }, async () => {
  await writeFile(path.join(dir, 'svsm.bin'), gunzipSync(await readFile(path.join(FIXTURES, 'measure/snp/svsm.bin.gz'))));
  const seed = 'd6e9418b28aaf60734ea40a3bc0d422450010b288679a6a9ce8cef868476cb57252ae843f4220d7f7b2cbe91fc0ee131';
  const result = await sigil(['measure', 'snp', '--mode', 'snp:svsm', '--vcpus', '2', '--vcpu-type', 'EPYC-v4', '--svsm', 'svsm.bin', '--snp-ovmf-hash', seed, '--ovmf-size', '3653632', '--vars-size', '540672']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), '9b94745036aafddf4f7f8b00c7513abb5b7703178cb95aaa57928bd963d68d3bfcb715d6019b9167ee2517b11b0d9be7');
});

test('sigil measure snp: usage mistakes exit 2, refused inputs exit 1 with the upstream message', { skip }, async () => {
  const noVcpus = await sigil(['measure', 'snp', '--mode', 'snp', '--ovmf', AMDSEV, '--vcpu-type', 'EPYC']);
  assert.equal(noVcpus.code, 2);
  assert.match(noVcpus.stderr, /missing --vcpus N in guest mode 'snp' \[cli\.usage_measure\]/);
  const badFormat = await sigil(['measure', 'snp', '--ovmf', AMDSEV, '--vcpus', '1', '--vcpu-type', 'EPYC', '--output-format', 'octal']);
  assert.equal(badFormat.code, 2);
  const missing = await sigil(['measure', 'snp', '--ovmf', path.join(dir, 'nope.fd'), '--vcpus', '1', '--vcpu-type', 'EPYC']);
  assert.equal(missing.code, 2);
  const refused = await sigil(['measure', 'snp', '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--ovmf', OVMFX64, '--kernel', empty, '--json']);
  assert.equal(refused.code, 1);
  assert.deepEqual(JSON.parse(refused.stdout).error, { code: 'measure.snp_no_kernel_hashes_section', message: "Kernel specified but OVMF metadata doesn't include SNP_KERNEL_HASHES section", details: {} });
});
