/**
 * Shared pieces of the device tests: a vendor keyset in a temporary folder, swtpm "machines"
 * manufactured with EK certificates, provisioning, simulated reboots and boot measurements.
 */
import type * as x509 from '@peculiar/x509';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseCertificates } from '../../src/evidence/tpm/ek-certificate.ts';
import { createKeyset, type Keyset } from '../../src/device/keyset.ts';
import { provisionDevice, type ProvisionResult } from '../../src/device/provision.ts';
import { loadVendorTrust, type VendorTrust } from '../../src/device/trust.ts';
import { getCapability, startup } from '../../src/tpm/commands/startup.ts';
import { TPM_ALG, TPM_CAP } from '../../src/tpm/constants.ts';
import { startSwtpm, type SwtpmInstance } from '../../src/tpm/swtpm-process.ts';
import { Tpm } from '../../src/tpm/tpm.ts';

export const PRODUCT = 'acme-gw';
export const OTHER_PRODUCT = 'acme-cam';

export interface VendorFixture {
  dir: string;
  keyset: Keyset;
  trust: VendorTrust;
  remove(): Promise<void>;
}

export async function makeVendor(options: { passphrase?: string } = {}): Promise<VendorFixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sigil-keyset-'));
  const keyset = await createKeyset({ dir: path.join(dir, 'keyset'), vendor: 'Acme Devices', products: [PRODUCT, OTHER_PRODUCT], passphrase: options.passphrase });
  const trust = await loadVendorTrust(JSON.stringify(keyset.trustDocument()));
  return { dir, keyset, trust, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface Machine {
  swtpm: SwtpmInstance;
  tpm: Tpm;
  ekRoots: x509.X509Certificate[];
  ekIntermediates: x509.X509Certificate[];
  stop(): Promise<void>;
}

/** A fresh swtpm with EK certificates from its own swtpm-localca. */
export async function startMachine(): Promise<Machine> {
  const swtpm = await startSwtpm({ ekCert: true, pcrBanks: ['sha1', 'sha256'] });
  const ca = [...parseCertificates(await readFile(swtpm.localCa!.rootCert, 'utf8')), ...parseCertificates(await readFile(swtpm.localCa!.intermediateCert, 'utf8'))];
  const machine: Machine = {
    swtpm,
    tpm: new Tpm(swtpm.transport()),
    ekRoots: ca.filter((c) => c.subject === c.issuer),
    ekIntermediates: ca.filter((c) => c.subject !== c.issuer),
    /** Stop swtpm; fails when the test left a transient object or session loaded. */
    async stop() {
      let leftover: number[] = [];
      try {
        for (const type of [0x80, 0x02, 0x03]) {
          const { data } = await machine.tpm.client.run(getCapability(TPM_CAP.HANDLES, type << 24, 64));
          if (data.capability === TPM_CAP.HANDLES) leftover.push(...data.handles);
        }
      } catch {
        leftover = [];
      } finally {
        await machine.tpm.close().catch(() => undefined);
        await swtpm.stop();
      }
      if (leftover.length > 0) throw new Error(`the test left handles loaded: ${leftover.map((h) => h.toString(16)).join(', ')}`);
    },
  };
  return machine;
}

export async function provision(machine: Machine, vendor: VendorFixture, serial: string, productId = PRODUCT): Promise<ProvisionResult> {
  return provisionDevice(machine.tpm, { keyset: vendor.keyset, productId, serial, ekRoots: machine.ekRoots, ekIntermediates: machine.ekIntermediates });
}

/** Power-cycle the TPM (_TPM_Init) and TPM2_Startup(CLEAR): PCRs reset, NV and persistent keys stay. */
export async function reboot(machine: Machine): Promise<void> {
  await machine.swtpm.control.init();
  await machine.tpm.client.run(startup());
}

/** What firmware and boot loader would measure: the same events give the same PCR values. */
export const BOOT_EVENTS: [number, string][] = [
  [7, 'secure boot: PK KEK db dbx'],
  [11, 'uki: kernel 6.12 initrd cmdline'],
];

export async function measureBoot(machine: Machine, events: [number, string][] = BOOT_EVENTS): Promise<void> {
  for (const [pcr, event] of events) await machine.tpm.extendEvent(pcr, new TextEncoder().encode(event));
}

/** The sha256 values of PCRs 7 and 11 as they are now (what the vendor predicts for a release). */
export async function predictedValues(machine: Machine): Promise<Map<number, Map<number, Uint8Array>>> {
  return new Map([[TPM_ALG.SHA256, await machine.tpm.readPcrs(TPM_ALG.SHA256, [7, 11])]]);
}
