import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { startTestBroker, type TestBroker } from './support/harness.ts';

// The CLI runs as a child process while the broker runs in this one: spawn asynchronously, so
// the broker's event loop keeps serving.
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const sigil = (args: string[]) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [MAIN, ...args], { timeout: 60_000 }, (error, stdout, stderr) => resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );

let swtpm: SwtpmInstance;
let h: TestBroker;
let dir: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sigil-attest-cli-'));
  swtpm = await startSwtpm({ ekCert: true });
  h = await startTestBroker();
  await h.admin.call('PUT', '/v1/admin/tenants/acme', {});
  await h.admin.call('PUT', '/v1/admin/tenants/acme/ca-bundles/ek', { purpose: 'tpm-ek', pem: readFileSync(swtpm.localCa!.rootCert, 'utf8') + readFileSync(swtpm.localCa!.intermediateCert, 'utf8') });
  // A fresh swtpm: PCRs 0 and 7 are still zero.
  await h.admin.call('PUT', '/v1/admin/tenants/acme/policies/p', { kind: 'tpm', referenceValues: { pcrs: { sha256: { '0': ['00'.repeat(32)], '7': ['00'.repeat(32)] } } } });
  await h.admin.call('PUT', '/v1/admin/tenants/acme/resources/app/key', { value: 'from the CLI', releasePolicy: { policies: ['p'] } });
  writeFileSync(path.join(dir, 'ca.pem'), h.broker.caPem!);
});
after(async () => {
  await h?.close();
  await swtpm?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('sigil attest: enrol, attest and receive a secret; without an AK file it says what to do', async () => {
  const common = ['--broker', h.broker.url, '--ca', path.join(dir, 'ca.pem'), '--tenant', 'acme', '--tpm', swtpm.uri, '--ak', path.join(dir, 'ak.json'), '--pcrs', 'sha256:0,7'];
  const missing = await sigil(['attest', ...common]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /enrol first with --enrol \[attester\.ak_file_missing\]/);
  const enrolled = await sigil(['attest', ...common, '--enrol', '--device', 'cli-1', '--resource', 'app/key', '--out', path.join(dir, 'secret')]);
  assert.equal(enrolled.status, 0, enrolled.stderr);
  assert.equal(readFileSync(path.join(dir, 'secret'), 'utf8'), 'from the CLI');
  assert.equal(statSync(path.join(dir, 'secret')).mode & 0o777, 0o600);
  assert.equal(JSON.parse(readFileSync(path.join(dir, 'ak.json'), 'utf8')).deviceId, 'cli-1');
  const again = await sigil(['attest', ...common, '--resource', 'app/key', '--json']);
  assert.equal(again.status, 0, again.stderr);
  const result = JSON.parse(again.stdout);
  assert.equal(result.status, 'affirming');
  assert.equal(Buffer.from(result.secret, 'base64').toString(), 'from the CLI');
});
