import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { bundleDocument, parseBundle, verifyBundleSignature, type BundleDocument } from '../bundle/bundle-format.ts';
import { openBundle } from '../bundle/open.ts';
import { artefactDigests, type Artefacts } from '../bundle/payload.ts';
import { parsePcrValuesFile, pcrPolicyJson, type PcrValues } from '../bundle/pcr-policy.ts';
import { rekeyBundle, sealBundle } from '../bundle/seal.ts';
import { readInputFile, readPassphrase, readTrust, withTpm, writeJsonFile } from '../device/cli-io.ts';
import { Keyset } from '../device/keyset.ts';
import { parseProvisioningRecord } from '../device/provisioning-record.ts';
import { checkSecretName } from '../device/sealed-secrets.ts';
import { assertKeyringAvailable, deliverSecret, parseSink, type Delivery, type Sink } from '../device/sinks.ts';
import { selectionFromSpec } from '../tpm/tpm-seal.ts';
import { printJson } from './output.ts';

/**
 * `sigil bundle seal | open | revoke | inspect`: sealed bundles (src/bundle/). The vendor seals
 * and revokes offline with the keyset and the devices' provisioning records; a device opens with
 * the trust bundle, its TPM and the artefacts it is about to boot.
 */
function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function readSecrets(specs: string[] | undefined): Map<string, Uint8Array> | undefined {
  if (!specs || specs.length === 0) return undefined;
  const secrets = new Map<string, Uint8Array>();
  for (const spec of specs) {
    const at = spec.indexOf('=');
    if (at <= 0) throw new SigilError('cli.usage_secret', `"${spec}" is not NAME=FILE`);
    const name = checkSecretName(spec.slice(0, at));
    if (secrets.has(name)) throw new SigilError('cli.usage_secret', `secret ${name} is given twice`);
    secrets.set(name, readInputFile(spec.slice(at + 1), `secret ${name}`));
  }
  return secrets;
}

interface ArtefactOptions {
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  cmdlineFile?: string;
}

function readArtefacts(options: ArtefactOptions): Artefacts {
  if (options.cmdline !== undefined && options.cmdlineFile !== undefined) throw new SigilError('cli.usage_cmdline', 'give --cmdline or --cmdline-file, not both');
  return {
    kernel: options.kernel === undefined ? undefined : readInputFile(options.kernel, 'kernel'),
    initrd: options.initrd === undefined ? undefined : readInputFile(options.initrd, 'initrd'),
    cmdline: options.cmdlineFile !== undefined ? new TextDecoder().decode(readInputFile(options.cmdlineFile, 'command line file')) : options.cmdline,
  };
}

const withArtefacts = (cmd: Command, verb: string) =>
  cmd
    .option('--kernel <file>', `kernel image ${verb}`)
    .option('--initrd <file>', `initrd ${verb}`)
    .option('--cmdline <text>', `kernel command line ${verb}`)
    .option('--cmdline-file <file>', 'the command line from a file (e.g. /proc/cmdline; trailing newline ignored)');

function summary(doc: BundleDocument) {
  return {
    bundleId: doc.bundleId,
    productId: doc.productId,
    epoch: doc.epoch,
    recipients: doc.recipients.map((r) => ({ serial: r.serial, pcrs: r.pcrs.map((b) => `${b.bank}:${Object.keys(b.values).join(',')}`).join('+') })),
  };
}

export function registerBundle(program: Command): void {
  const bundle = program.command('bundle').description('sealed bundles: integrity digests and secrets for many machines, each opening only on its own TPM');

  withArtefacts(bundle.command('seal').description('seal secrets for enrolled devices (offline, vendor side)'), 'the devices must boot')
    .requiredOption('--keyset <dir>')
    .requiredOption('--product <id>')
    .requiredOption('--record <file>', "a recipient's provisioning record (repeatable)", collect)
    .requiredOption('--secret <name=file>', 'a secret from a file (repeatable); - reads stdin', collect)
    .option('--pcr-values <file>', 'PCR values to seal to: { "sha256": { "7": "<hex>", "11": "<hex>" } } (PCRs 0-15 only)')
    .option('--from-tpm <uri>', "take the values of --pcrs from this (reference) machine's TPM instead")
    .option('--pcrs <spec>', 'with --from-tpm: the PCRs to bind', 'sha256:7,11')
    .option('--id <id>', 'bundle ID (default: a random UUID)')
    .requiredOption('--out <file>', 'the bundle (JSON; nothing in it is secret)')
    .option('--passphrase-file <file>', 'file holding the keyset passphrase (else $SIGIL_KEYSET_PASSPHRASE)')
    .option('--json', 'print JSON')
    .action(
      async (
        options: ArtefactOptions & { keyset: string; product: string; record: string[]; secret: string[]; pcrValues?: string; fromTpm?: string; pcrs: string; id?: string; out: string; passphraseFile?: string; json?: boolean },
      ) => {
        if (Boolean(options.pcrValues) === Boolean(options.fromTpm)) throw new SigilError('cli.usage_pcr_source', 'give exactly one of --pcr-values and --from-tpm');
        let pcrs: PcrValues;
        if (options.pcrValues) pcrs = parsePcrValuesFile(readInputFile(options.pcrValues, 'PCR values file')).values;
        else pcrs = await withTpm(options.fromTpm, (tpm) => tpm.readSelection(selectionFromSpec(options.pcrs)));
        const keyset = await Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
        const recipients = options.record.map((file) => parseProvisioningRecord(readInputFile(file, 'provisioning record')));
        const secrets = readSecrets(options.secret)!;
        try {
          const doc = await sealBundle({ keyset, productId: options.product, bundleId: options.id, recipients, pcrs, integrity: artefactDigests(readArtefacts(options)), secrets });
          writeJsonFile(options.out, doc);
          if (options.json) printJson({ out: options.out, ...summary(doc) });
          else console.log(`bundle ${doc.bundleId} (epoch ${doc.epoch}) for ${doc.recipients.map((r) => r.serial).join(', ')} → ${options.out}`);
        } finally {
          for (const value of secrets.values()) value.fill(0);
        }
      },
    );

  withArtefacts(bundle.command('open').description('open a bundle on this device: check the artefacts, deliver the secrets'), 'about to boot')
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .requiredOption('--bundle <file>')
    .option('--sink <name=target>', 'where a secret goes: NAME=stdout, NAME=file:PATH (0600) or NAME=keyring[:DESC] (repeatable)', collect)
    .option('--min-epoch <n>', 'refuse bundles older than this epoch')
    .option('--tpm <uri>', 'swtpm://host:port, mssim://host:port or device:///dev/tpmrm0 (default: $SIGIL_TPM)')
    .option('--json', 'print JSON')
    .action(async (options: ArtefactOptions & { trust: string; bundle: string; sink?: string[]; minEpoch?: string; tpm?: string; json?: boolean }) => {
      const trust = await readTrust(options.trust);
      const sinks = new Map<string, Sink>();
      for (const spec of options.sink ?? []) {
        const { name, sink } = parseSink(spec);
        if (sinks.has(name)) throw new SigilError('cli.usage_sink', `secret ${name} has two sinks`);
        if (sink.kind === 'stdout' && options.json) throw new SigilError('cli.usage_sink', '--json prints a report on stdout: send secrets to files or the keyring');
        sinks.set(name, sink);
      }
      if ([...sinks.values()].filter((s) => s.kind === 'stdout').length > 1) throw new SigilError('cli.usage_sink', 'only one secret can go to stdout');
      if ([...sinks.values()].some((s) => s.kind === 'keyring')) await assertKeyringAvailable();
      const minEpoch = options.minEpoch === undefined ? undefined : Number(options.minEpoch);
      if (minEpoch !== undefined && (!Number.isSafeInteger(minEpoch) || minEpoch < 1)) throw new SigilError('cli.usage_epoch', `"${options.minEpoch}" is not an epoch`);
      const text = readInputFile(options.bundle, 'bundle');
      const artefacts = readArtefacts(options);
      const opened = await withTpm(options.tpm, (tpm) => openBundle(tpm, { trust, bundle: text, artefacts, minEpoch }));
      try {
        if (sinks.size === 0) {
          if (opened.secrets.size !== 1 || options.json) {
            throw new SigilError('cli.usage_sink', `the bundle holds ${opened.secrets.size} secrets (${[...opened.secrets.keys()].join(', ')}): say where each goes with --sink NAME=...`);
          }
          sinks.set([...opened.secrets.keys()][0], { kind: 'stdout' });
        }
        for (const name of sinks.keys()) if (!opened.secrets.has(name)) throw new SigilError('bundle.secret_unknown', `the bundle holds no secret named ${name}`, { name });
        const delivered: Delivery[] = [];
        for (const [name, sink] of sinks) delivered.push(await deliverSecret(name, opened.secrets.get(name)!, sink));
        const report = { bundleId: opened.bundleId, productId: opened.productId, epoch: opened.epoch, serial: opened.serial, checked: opened.checked, delivered };
        if (options.json) printJson(report);
        else process.stderr.write(`sigil: bundle ${opened.bundleId} epoch ${opened.epoch} opened on ${opened.serial} (${opened.checked.join(', ')} match); ${delivered.map((d) => `${d.name} → ${d.where ?? d.sink}`).join(', ')}\n`);
      } finally {
        for (const value of opened.secrets.values()) value.fill(0);
      }
    });

  bundle
    .command('revoke')
    .description('re-key a bundle without some devices: new data key, epoch + 1 (offline, vendor side)')
    .requiredOption('--keyset <dir>')
    .requiredOption('--bundle <file>')
    .requiredOption('--serial <serial>', 'a device to revoke (repeatable)', collect)
    .option('--secret <name=file>', 'replace the secrets (rotate them if a revoked device ever opened the bundle; repeatable)', collect)
    .requiredOption('--out <file>', 'the re-keyed bundle (may be --bundle itself)')
    .option('--passphrase-file <file>', 'file holding the keyset passphrase (else $SIGIL_KEYSET_PASSPHRASE)')
    .option('--json', 'print JSON')
    .action(async (options: { keyset: string; bundle: string; serial: string[]; secret?: string[]; out: string; passphraseFile?: string; json?: boolean }) => {
      const keyset = await Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
      const secrets = readSecrets(options.secret);
      try {
        const doc = await rekeyBundle({ keyset, bundle: readInputFile(options.bundle, 'bundle'), revoke: options.serial, secrets });
        writeJsonFile(options.out, doc);
        if (options.json) printJson({ out: options.out, revoked: options.serial, ...summary(doc) });
        else console.log(`bundle ${doc.bundleId} re-keyed to epoch ${doc.epoch} without ${options.serial.join(', ')}; recipients: ${doc.recipients.map((r) => r.serial).join(', ')} → ${options.out}`);
      } finally {
        for (const value of secrets?.values() ?? []) value.fill(0);
      }
    });

  bundle
    .command('inspect')
    .description("show a bundle's ID, epoch, recipients and PCR policies; with --trust, check its signature")
    .requiredOption('--bundle <file>')
    .option('--trust <file>', 'vendor trust bundle: verify the product signature too')
    .option('--json', 'print JSON')
    .action(async (options: { bundle: string; trust?: string; json?: boolean }) => {
      const parsed = await parseBundle(readInputFile(options.bundle, 'bundle'));
      if (options.trust) verifyBundleSignature(parsed, await readTrust(options.trust));
      const doc = bundleDocument(parsed);
      const out = {
        ...summary(doc),
        createdAt: doc.createdAt,
        signature: options.trust ? 'verified' : 'not checked (no --trust)',
        recipients: parsed.recipients.map((r) => ({ serial: r.serial, storageKey: toHex(r.storageKey.name), pcrs: pcrPolicyJson(r.pcrPolicy) })),
      };
      if (options.json) printJson(out);
      else {
        console.log(`bundle ${out.bundleId} product ${out.productId} epoch ${out.epoch} (created ${out.createdAt}); signature ${out.signature}`);
        for (const r of summary(doc).recipients) console.log(`  ${r.serial}  ${r.pcrs}`);
      }
    });
}
