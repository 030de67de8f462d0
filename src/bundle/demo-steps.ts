import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SigilError } from '../core/errors.ts';
import { parseCertificates } from '../evidence/tpm/ek-certificate.ts';
import { TPM_ALG } from '../tpm/constants.ts';
import { startSwtpm, type SwtpmInstance } from '../tpm/swtpm-process.ts';
import { Tpm } from '../tpm/tpm.ts';
import { stepRecorder, type DemoStep } from '../core/steps.ts';
import { createKeyset } from '../device/keyset.ts';
import { parseProvisioningRecord, type ProvisioningRecord } from '../device/provisioning-record.ts';
import { provisionDevice } from '../device/provision.ts';
import { loadVendorTrust } from '../device/trust.ts';
import { bundleText, parseBundle } from './bundle-format.ts';
import { openBundle } from './open.ts';
import { artefactDigests, type Artefacts } from './payload.ts';
import { revokeBundle, sealBundle } from './seal.ts';

/**
 * The sealed-bundle part of `sigil demo` (issue 5, items 7 and 9): two provisioned swtpm
 * "machines", one bundle (kernel, initrd and cmdline digests plus a root-disk passphrase) sealed to
 * both under PolicyPCR(7, 11), opened on each, machine B revoked (re-key: new data key, epoch 2),
 * opened on A, refused on B. Every step checks its own outcome and throws if it differs; everything
 * started here is stopped before returning.
 */
export type { DemoStep };

interface DemoMachine {
  name: string;
  serial: string;
  swtpm: SwtpmInstance;
  tpm: Tpm;
  record?: ProvisioningRecord;
}

const PRODUCT = 'sigil-demo-gw';
const BOOT: [number, string][] = [
  [7, 'demo secure boot state: PK KEK db dbx'],
  [11, 'demo UKI: kernel, initrd, cmdline'],
];

export interface BundleDemoOptions {
  onStep?: (step: DemoStep) => void;
  /** Told about each swtpm machine as it starts (tests check the processes are gone afterwards). */
  onMachine?: (machine: { name: string; pid: number; uri: string }) => void;
}

export async function runBundleDemo(options: BundleDemoOptions = {}): Promise<DemoStep[]> {
  const { steps, record } = stepRecorder(options.onStep);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-demo-bundle-'));
  const machines: DemoMachine[] = [];
  try {
    const keyset = await createKeyset({ dir: path.join(dir, 'keyset'), vendor: 'Sigil Demo Vendor', products: [PRODUCT] });
    const trust = await loadVendorTrust(keyset.trustDocument());
    for (const [name, serial] of [
      ['machine A', 'DEMO-B-0001'],
      ['machine B', 'DEMO-B-0002'],
    ]) {
      const swtpm = await startSwtpm({ ekCert: true, pcrBanks: ['sha1', 'sha256'] });
      const machine: DemoMachine = { name, serial, swtpm, tpm: new Tpm(swtpm.transport()) };
      machines.push(machine);
      options.onMachine?.({ name, pid: swtpm.pid, uri: swtpm.uri });
      const ca = [...parseCertificates(await readFile(swtpm.localCa!.rootCert, 'utf8')), ...parseCertificates(await readFile(swtpm.localCa!.intermediateCert, 'utf8'))];
      const provisioned = await provisionDevice(machine.tpm, {
        keyset,
        productId: PRODUCT,
        serial,
        ekRoots: ca.filter((c) => c.subject === c.issuer),
        ekIntermediates: ca.filter((c) => c.subject !== c.issuer),
      });
      machine.record = parseProvisioningRecord(provisioned.record);
      for (const [pcr, event] of BOOT) await machine.tpm.extendEvent(pcr, new TextEncoder().encode(event));
    }
    record('provision two machines', `${machines.map((m) => m.serial).join(' and ')} of ${PRODUCT}: SRK, identity key, device certificate; booted (PCRs 7 and 11 measured)`);

    const artefacts: Artefacts = { kernel: new Uint8Array(randomBytes(64 * 1024)), initrd: new Uint8Array(randomBytes(128 * 1024)), cmdline: 'root=/dev/mapper/root ro quiet' };
    const passphrase = new TextEncoder().encode(`root disk passphrase ${randomBytes(8).toString('hex')}`);
    const pcrs = new Map([[TPM_ALG.SHA256, await machines[0].tpm.readPcrs(TPM_ALG.SHA256, [7, 11])]]);
    const sealed = bundleText(
      await sealBundle({ keyset, productId: PRODUCT, bundleId: 'demo-fleet', recipients: machines.map((m) => m.record!), pcrs, integrity: artefactDigests(artefacts), secrets: { 'root-disk': passphrase } }),
    );
    record('seal a bundle to both', `kernel, initrd, cmdline digests + root-disk passphrase under a random AES-256-GCM key, wrapped to each SRK under PolicyPCR(sha256:7,11); signed by the ${PRODUCT} key`);

    for (const machine of machines) {
      const opened = await openBundle(machine.tpm, { trust, bundle: sealed, artefacts });
      if (!equal(opened.secrets.get('root-disk'), passphrase)) throw new SigilError('demo.bundle_mismatch', `${machine.name} opened the wrong secret`);
      record(`open on ${machine.name}`, `epoch ${opened.epoch}: ${opened.checked.join(', ')} match; root-disk passphrase released`);
    }

    const revoked = bundleText(await revokeBundle({ keyset, bundle: sealed, revoke: [machines[1].serial] }));
    const parsed = await parseBundle(revoked);
    record('revoke machine B, re-key', `epoch ${parsed.epoch}: a new data key, wrapped for ${parsed.recipients.map((r) => r.serial).join(', ')} only`);

    const opened = await openBundle(machines[0].tpm, { trust, bundle: revoked, artefacts, minEpoch: parsed.epoch });
    if (!equal(opened.secrets.get('root-disk'), passphrase)) throw new SigilError('demo.bundle_mismatch', 'machine A opened the wrong secret after the re-key');
    record('open the re-keyed bundle on machine A', `epoch ${opened.epoch} opens; machine A stays authorized`);

    try {
      await openBundle(machines[1].tpm, { trust, bundle: revoked, artefacts });
      throw new SigilError('demo.revocation_missing', 'the revoked machine should have been refused');
    } catch (error) {
      if (!(error instanceof SigilError) || error.code !== 'bundle.not_a_recipient') throw error;
      record('open the re-keyed bundle on machine B', `refused: ${error.message} [${error.code}]`);
    }
    return steps;
  } finally {
    for (const machine of machines) {
      await machine.tpm.close().catch(() => undefined);
      await machine.swtpm.stop();
    }
    await rm(dir, { recursive: true, force: true });
  }
}

function equal(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}
