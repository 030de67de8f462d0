/**
 * The reference-value pipeline from the command line: predict (SNP, TDX) into unsigned values,
 * sign them as one JWS document, verify it against the trusted key; a changed value, another key
 * or an expired document is refused (exit 1, with the rv.* code).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { FIXTURES, fixturesAvailable } from '../../support/fixtures.ts';

const run = promisify(execFile);
const repo = path.resolve(import.meta.dirname, '../../..');
const DEBIAN_OVMF = '/usr/share/ovmf/OVMF.fd';
const skip = !fixturesAvailable() ? 'no fixtures' : existsSync(DEBIAN_OVMF) ? false : `${DEBIAN_OVMF} is absent (Debian package ovmf)`;
let dir: string;

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

async function ok(args: string[]): Promise<string> {
  const result = await sigil(args);
  assert.equal(result.code, 0, `sigil ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

function keyFiles(name: string): Promise<void[]> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384', privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  return Promise.all([writeFile(path.join(dir, `${name}.key`), privateKey, { mode: 0o600 }), writeFile(path.join(dir, `${name}.pub`), publicKey)]);
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-rv-'));
  await keyFiles('signer');
  await keyFiles('other');
});
after(async () => rm(dir, { recursive: true, force: true }));

test('predict SNP and TDX values, sign them as one document, verify, refuse tampering', { skip }, async () => {
  await ok(['measure', 'snp', '--ovmf', DEBIAN_OVMF, '--vcpus', '2', '--vcpu-type', 'EPYC-Genoa', '--rv-out', 'snp.json']);
  const metadata = path.join(FIXTURES, 'measure/tdx/canonical-defaults/metadata.json');
  const tdx = JSON.parse(await ok(['measure', 'tdx', '--metadata', metadata, '--ovmf', DEBIAN_OVMF, '--platform-only', '--rv-out', 'tdx.json', '--json']));
  assert.match(tdx.mrtd, /^[0-9a-f]{96}$/);
  assert.match(tdx.rtmr0, /^[0-9a-f]{96}$/);
  // The --json outputs are accepted as they are: measure tdx and uki predict carry referenceValues.
  await writeFile(path.join(dir, 'tdx-out.json'), JSON.stringify(tdx));
  const pcr4 = { kind: 'tpm-pcr', index: 4, bank: 'sha256', value: '4'.repeat(64), sources: [{ name: 'uki.efi', sha256: '0'.repeat(64) }], parameters: { stubVersion: 252 } };
  await writeFile(path.join(dir, 'uki.json'), JSON.stringify({ type: 'sigil.reference-values.uki/1', referenceValues: [pcr4] }));
  await ok(['measure', 'sign-rv', '--key', 'signer.key', '--kid', 'ci-2026', '--issuer', 'Sigil CI', '--in', 'snp.json', 'tdx.json', 'uki.json', '--out', 'rv.jws', '--valid-days', '30']);
  const verified = JSON.parse(await ok(['measure', 'verify-rv', '--in', 'rv.jws', '--key', 'signer.pub', '--json']));
  assert.equal(verified.verified, true);
  assert.equal(verified.alg, 'ES384');
  assert.equal(verified.kid, undefined, 'the trusted PEM names no kid; the header does');
  assert.deepEqual(verified.document.values.map((v: { kind: string }) => v.kind), ['snp-measurement', 'tdx-mrtd', 'tdx-rtmr', 'tpm-pcr']);
  assert.deepEqual(verified.document.values[3], pcr4);
  await ok(['measure', 'sign-rv', '--key', 'signer.key', '--in', 'tdx-out.json', '--out', 'tdx.jws']);
  const fromJson = JSON.parse(await ok(['measure', 'verify-rv', '--in', 'tdx.jws', '--key', 'signer.pub', '--json']));
  assert.deepEqual(fromJson.document.values.map((v: { value: string }) => v.value), [tdx.mrtd, tdx.rtmr0]);
  assert.equal(verified.document.values[1].value, tdx.mrtd);
  assert.equal(verified.document.values[2].value, tdx.rtmr0);
  assert.equal(verified.document.issuer, 'Sigil CI');
  const text = await ok(['measure', 'verify-rv', '--in', 'rv.jws', '--key', 'signer.pub']);
  assert.match(text, new RegExp(`tdx-rtmr\\[0\\] ${tdx.rtmr0}`));

  // A changed value: the payload no longer matches the signature.
  const [header, payload, signature] = (await readFile(path.join(dir, 'rv.jws'), 'utf8')).trim().split('.');
  const doc = JSON.parse(Buffer.from(payload, 'base64url').toString());
  doc.values[1].value = '00'.repeat(48);
  await writeFile(path.join(dir, 'changed.jws'), `${header}.${Buffer.from(JSON.stringify(doc)).toString('base64url')}.${signature}`);
  const changed = await sigil(['measure', 'verify-rv', '--in', 'changed.jws', '--key', 'signer.pub']);
  assert.equal(changed.code, 1);
  assert.match(changed.stderr, /\[rv\.signature_invalid\]/);
  const wrongKey = await sigil(['measure', 'verify-rv', '--in', 'rv.jws', '--key', 'other.pub', '--json']);
  assert.equal(wrongKey.code, 1);
  assert.equal(JSON.parse(wrongKey.stdout).error.code, 'rv.signature_invalid');

  await ok(['measure', 'sign-rv', '--key', 'signer.key', '--in', 'snp.json', '--out', 'expired.jws', '--valid-days', '0']);
  const expired = await sigil(['measure', 'verify-rv', '--in', 'expired.jws', '--key', 'signer.pub']);
  assert.equal(expired.code, 1);
  assert.match(expired.stderr, /\[rv\.expired\]/);
});

test('sign-rv refuses malformed values and public keys', { skip }, async () => {
  await writeFile(path.join(dir, 'bad.json'), JSON.stringify({ values: [{ kind: 'tdx-rtmr', value: 'ab' }] }));
  const bad = await sigil(['measure', 'sign-rv', '--key', 'signer.key', '--in', 'bad.json', '--out', 'x.jws']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /\[rv\.malformed\]/);
  await writeFile(path.join(dir, 'good.json'), JSON.stringify([{ kind: 'tpm-pcr', index: 4, bank: 'sha256', value: 'ab'.repeat(32) }]));
  const pub = await sigil(['measure', 'sign-rv', '--key', 'signer.pub', '--in', 'good.json', '--out', 'x.jws']);
  assert.equal(pub.code, 1);
  assert.match(pub.stderr, /\[rv\.key_invalid\]/);
});
