/**
 * `sigil verify` and `sigil eventlog replay` as a user runs them: real evidence from the shared
 * fixtures (pinned verification times), a quote made on a private swtpm checked through both the
 * bundle and the tpm2-tools-files paths, and the failed check named with exit code 1.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { fromHex } from '../../src/core/hex.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { FIXTURES, fixtureTest } from '../support/fixtures.ts';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../..');
let dir: string;
let swtpm: SwtpmInstance;

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

const f = (name: string) => path.join(FIXTURES, name);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-verify-cli-'));
  swtpm = await startSwtpm({ pcrBanks: ['sha256'] });
});

after(async () => {
  await swtpm?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('SNP, TDX and Azure fixtures verify with their stated values; a wrong time names the failed check', fixtureTest(), async () => {
  const snp = await sigil(['verify', f('snp/gosevguest_milan_attestation.bin'), '--vcek', f('snp/gosevguest_milan_vcek.der'), '--at', '2022-09-24T01:00:00Z', '--json']);
  assert.equal(snp.code, 0, snp.stderr);
  const snpOut = JSON.parse(snp.stdout);
  assert.equal(snpOut.kind, 'snp');
  assert.equal(snpOut.claims.product, 'Milan');
  assert.match(snpOut.claims.reportData, /^0102030405/);

  const tdx = await sigil(['verify', f('tdx/dcapqvl_tdx_quote_v4.dat'), '--at', '1752919234', '--json']);
  assert.equal(tdx.code, 0, tdx.stderr);
  assert.equal(JSON.parse(tdx.stdout).kind, 'tdx');

  const azure = await sigil(['verify', f('azure/trustee_azsnp_genoa_evidence.json'), '--at', '2025-06-01']);
  assert.equal(azure.code, 0, azure.stderr);
  assert.match(azure.stdout, /verified azure-snp evidence/);

  // The SPR E4 PCK leaf expired in 2029: at 2053 the chain check fails and says so.
  const expired = await sigil(['verify', f('tdx/gotdxguest_quote_v4_spr_e4.dat'), '--at', '2053-01-01']);
  assert.equal(expired.code, 1);
  assert.match(expired.stderr, /\[tdx\.pck_chain_expired\]/);

  const garbage = path.join(dir, 'garbage.bin');
  await writeFile(garbage, new Uint8Array(100).fill(7));
  const unknown = await sigil(['verify', garbage]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /evidence\.kind_unknown/);
});

test('a Sigil quote verifies as a TPM bundle and as tpm2-tools files; a wrong nonce is refused', async () => {
  const nonce = '00112233445566778899aabbccddeeff';
  const out = path.join(dir, 'quote');
  const quoted = await sigil(['tpm', 'quote', '--tpm', swtpm.uri, '--pcrs', 'sha256:0,7,16', '--nonce', nonce, '--out-dir', out, '--json']);
  assert.equal(quoted.code, 0, quoted.stderr);
  const bundle = JSON.parse(quoted.stdout);
  const bundleFile = path.join(dir, 'bundle.json');
  await writeFile(bundleFile, quoted.stdout);

  const viaBundle = await sigil(['verify', bundleFile, '--nonce', nonce, '--ak-name', bundle.akName, '--json']);
  assert.equal(viaBundle.code, 0, viaBundle.stderr);
  const claims = JSON.parse(viaBundle.stdout).claims;
  assert.equal(claims.ak.trustedBy, 'pinned');
  assert.deepEqual(claims.pcrs.sha256, bundle.pcrs.sha256);

  const untrusted = await sigil(['verify', bundleFile, '--nonce', nonce]);
  assert.equal(untrusted.code, 1, 'an AK nobody vouches for is refused');

  // tpm2-tools' "values" PCR format: the quoted values concatenated in selection order.
  const pcrs = JSON.parse(await readFile(path.join(out, 'pcrs.json'), 'utf8')).sha256 as Record<string, string>;
  await writeFile(path.join(out, 'pcrs.bin'), Buffer.concat(['0', '7', '16'].map((i) => fromHex(pcrs[i]))));
  const files = ['verify', 'tpm', '--quote', path.join(out, 'quote.msg'), '--sig', path.join(out, 'quote.sig'), '--pcrs', path.join(out, 'pcrs.bin'), '--ak'];
  for (const ak of ['ak.pub', 'ak.pem']) {
    const good = await sigil([...files, path.join(out, ak), '--nonce', nonce]);
    assert.equal(good.code, 0, `${ak}: ${good.stderr}`);
    const wrongNonce = await sigil([...files, path.join(out, ak), '--nonce', 'ff']);
    assert.equal(wrongNonce.code, 1);
    assert.match(wrongNonce.stderr, /tpm\.quote_nonce_mismatch/);
  }
});

test('sigil eventlog replay prints the replayed banks like sigil tpm pcrs', fixtureTest(), async () => {
  const result = await sigil(['eventlog', 'replay', f('tpm/gotpmtools_gce_cos85_eventlog.bin'), '--json']);
  assert.equal(result.code, 0, result.stderr);
  const banks = JSON.parse(result.stdout);
  // PCR 0 of the COS 85 attestation, as the fixtures README states it.
  assert.equal(banks.sha256['0'], '0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf');
  assert.equal(banks.sha256['7'], '3365d7fa2b024c852913c06e04ffbfa6ea5289f743bbf1a76f7ffdf21ed84793');
});
