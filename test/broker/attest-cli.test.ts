import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createHash } from 'node:crypto';
import { EV } from '../../src/eventlog/event-types.ts';
import { eventDigests, writeCryptoAgileLog } from '../../src/eventlog/tcg-writer.ts';
import { TPM_ALG } from '../../src/tpm/constants.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../src/tpm/tpm.ts';
import { efiAction, grub, imageLoad } from '../eventlog/builders.ts';
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

test('sigil attest --event-log: the broker replays the log against the quote and appraises its boot claims', async () => {
  // Measure a small boot into the swtpm (PCR 4: the boot application; PCR 8: GRUB's kernel
  // command line) and write the matching crypto-agile log, as firmware and GRUB would.
  const cmdline = '/vmlinuz root=/dev/sda1 ro';
  const events = [
    efiAction(4, 'Calling EFI Application from Boot Option'),
    imageLoad(4, EV.EFI_BOOT_SERVICES_APPLICATION, new TextEncoder().encode('shim image'), '\\EFI\\BOOT\\BOOTX64.EFI'),
    grub('kernel_cmdline: ', cmdline),
  ];
  const tpm = new Tpm(swtpm.transport());
  try {
    for (const event of events) {
      const [d] = await eventDigests(event, [TPM_ALG.SHA256]);
      await tpm.extend(event.pcr, [{ hashAlg: d.alg, digest: d.digest }]);
    }
  } finally {
    await tpm.close();
  }
  writeFileSync(path.join(dir, 'eventlog.bin'), await writeCryptoAgileLog(events, [TPM_ALG.SHA256]));
  const shim = createHash('sha256').update('shim image').digest('hex');
  const boot = { pcrs: { sha256: { '0': ['00'.repeat(32)] } }, requireEventLog: true, allowedEfiApplications: [shim], allowedKernelCmdlines: [cmdline] };
  await h.admin.call('PUT', '/v1/admin/tenants/acme/policies/boot', { kind: 'tpm', referenceValues: boot });
  await h.admin.call('PUT', '/v1/admin/tenants/acme/policies/other-cmdline', { kind: 'tpm', referenceValues: { ...boot, allowedKernelCmdlines: [`${cmdline} init=/bin/sh`] } });
  const common = ['--broker', h.broker.url, '--ca', path.join(dir, 'ca.pem'), '--tenant', 'acme', '--tpm', swtpm.uri, '--ak', path.join(dir, 'ak.json'), '--pcrs', 'sha256:0,4,8', '--event-log', path.join(dir, 'eventlog.bin'), '--json'];
  const ok = await sigil(['attest', ...common, '--policy', 'boot']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).status, 'affirming');
  const refused = await sigil(['attest', ...common, '--policy', 'other-cmdline']);
  assert.equal(refused.status, 1);
  const error = JSON.parse(refused.stdout).error;
  assert.equal(error.code, 'broker.appraisal_failed');
  assert.deepEqual(error.details.trace.filter((t: { result: string }) => t.result === 'fail').map((t: { rule: string }) => t.rule), ['boot.kernel-cmdline']);
  // Without the log the quote alone cannot show what booted.
  const withoutLog = await sigil(['attest', ...common.filter((a) => !a.endsWith('eventlog.bin') && a !== '--event-log'), '--policy', 'boot']);
  assert.equal(withoutLog.status, 1);
  assert.deepEqual(JSON.parse(withoutLog.stdout).error.details.trace.filter((t: { result: string }) => t.result === 'fail').map((t: { rule: string }) => t.rule), ['eventlog.present', 'boot.efi-applications', 'boot.kernel-cmdline']);
});
