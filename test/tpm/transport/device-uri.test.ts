import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DeviceTransport } from '../../../src/tpm/transport/device.ts';
import { MssimTransport } from '../../../src/tpm/transport/mssim.ts';
import { SwtpmControl, SwtpmTransport } from '../../../src/tpm/transport/swtpm.ts';
import { defaultTpmUri, openSwtpmControl, openTransport, parseTpmUri } from '../../../src/tpm/transport/uri.ts';
import { GET_RANDOM_8, rejectsSigil } from './fake-server.ts';

test('a missing TPM device is tpm.device_unavailable with a plain message', async () => {
  const transport = openTransport('device:///dev/sigil-no-such-tpm');
  assert.ok(transport instanceof DeviceTransport);
  assert.equal(transport.path, '/dev/sigil-no-such-tpm');
  const error = await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.device_unavailable');
  assert.equal(error.message, 'there is no TPM device at /dev/sigil-no-such-tpm');
  assert.deepEqual([error.details.path, error.details.code], ['/dev/sigil-no-such-tpm', 'ENOENT']);
  await transport.close();
  await transport.close();
  await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_closed');
});

test('a device that answers with nothing is tpm.transport_response_invalid; bad commands are refused first', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-device-'));
  try {
    const file = path.join(dir, 'not-a-tpm');
    await writeFile(file, '');
    const transport = new DeviceTransport(file);
    await rejectsSigil(transport.send(new Uint8Array(3)), 'tpm.transport_command_invalid');
    const error = await rejectsSigil(transport.send(GET_RANDOM_8), 'tpm.transport_response_invalid');
    assert.equal(error.details.bytesRead, 0);
    await transport.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('TPM URIs parse to the documented defaults', () => {
  assert.deepEqual(parseTpmUri('swtpm://127.0.0.1:2400'), { kind: 'swtpm', host: '127.0.0.1', port: 2400, controlPort: 2401 });
  assert.deepEqual(parseTpmUri('swtpm://'), { kind: 'swtpm', host: '127.0.0.1', port: 2321, controlPort: 2322 });
  assert.deepEqual(parseTpmUri('swtpm://[::1]:3000'), { kind: 'swtpm', host: '::1', port: 3000, controlPort: 3001 });
  assert.deepEqual(parseTpmUri('mssim://tpm.example:2321'), { kind: 'mssim', host: 'tpm.example', port: 2321, platformPort: 2322 });
  assert.deepEqual(parseTpmUri('device:///dev/tpmrm0'), { kind: 'device', path: '/dev/tpmrm0' });
  assert.deepEqual(parseTpmUri('device:///dev/tpm0'), { kind: 'device', path: '/dev/tpm0' });
  assert.deepEqual(parseTpmUri('device://'), { kind: 'device', path: '/dev/tpmrm0' });
});

test('bad TPM URIs are tpm.uri_invalid', () => {
  const bad = [
    '',
    'tpm',
    'http://127.0.0.1:2321',
    'swtpm://127.0.0.1:65535', // its control port would be 65536
    'swtpm://127.0.0.1:0',
    'swtpm://127.0.0.1:99999',
    'swtpm://127.0.0.1:2321/path',
    'swtpm://127.0.0.1:2321?timeout=1',
    'swtpm://user:pw@127.0.0.1:2321',
    'device://somehost/dev/tpmrm0',
    'device:tpmrm0',
  ];
  for (const uri of bad) {
    assert.throws(() => openTransport(uri), (error: unknown) => (error as { code?: string }).code === 'tpm.uri_invalid', uri);
  }
  assert.throws(() => openSwtpmControl('mssim://127.0.0.1:2321'), { code: 'tpm.uri_invalid' });
});

test('openTransport picks the transport from the URI, and SIGIL_TPM is the default', () => {
  const saved = process.env.SIGIL_TPM;
  try {
    delete process.env.SIGIL_TPM;
    assert.equal(defaultTpmUri(), 'device:///dev/tpmrm0');
    process.env.SIGIL_TPM = 'swtpm://127.0.0.1:4000';
    const transport = openTransport();
    assert.ok(transport instanceof SwtpmTransport);
    assert.deepEqual([transport.host, transport.port], ['127.0.0.1', 4000]);
    const control = openSwtpmControl();
    assert.ok(control instanceof SwtpmControl);
    assert.equal(control.port, 4001);
    assert.ok(openTransport('mssim://127.0.0.1:5000') instanceof MssimTransport);
  } finally {
    if (saved === undefined) delete process.env.SIGIL_TPM;
    else process.env.SIGIL_TPM = saved;
  }
});
