import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { bootUnseal } from '../device/boot-unseal.ts';
import { readInputFile, readTrust, withTpm, writeJsonFile } from '../device/cli-io.ts';
import { readDeviceIdentity } from '../device/device-identity.ts';
import { checkSecretName, sealSecrets } from '../device/sealed-secrets.ts';
import { assertKeyringAvailable, deliverSecret, parseSink, type Delivery, type Sink } from '../device/sinks.ts';
import { printJson } from './output.ts';

/**
 * `sigil boot seal | unseal`: device secrets sealed once under the vendor's PolicyAuthorize, and
 * the boot-time unseal that satisfies a signed policy, hands each secret to its sink, and extends
 * the lock-out PCR so nothing else in this boot can unseal again.
 */
interface TpmOptions {
  tpm?: string;
  json?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function registerBoot(program: Command): void {
  const boot = program.command('boot').description('boot-time secrets: seal under the vendor policy key, unseal with a signed policy and lock out');
  const withTpmOption = (cmd: Command) =>
    cmd.option('--tpm <uri>', 'swtpm://host:port, mssim://host:port or device:///dev/tpmrm0 (default: $SIGIL_TPM)').option('--json', 'print JSON');

  withTpmOption(boot.command('seal').description("seal secrets for this device's product (no PCR values needed)"))
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .requiredOption('--secret <name=file>', 'a secret from a file (repeatable); - reads stdin', collect)
    .requiredOption('--out <file>', 'sealed secrets file (JSON; nothing in it is secret)')
    .action(async (options: TpmOptions & { trust: string; secret: string[]; out: string }) => {
      const trust = await readTrust(options.trust);
      const secrets: Record<string, Uint8Array> = {};
      for (const spec of options.secret) {
        const at = spec.indexOf('=');
        if (at <= 0) throw new SigilError('cli.usage_secret', `"${spec}" is not NAME=FILE`);
        const name = checkSecretName(spec.slice(0, at));
        if (name in secrets) throw new SigilError('cli.usage_secret', `secret ${name} is given twice`);
        secrets[name] = readInputFile(spec.slice(at + 1), `secret ${name}`);
      }
      const { sealed, productId } = await withTpm(options.tpm, async (tpm) => {
        const identity = await readDeviceIdentity(tpm, trust);
        return { productId: identity.productId, sealed: await sealSecrets(tpm, { productId: identity.productId, signer: trust.policySigning.name, secrets }) };
      });
      for (const value of Object.values(secrets)) value.fill(0);
      writeJsonFile(options.out, sealed);
      if (options.json) printJson({ out: options.out, productId, secrets: Object.keys(secrets) });
      else console.log(`sealed ${Object.keys(secrets).join(', ')} for product ${productId} → ${options.out}`);
    });

  withTpmOption(boot.command('unseal').description('satisfy a signed boot policy, deliver the secrets, extend the lock-out PCR'))
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .requiredOption('--policy <file>', 'signed boot policy')
    .requiredOption('--sealed <file>', 'sealed secrets file')
    .option('--sink <name=target>', 'where a secret goes: NAME=stdout, NAME=file:PATH (0600) or NAME=keyring[:DESC] (repeatable)', collect)
    .option('--commit-release', "raise the anti-rollback floor to the policy's release after a successful unseal")
    .action(async (options: TpmOptions & { trust: string; policy: string; sealed: string; sink?: string[]; commitRelease?: boolean }) => {
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
      const policy = readInputFile(options.policy, 'boot policy');
      const sealed = readInputFile(options.sealed, 'sealed secrets file');
      const result = await withTpm(options.tpm, (tpm) => bootUnseal(tpm, { trust, policy, sealed, commitRelease: options.commitRelease }));
      try {
        if (sinks.size === 0) {
          if (result.secrets.size !== 1 || options.json) {
            throw new SigilError('cli.usage_sink', `the file holds ${result.secrets.size} secrets (${[...result.secrets.keys()].join(', ')}): say where each goes with --sink NAME=...`);
          }
          sinks.set([...result.secrets.keys()][0], { kind: 'stdout' });
        }
        for (const name of sinks.keys()) {
          if (!result.secrets.has(name)) throw new SigilError('device.secret_unknown', `the sealed file holds no secret named ${name}`, { name });
        }
        const delivered: Delivery[] = [];
        for (const [name, sink] of sinks) delivered.push(await deliverSecret(name, result.secrets.get(name)!, sink));
        const report = { productId: result.productId, serial: result.serial, release: result.release, floor: result.floor, lockoutPcr: result.lockout.pcr, delivered, undelivered: [...result.secrets.keys()].filter((n) => !sinks.has(n)) };
        if (options.json) printJson(report);
        else process.stderr.write(`sigil: unsealed ${delivered.map((d) => `${d.name} → ${d.where ?? d.sink}`).join(', ')}; PCR ${report.lockoutPcr} extended (locked out until reboot)\n`);
      } finally {
        for (const value of result.secrets.values()) value.fill(0);
      }
    });
}
