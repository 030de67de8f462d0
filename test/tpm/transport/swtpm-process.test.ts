import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { startSwtpm } from '../../../src/tpm/swtpm-process.ts';
import { openTransport } from '../../../src/tpm/transport/uri.ts';
import { GET_RANDOM_8, isRunning, rejectsSigil, responseCode } from './fake-server.ts';

const run = promisify(execFile);
const tools = (port: number) => ({ env: { ...process.env, TPM2TOOLS_TCTI: `swtpm:host=127.0.0.1,port=${port}` } });

test('stop() shuts swtpm down and removes its folder; a second stop() is harmless', async () => {
  const tpm = await startSwtpm();
  assert.ok(isRunning(tpm.pid));
  assert.ok(existsSync(path.join(tpm.stateDir, 'tpm2-00.permall')));
  assert.notEqual(tpm.serverPort, 0);
  assert.equal(tpm.controlPort, tpm.serverPort + 1);
  assert.equal(tpm.uri, `swtpm://127.0.0.1:${tpm.serverPort}`);
  const transport = openTransport(tpm.uri);
  assert.equal(responseCode(await transport.send(GET_RANDOM_8)), 0);
  await transport.close();
  await tpm.stop();
  await tpm.stop();
  assert.equal(isRunning(tpm.pid), false);
  assert.equal(existsSync(tpm.dir), false);
});

test('instances run side by side on distinct ports, with the sha1 and sha256 banks only by default', async () => {
  const [a, b] = await Promise.all([startSwtpm(), startSwtpm({ pcrBanks: ['sha256', 'sha384'] })]);
  try {
    assert.notEqual(a.serverPort, b.serverPort);
    assert.deepEqual(a.pcrBanks, ['sha1', 'sha256']);
    const banksOf = async (port: number) => {
      const { stdout } = await run('tpm2_getcap', ['pcrs'], tools(port));
      return [...stdout.matchAll(/- (\w+): \[ 0,/g)].map((m) => m[1]);
    };
    assert.deepEqual(await banksOf(a.serverPort), ['sha1', 'sha256']);
    assert.deepEqual(await banksOf(b.serverPort), ['sha256', 'sha384']);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});

test('ekCert: EK certificates in NV chain to the private local CA', async () => {
  const tpm = await startSwtpm({ ekCert: true });
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'sigil-ek-'));
  try {
    assert.ok(tpm.localCa && tpm.localCaDir);
    assert.ok(tpm.localCa.rootCert.startsWith(tpm.dir) && existsSync(tpm.localCa.rootCert));
    assert.ok(tpm.localCa.intermediateCert.startsWith(tpm.dir) && existsSync(tpm.localCa.intermediateCert));

    // swtpm serves one client at a time: tpm2-tools gets it because no transport is open.
    const { stdout: nvList } = await run('tpm2_nvreadpublic', [], tools(tpm.serverPort));
    for (const index of ['0x1c00002', '0x1c00016', '0x1c08000']) assert.match(nvList, new RegExp(`^${index}:`, 'm'));
    assert.doesNotMatch(nvList, /writelocked/, 'NV is left unlocked for tests');

    const der = path.join(scratch, 'ek.der');
    const pem = path.join(scratch, 'ek.pem');
    await run('tpm2_nvread', ['0x1c00002', '-C', 'o', '-o', der], tools(tpm.serverPort));
    await run('openssl', ['x509', '-inform', 'der', '-in', der, '-out', pem]);
    const { stdout } = await run('openssl', ['verify', '-CAfile', tpm.localCa.rootCert, '-untrusted', tpm.localCa.intermediateCert, pem]);
    assert.equal(stdout.trim(), `${pem}: OK`);

    const ek = new X509Certificate(await readFile(der));
    const intermediate = new X509Certificate(await readFile(tpm.localCa.intermediateCert));
    assert.ok(ek.verify(intermediate.publicKey));
    assert.equal(ek.publicKey.asymmetricKeyType, 'rsa');
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await tpm.stop();
  }
  assert.equal(existsSync(tpm.dir), false);
});

test('a missing swtpm binary and unknown PCR banks are typed errors', async () => {
  const missing = await rejectsSigil(startSwtpm({ swtpmBinary: '/nonexistent/swtpm' }), 'tpm.swtpm_missing');
  assert.equal(missing.details.category, 'environment');
  await rejectsSigil(startSwtpm({ pcrBanks: ['md5'] }), 'tpm.pcr_bank_invalid');
  await rejectsSigil(startSwtpm({ pcrBanks: [] }), 'tpm.pcr_bank_invalid');
});

/** Start swtpm in a child Node process, then end that process without calling stop(). */
async function orphanCheck(ending: 'exit' | 'SIGTERM' | 'SIGINT'): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-orphan-'));
  try {
    const script = path.join(dir, 'child.ts');
    const launcher = path.resolve(import.meta.dirname, '../../../src/tpm/swtpm-process.ts');
    await writeFile(
      script,
      `import { startSwtpm } from ${JSON.stringify(launcher)};
       const tpm = await startSwtpm();
       console.log(JSON.stringify({ pid: tpm.pid, dir: tpm.dir }));
       process.stdin.once('data', () => process.exit(0)); // the 'exit' case, once told to
       setInterval(() => {}, 1000);\n`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
    const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
    const { pid, dir: instanceDir } = JSON.parse(line) as { pid: number; dir: string };
    assert.ok(isRunning(pid));
    if (ending === 'exit') child.stdin!.write('exit\n');
    else child.kill(ending);
    const [code, signal] = await exited;
    if (ending === 'exit') assert.equal(code, 0);
    else assert.equal(signal, ending, 'the signal still ends the process');
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(isRunning(pid), false, `swtpm ${pid} outlived its owner (${ending})`);
    assert.equal(existsSync(instanceDir), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('no swtpm outlives a process that exits without stop()', () => orphanCheck('exit'));
test('no swtpm outlives a process ended by SIGTERM', () => orphanCheck('SIGTERM'));
test('no swtpm outlives a process ended by SIGINT', () => orphanCheck('SIGINT'));
