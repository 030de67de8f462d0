import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { stepRecorder, type DemoStep } from '../core/steps.ts';
import os from 'node:os';
import path from 'node:path';
import { SigilError } from '../core/errors.ts';
import { parseCertificates } from '../evidence/tpm/ek-certificate.ts';
import { startup } from '../tpm/commands/startup.ts';
import { TPM_ALG } from '../tpm/constants.ts';
import { startSwtpm, type SwtpmInstance } from '../tpm/swtpm-process.ts';
import { Tpm } from '../tpm/tpm.ts';
import { signBootPolicy } from './boot-policy.ts';
import { bootUnseal } from './boot-unseal.ts';
import { createKeyset } from './keyset.ts';
import { parseProvisioningRecord, verifyProvisioningRecord } from './provisioning-record.ts';
import { provisionDevice } from './provision.ts';
import { sealSecrets } from './sealed-secrets.ts';
import { loadVendorTrust } from './trust.ts';

/**
 * The device-lifecycle part of `sigil demo` (issue 5, item 9), as a function the demo command
 * wires in: a vendor keyset, two swtpm "machines" provisioned with identity certificates, one
 * signed boot policy, boot-unseal on both, the lock-out (a second unseal refused), a power cycle,
 * and the unseal working again. Every step checks its own outcome and throws if it differs; the
 * records say what happened. Everything started here is stopped before returning.
 */
export type { DemoStep };

interface DemoMachine {
  name: string;
  serial: string;
  swtpm: SwtpmInstance;
  tpm: Tpm;
}

const PRODUCT = 'sigil-demo-gw';
const BOOT_MEASUREMENTS: [number, string][] = [
  [7, 'demo secure boot state: PK KEK db dbx'],
  [11, 'demo UKI: kernel, initrd, cmdline'],
];

async function measure(machine: DemoMachine): Promise<void> {
  for (const [pcr, event] of BOOT_MEASUREMENTS) await machine.tpm.extendEvent(pcr, new TextEncoder().encode(event));
}

export interface DeviceDemoOptions {
  onStep?: (step: DemoStep) => void;
  /** Told about each swtpm machine as it starts (tests check the processes are gone afterwards). */
  onMachine?: (machine: { name: string; pid: number; uri: string }) => void;
}

export async function runDeviceDemo(options: DeviceDemoOptions = {}): Promise<DemoStep[]> {
  const { steps, record } = stepRecorder(options.onStep);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-demo-vendor-'));
  const machines: DemoMachine[] = [];
  try {
    const keyset = await createKeyset({ dir: path.join(dir, 'keyset'), vendor: 'Sigil Demo Vendor', products: [PRODUCT] });
    const trust = await loadVendorTrust(keyset.trustDocument());
    record('create a vendor keyset', `root, manufacturing and product CAs, product ${PRODUCT}, policy-signing and escrow keys (files 0600)`);

    for (const [name, serial] of [
      ['machine A', 'DEMO-0001'],
      ['machine B', 'DEMO-0002'],
    ]) {
      const swtpm = await startSwtpm({ ekCert: true, pcrBanks: ['sha1', 'sha256'] });
      const machine = { name, serial, swtpm, tpm: new Tpm(swtpm.transport()) };
      machines.push(machine);
      options.onMachine?.({ name, pid: swtpm.pid, uri: swtpm.uri });
      const ca = [...parseCertificates(await readFile(swtpm.localCa!.rootCert, 'utf8')), ...parseCertificates(await readFile(swtpm.localCa!.intermediateCert, 'utf8'))];
      const ekRoots = ca.filter((c) => c.subject === c.issuer);
      const ekIntermediates = ca.filter((c) => c.subject !== c.issuer);
      const provisioned = await provisionDevice(machine.tpm, { keyset, productId: PRODUCT, serial, ekRoots, ekIntermediates });
      await verifyProvisioningRecord(parseProvisioningRecord(provisioned.record), { trust, ekRoots, ekIntermediates });
      record(`provision ${name}`, `EK certificate valid; identity key 0x81000003 (fixedTPM|fixedParent); device certificate ${serial} for ${PRODUCT} in NV 0x01500100; ownership escrowed; record verifies`);
    }

    const sealedFiles: Record<string, string>[] = [];
    for (const machine of machines) {
      await measure(machine);
      sealedFiles.push(await sealSecrets(machine.tpm, { productId: PRODUCT, signer: trust.policySigning.name, secrets: { disk: new TextEncoder().encode(`disk passphrase of ${machine.serial}`) } }));
    }
    record('seal each machine\'s disk passphrase', 'under PolicyAuthorize(vendor policy key, product reference) — no PCR values needed at sealing time');

    const values = new Map([[TPM_ALG.SHA256, await machines[0].tpm.readPcrs(TPM_ALG.SHA256, [7, 11])]]);
    const policy = await signBootPolicy({ policyKey: keyset.privateKey('policy-signing'), productId: PRODUCT, release: 1, pcrValues: values });
    record('sign a boot policy offline', `release 1: PolicyPCR(sha256:7,11, lock-out 15 = 0) + PolicyNV(release floor ≤ 1), approved ${policy.approvedPolicy.slice(0, 16)}…`);

    for (const [i, machine] of machines.entries()) {
      const result = await bootUnseal(machine.tpm, { trust, policy, sealed: sealedFiles[i] });
      const text = new TextDecoder().decode(result.secrets.get('disk'));
      if (text !== `disk passphrase of ${machine.serial}`) throw new SigilError('demo.unseal_mismatch', `${machine.name} unsealed the wrong secret`);
      record(`boot-unseal on ${machine.name}`, `"${text.slice(0, 18)}…" released, PCR ${result.lockout.pcr} extended (lock-out)`);
    }

    try {
      await bootUnseal(machines[0].tpm, { trust, policy, sealed: sealedFiles[0] });
      throw new SigilError('demo.lockout_missing', 'the second unseal in the same boot should have been refused');
    } catch (error) {
      if (!(error instanceof SigilError) || error.code !== 'device.locked_out') throw error;
      record('unseal again in the same boot', `refused: ${error.message} [${error.code}]`);
    }

    await machines[0].swtpm.control.init();
    await machines[0].tpm.client.run(startup());
    await measure(machines[0]);
    const again = await bootUnseal(machines[0].tpm, { trust, policy, sealed: sealedFiles[0] });
    if (!again.secrets.has('disk')) throw new SigilError('demo.unseal_mismatch', 'the unseal after the reboot released nothing');
    record('reboot machine A, unseal again', 'power cycle resets PCR 15; the same signed policy opens the secret once more');
    return steps;
  } finally {
    for (const machine of machines) {
      await machine.tpm.close().catch(() => undefined);
      await machine.swtpm.stop();
    }
    await rm(dir, { recursive: true, force: true });
  }
}
