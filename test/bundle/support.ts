/**
 * Shared pieces of the bundle tests: provisioned swtpm machines (test/device/support.ts), their
 * parsed provisioning records, boot artefacts, and re-signing a changed bundle with the vendor's
 * own product key (to show what the AEAD catches that a signature check would not).
 */
import { randomBytes } from 'node:crypto';
import { bundleDocument, bundleText, parseBundle, signBundle, type SealedBundle } from '../../src/bundle/bundle-format.ts';
import { artefactDigests, type Artefacts } from '../../src/bundle/payload.ts';
import { parseProvisioningRecord, type ProvisioningRecord } from '../../src/device/provisioning-record.ts';
import { measureBoot, provision, startMachine, type Machine, type VendorFixture } from '../device/support.ts';

export interface BundleMachine extends Machine {
  serial: string;
  record: ProvisioningRecord;
}

export async function provisionedMachine(vendor: VendorFixture, serial: string): Promise<BundleMachine> {
  const machine = await startMachine();
  try {
    const { record } = await provision(machine, vendor, serial);
    await measureBoot(machine);
    return Object.assign(machine, { serial, record: parseProvisioningRecord(record) });
  } catch (error) {
    await machine.stop().catch(() => undefined);
    throw error;
  }
}

export function makeArtefacts(): Artefacts {
  return { kernel: new Uint8Array(randomBytes(4096)), initrd: new Uint8Array(randomBytes(8192)), cmdline: 'root=/dev/mapper/root ro quiet' };
}

export const integrityOf = artefactDigests;

/** Change a parsed bundle and have the product key sign the result: a "vendor-signed" forgery. */
export async function resign(vendor: VendorFixture, text: string, change: (bundle: SealedBundle) => SealedBundle, productId?: string): Promise<string> {
  const bundle = change(await parseBundle(text));
  const { signature: _signature, ...unsigned } = bundle;
  return bundleText(bundleDocument(signBundle(unsigned, vendor.keyset.productKey(productId ?? bundle.productId))));
}
