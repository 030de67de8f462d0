import type { Command } from 'commander';
import { toHex } from '../core/hex.ts';
import { parseCertificates } from '../evidence/tpm/ek-certificate.ts';
import { parseRelease, readInputFile, readPassphrase, readTrust, withTpm, writeJsonFile } from '../device/cli-io.ts';
import { readDeviceIdentity } from '../device/device-identity.ts';
import { Keyset } from '../device/keyset.ts';
import { parseProvisioningRecord, verifyProvisioningRecord } from '../device/provisioning-record.ts';
import { provisionDevice } from '../device/provision.ts';
import { acceptRelease } from '../device/release.ts';
import { readReleaseFloor } from '../device/release-floor.ts';
import type { KeyType } from '../tpm/tpm-keys.ts';
import { printJson } from './output.ts';

/**
 * `sigil device provision | show | verify-record | accept-release | floor`: manufacturing on the
 * factory line, and the device's own view of its identity and anti-rollback floor.
 */
interface TpmOptions {
  tpm?: string;
  json?: boolean;
}

function ekCas(files: string[] | undefined) {
  if (!files) return {};
  const certs = files.flatMap((f) => parseCertificates(new TextDecoder().decode(readInputFile(f, 'EK CA file'))));
  return { ekRoots: certs.filter((c) => c.subject === c.issuer), ekIntermediates: certs.filter((c) => c.subject !== c.issuer) };
}

export function registerDevice(program: Command): void {
  const device = program.command('device').description('device manufacturing, identity and anti-rollback');
  const withTpmOption = (cmd: Command) =>
    cmd.option('--tpm <uri>', 'swtpm://host:port, mssim://host:port or device:///dev/tpmrm0 (default: $SIGIL_TPM)').option('--json', 'print JSON');

  withTpmOption(device.command('provision').description('take ownership, create the TPM-resident identity key and AK, issue and store the device certificate'))
    .requiredOption('--keyset <dir>', 'the vendor keyset (manufacturing CA and escrow key)')
    .requiredOption('--product <id>')
    .requiredOption('--serial <serial>')
    .requiredOption('--out <file>', 'where to write the provisioning record (JSON)')
    .option('--ek-ca <files...>', 'PEM files with the TPM vendor EK CA root(s) and intermediates')
    .option('--allow-unverified-ek', 'INSECURE: provision a TPM whose EK certificate is not validated (development TPMs)')
    .option('--ek-type <type>', 'rsa or ecc', 'rsa')
    .option('--initial-release <n>', 'the release the anti-rollback floor starts at', '1')
    .option('--lock-endorsement', 'also set a random endorsement authorization (the device can no longer activate credentials by itself)')
    .option('--passphrase-file <file>', 'file holding the keyset passphrase (else $SIGIL_KEYSET_PASSPHRASE)')
    .action(
      async (
        options: TpmOptions & { keyset: string; product: string; serial: string; out: string; ekCa?: string[]; allowUnverifiedEk?: boolean; ekType: KeyType; initialRelease: string; lockEndorsement?: boolean; passphraseFile?: string },
      ) => {
        const keyset = await Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
        if (options.allowUnverifiedEk) process.stderr.write('sigil: WARNING: --allow-unverified-ek: the EK certificate is not validated; this device identity proves nothing about its TPM\n');
        const result = await withTpm(options.tpm, (tpm) =>
          provisionDevice(tpm, {
            keyset,
            productId: options.product,
            serial: options.serial,
            ...ekCas(options.ekCa),
            allowUnverifiedEk: options.allowUnverifiedEk,
            ekType: options.ekType,
            initialRelease: parseRelease(options.initialRelease),
            lockEndorsement: options.lockEndorsement,
          }),
        );
        writeJsonFile(options.out, result.record);
        const summary = { out: options.out, productId: result.productId, serial: result.serial, identityKey: '0x81000003', deviceCertificateNv: '0x01500100', certificateSerial: result.deviceCertificate.serialNumber };
        if (options.json) printJson(summary);
        else console.log(`provisioned ${result.serial} (product ${result.productId}): identity key 0x81000003, certificate in NV 0x01500100, record → ${options.out}`);
      },
    );

  withTpmOption(device.command('show').description("this device's identity (certificate checked against the vendor trust bundle) and release floor"))
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .action(async (options: TpmOptions & { trust: string }) => {
      const trust = await readTrust(options.trust);
      const out = await withTpm(options.tpm, async (tpm) => {
        const identity = await readDeviceIdentity(tpm, trust);
        return { productId: identity.productId, serial: identity.serial, vendor: identity.vendor, identityKeyName: toHex(identity.identityName), certificateSubject: identity.certificate.subject, releaseFloor: await readReleaseFloor(tpm) };
      });
      if (options.json) printJson(out);
      else console.log(`${out.serial}: product ${out.productId} of ${out.vendor}, release floor ${out.releaseFloor}, identity key ${out.identityKeyName}`);
    });

  device
    .command('verify-record')
    .description('check a provisioning record as a broker does before enrolment')
    .argument('<record>', 'provisioning record (JSON)')
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .option('--ek-ca <files...>', 'TPM vendor EK CA certificates: also validate the EK certificate')
    .option('--json', 'print JSON')
    .action(async (file: string, options: { trust: string; ekCa?: string[]; json?: boolean }) => {
      const trust = await readTrust(options.trust);
      const record = parseProvisioningRecord(readInputFile(file, 'provisioning record'));
      await verifyProvisioningRecord(record, { trust, ...ekCas(options.ekCa) });
      const out = { verified: true, productId: record.productId, serial: record.serial, identityKeyName: toHex(record.identityKey.name), akName: toHex(record.attestationKey.name), ekCertificateChecked: Boolean(options.ekCa) };
      if (options.json) printJson(out);
      else console.log(`record of ${out.serial} (product ${out.productId}) verifies${out.ekCertificateChecked ? ', EK certificate included' : ''}`);
    });

  withTpmOption(device.command('accept-release').description('verify a signed release and raise the anti-rollback floor to it'))
    .argument('<release>', 'signed release (JSON)')
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .action(async (file: string, options: TpmOptions & { trust: string }) => {
      const trust = await readTrust(options.trust);
      const input = readInputFile(file, 'signed release');
      const { statement, floor } = await withTpm(options.tpm, (tpm) => acceptRelease(tpm, trust, input));
      if (options.json) printJson({ accepted: true, productId: statement.productId, release: statement.release, floor });
      else console.log(`release ${statement.release} of ${statement.productId} accepted; releases below ${floor} are refused from now on`);
    });

  withTpmOption(device.command('floor').description('read the anti-rollback floor (lowest accepted release)')).action(async (options: TpmOptions) => {
    const floor = await withTpm(options.tpm, readReleaseFloor);
    if (options.json) printJson({ floor });
    else console.log(String(floor));
  });
}
