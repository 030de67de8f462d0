import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { stepRecorder, type DemoStep } from '../core/steps.ts';
import os from 'node:os';
import path from 'node:path';
import { BrokerClient } from '../attester/client.ts';
import { generateRuntimeKey } from '../attester/runtime-key.ts';
import { enrolTpm, tpmEvidence, type EnrolledTpm } from '../attester/tpm-attester.ts';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { TPM_ALG } from '../tpm/constants.ts';
import { startSwtpm } from '../tpm/swtpm-process.ts';
import { Tpm } from '../tpm/tpm.ts';
import { selectionFromSpec } from '../tpm/tpm-seal.ts';
import { startBroker } from './server.ts';

/**
 * The broker flow for `sigil demo`, on a throw-away swtpm (with EK certificates from its own
 * local CA) and an in-process broker over TLS in a temporary data directory: enrol → attest →
 * receive a secret → revoke → be refused. Every step checks its own outcome and is returned as
 * a record; everything started is stopped and removed, whatever happens.
 */
export type { DemoStep };

const SELECTION = 'sha256:0,7,16';

export async function runBrokerDemo(options: { onStep?: (step: DemoStep) => void } = {}): Promise<DemoStep[]> {
  const { steps, record: done } = stepRecorder(options.onStep);
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'sigil-demo-broker-'));
  const swtpm = await startSwtpm({ ekCert: true });
  const tpm = new Tpm(swtpm.transport());
  let token: string | undefined;
  const broker = await startBroker({ dataDir, listen: '127.0.0.1:0', logLevel: 'error', onBootstrapToken: (t) => (token = t) }).catch(async (error) => {
    await tpm.close();
    await swtpm.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  });
  const admin = new BrokerClient(broker.url, { ca: broker.caPem, token });
  let device: EnrolledTpm | undefined;
  try {
    done('start swtpm and a broker', `${swtpm.uri}; broker ${broker.url} (TLS, CA ${broker.caFingerprint!.slice(0, 23)}…), SQLite`);

    const golden = await tpm.readPcrs(TPM_ALG.SHA256, [0, 7, 16]);
    const pcrs = Object.fromEntries([...golden].map(([i, v]) => [String(i), [toHex(v)]]));
    const ca = readFileSync(swtpm.localCa!.rootCert, 'utf8') + readFileSync(swtpm.localCa!.intermediateCert, 'utf8');
    await admin.call('PUT', '/v1/admin/tenants/demo', {});
    await admin.call('PUT', '/v1/admin/tenants/demo/ca-bundles/swtpm-ek-ca', { purpose: 'tpm-ek', pem: ca });
    await admin.call('PUT', '/v1/admin/tenants/demo/policies/golden', { kind: 'tpm', referenceValues: { pcrs: { sha256: pcrs } }, default: true });
    await admin.call('PUT', '/v1/admin/tenants/demo/resources/disk/passphrase', { value: 'correct horse battery staple', releasePolicy: { policies: ['golden'] } });
    done('configure tenant "demo"', `EK CA bundle, policy "golden" (${SELECTION}), secret disk/passphrase`);

    device = await enrolTpm(admin, tpm, { tenant: 'demo', deviceId: 'demo-device' });
    done('enrol the TPM', `EK certificate validated, AK ${device.akName.slice(0, 16)}… proven by credential activation`);

    const runtimeKey = await generateRuntimeKey();
    const enrolled = device;
    const result = await admin.attestWith({ tenant: 'demo', kind: 'tpm', deviceId: enrolled.deviceId, runtimeKey }, (binding) => tpmEvidence(tpm, enrolled.ak, binding, selectionFromSpec(SELECTION)));
    if (result.status !== 'affirming') throw new SigilError('demo.attest_failed', `the attestation came back ${result.status}`);
    done('attest', `quote bound to SHA-256(nonce ‖ runtime key) → EAR "${result.status}", valid until ${result.expiresAt}`);

    const secret = new TextDecoder().decode(await admin.fetchResource('demo', 'disk/passphrase', result.ear, runtimeKey));
    if (secret !== 'correct horse battery staple') throw new SigilError('demo.secret_mismatch', 'the released secret differs from the stored one');
    done('receive the secret', `JWE (ECDH-ES+A256KW) to the runtime key → "${secret.slice(0, 13)}…"`);

    await admin.call('POST', '/v1/admin/tenants/demo/devices/demo-device/revoke', { reason: 'demo' });
    done('revoke the device', 'revocation recorded, SSE and webhook notified');

    try {
      await admin.fetchResource('demo', 'disk/passphrase', result.ear, runtimeKey);
      throw new SigilError('demo.not_refused', 'the revoked device still received the secret');
    } catch (error) {
      if (!(error instanceof SigilError) || error.code !== 'broker.revoked') throw error;
      const rule = (error.details.trace as { rule: string; result: string }[]).find((t) => t.result === 'fail')?.rule;
      done('be refused', `the same EAR is refused: ${error.code}, rule ${rule}`);
    }
    return steps;
  } finally {
    admin.close();
    if (device) await tpm.flush(device.ak.handle).catch(() => undefined);
    await tpm.close();
    await swtpm.stop();
    await broker.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
