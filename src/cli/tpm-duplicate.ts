import type { Command } from 'commander';
import { constantTimeEqual } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { signDuplicationApproval } from '../bundle/duplication-policy.ts';
import { duplicateWrappingKey, importWrappingKey } from '../bundle/duplication.ts';
import { createWrappingKey, parseWrappingKey } from '../bundle/wrapping-key.ts';
import { readInputFile, readPassphrase, readTrust, withTpm, writeJsonFile } from '../device/cli-io.ts';
import { readDeviceIdentity } from '../device/device-identity.ts';
import { Keyset } from '../device/keyset.ts';
import { parseProvisioningRecord, verifyProvisioningRecord } from '../device/provisioning-record.ts';
import { assertProductBinding, loadVendorTrust } from '../device/trust.ts';
import { printJson } from './output.ts';

/**
 * `sigil tpm duplicate create-key | approve | export | import`: move a wrapping key from one TPM
 * to another only to a parent the vendor named (src/bundle/duplication-policy.ts).
 *
 *   device A   create-key  → key.json (under A's SRK; policy: use | vendor-approved duplication)
 *   vendor     approve     → approval.json (PolicyDuplicationSelect(key, B's SRK) signed, offline)
 *   device A   export      → duplicated.json (TPM2_Duplicate to B's SRK, inner + outer wrapper)
 *   device B   import      → key.json under B's SRK
 *
 * The lead wires this into `sigil tpm` with registerTpmDuplicate(tpmCommand).
 */
const TPM_OPTION = ['--tpm <uri>', 'swtpm://host:port, mssim://host:port or device:///dev/tpmrm0 (default: $SIGIL_TPM)'] as const;

export function registerTpmDuplicate(tpm: Command): void {
  const duplicate = tpm.command('duplicate').description('move a wrapping key between TPMs, only to a vendor-approved parent');

  duplicate
    .command('create-key')
    .description("create a movable wrapping key under this TPM's SRK")
    .requiredOption('--trust <file>', 'vendor trust bundle (its policy-signing key approves moves)')
    .option('--product <id>', "the key's product (default: this device's, from its certificate)")
    .option('--auth-file <file>', "the key's authValue, needed to use it (default: empty)")
    .requiredOption('--out <file>', 'key file (JSON; the private part is encrypted by the SRK)')
    .option(...TPM_OPTION)
    .option('--json', 'print JSON')
    .action(async (options: { trust: string; product?: string; authFile?: string; out: string; tpm?: string; json?: boolean }) => {
      const trust = await readTrust(options.trust);
      const authValue = options.authFile === undefined ? undefined : readInputFile(options.authFile, 'authValue file');
      const doc = await withTpm(options.tpm, async (t) => {
        const productId = options.product ?? (await readDeviceIdentity(t, trust)).productId;
        return createWrappingKey(t, { signer: trust.policySigning.name, productId, authValue });
      });
      authValue?.fill(0);
      writeJsonFile(options.out, doc);
      if (options.json) printJson({ out: options.out, productId: doc.productId, name: doc.name });
      else console.log(`wrapping key ${doc.name.slice(0, 16)}… for product ${doc.productId} → ${options.out}`);
    });

  duplicate
    .command('approve')
    .description('vendor, offline: approve moving one key to one enrolled device')
    .requiredOption('--keyset <dir>')
    .requiredOption('--key <file>', 'the key file (public part is enough)')
    .requiredOption('--new-parent <record>', "the target device's provisioning record: its SRK becomes the key's parent")
    .requiredOption('--out <file>', 'approval (JSON)')
    .option('--passphrase-file <file>', 'file holding the keyset passphrase (else $SIGIL_KEYSET_PASSPHRASE)')
    .option('--json', 'print JSON')
    .action(async (options: { keyset: string; key: string; newParent: string; out: string; passphraseFile?: string; json?: boolean }) => {
      const keyset = await Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
      const trust = await loadVendorTrust(keyset.trustDocument());
      const key = await parseWrappingKey(readInputFile(options.key, 'key file'));
      if (!constantTimeEqual(key.signer, trust.policySigning.name)) throw new SigilError('duplication.approval_signer_unknown', "the key's moves are approved by another vendor key than this keyset's");
      const record = parseProvisioningRecord(readInputFile(options.newParent, 'provisioning record'));
      await verifyProvisioningRecord(record, { trust });
      assertProductBinding({ device: record.productId, artefact: key.productId, what: 'wrapping key', trust });
      const approval = await signDuplicationApproval({
        policyKey: keyset.privateKey('policy-signing'),
        productId: key.productId,
        objectName: key.name,
        newParentPublic: record.storageKey.publicArea,
        newParentSerial: record.serial,
      });
      writeJsonFile(options.out, approval);
      if (options.json) printJson({ out: options.out, productId: approval.productId, key: approval.object.name, newParent: approval.newParent });
      else console.log(`approved moving key ${approval.object.name.slice(0, 16)}… to ${record.serial}'s SRK → ${options.out}`);
    });

  duplicate
    .command('export')
    .description('duplicate the key to the parent its approval names (TPM2_Duplicate under PolicyDuplicationSelect + PolicyAuthorize)')
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .requiredOption('--key <file>')
    .requiredOption('--approval <file>')
    .requiredOption('--out <file>', 'duplicated key (JSON; only the named parent can import it)')
    .option(...TPM_OPTION)
    .option('--json', 'print JSON')
    .action(async (options: { trust: string; key: string; approval: string; out: string; tpm?: string; json?: boolean }) => {
      const trust = await readTrust(options.trust);
      const key = readInputFile(options.key, 'key file');
      const approval = readInputFile(options.approval, 'approval');
      const doc = await withTpm(options.tpm, (t) => duplicateWrappingKey(t, { trust, key, approval }));
      writeJsonFile(options.out, doc);
      if (options.json) printJson({ out: options.out, name: doc.name, newParentName: doc.newParentName });
      else console.log(`key ${doc.name.slice(0, 16)}… duplicated to parent ${doc.newParentName.slice(0, 16)}… → ${options.out}`);
    });

  duplicate
    .command('import')
    .description("import a duplicated key under this TPM's SRK (refused unless the SRK is the approved parent)")
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .requiredOption('--duplicate <file>', 'duplicated key from export')
    .requiredOption('--out <file>', 'key file under this TPM')
    .option(...TPM_OPTION)
    .option('--json', 'print JSON')
    .action(async (options: { trust: string; duplicate: string; out: string; tpm?: string; json?: boolean }) => {
      const trust = await readTrust(options.trust);
      const duplicated = readInputFile(options.duplicate, 'duplicated key');
      const doc = await withTpm(options.tpm, (t) => importWrappingKey(t, { trust, duplicated }));
      writeJsonFile(options.out, doc);
      if (options.json) printJson({ out: options.out, name: doc.name, parentName: doc.parentName });
      else console.log(`key ${doc.name.slice(0, 16)}… imported under this TPM's SRK → ${options.out}`);
    });
}
