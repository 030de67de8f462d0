/**
 * `sigil update init | check | apply | rollback | commit | status` on the device, and
 * `sigil update publish` on the vendor's side (sign a product manifest with the product key and
 * push it with its signature referrer). The state folder defaults to $SIGIL_UPDATE_STATE or
 * /var/lib/sigil/update; registry credentials come from SIGIL_REGISTRY_USERNAME / _PASSWORD.
 */
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { parseRelease, readPassphrase } from '../device/cli-io.ts';
import type { ReleaseSummary, UpdateStatus } from '../image/update/status.ts';
import type { SwitchResult } from '../image/update/engine.ts';
import { EXIT, printJson } from './output.ts';
import { progressBar } from './verity.ts';

const load = {
  config: () => import('../image/update/config.ts'),
  manifest: () => import('../image/manifest/product-manifest.ts'),
  signature: () => import('../image/manifest/signature.ts'),
  registry: () => import('../image/manifest/registry.ts'),
  reference: () => import('../image/oci/reference.ts'),
  client: () => import('../image/oci/registry.ts'),
  keyset: () => import('../device/keyset.ts'),
};

interface StateOptions {
  state: string;
  json?: boolean;
}

const stateOption = (cmd: Command) =>
  cmd.option('--state <dir>', 'the update state folder', process.env.SIGIL_UPDATE_STATE ?? '/var/lib/sigil/update').option('--json', 'print JSON');

function describeRelease(r: ReleaseSummary | null): string {
  if (!r) return '(none)';
  return `release ${r.release} (${r.id}) — ${r.targets.map((t) => `${t.name} ${t.version} [${t.type}]`).join(', ')}`;
}

function printStatus(status: UpdateStatus): void {
  if (status.recovered) console.log(`recovered: operation ${status.recovered.operation} (${status.recovered.kind}, interrupted in ${status.recovered.phase}): ${status.recovered.outcome}`);
  console.log(`current   ${describeRelease(status.current)}`);
  console.log(`previous  ${describeRelease(status.previous)}`);
  console.log(`floor     ${status.floor.value ?? `unreadable: ${status.floor.error}`} (${status.floor.kind}: ${status.floor.location})`);
  console.log(`state     ${status.consistent ? 'consistent' : `INCONSISTENT: ${status.problems.join('; ')}`}`);
  const op = status.lastOperation;
  if (op) console.log(`last      #${op.id} ${op.kind} → ${op.phase}${op.error ? ` (${op.error})` : ''}`);
}

function printSwitch(result: SwitchResult, json: boolean | undefined): void {
  const hookFailed = result.hook !== null && result.hook.exitCode !== 0;
  if (json) printJson(result);
  else if (result.status === 'up-to-date') console.log(`up to date: ${describeRelease(result.current)}`);
  else {
    console.log(`switched to ${describeRelease(result.current)}; anti-rollback floor ${result.floor}`);
    const d = result.decision;
    if (d) console.log(`decision: ${d.action}${d.reboot.length ? ` (because of ${d.reboot.join(', ')})` : ''}${d.restart.length ? `; restart ${d.restart.join(', ')}` : ''}${d.stop.length ? `; stop ${d.stop.join(', ')}` : ''}`);
  }
  if (hookFailed) {
    process.stderr.write(`sigil: the switch happened, but the hook "${result.hook!.command}" exited with ${result.hook!.exitCode ?? result.hook!.signal} [update.hook_failed]\n`);
    process.exitCode = EXIT.refused;
  }
}

async function withEngine<T>(options: StateOptions & { reference?: string }, use: (opened: Awaited<ReturnType<Awaited<ReturnType<typeof load.config>>['openConfiguredEngine']>>) => Promise<T>): Promise<T> {
  const progress = progressBar('update', !options.json && process.stderr.isTTY === true);
  let label = '';
  const opened = await (await load.config()).openConfiguredEngine(options.state, {
    reference: options.reference,
    onProgress: (what, done, total) => {
      if (what !== label) {
        progress.finish();
        label = what;
      }
      progress(done, total);
    },
  });
  try {
    if (opened.engine.recovery && !options.json) {
      const r = opened.engine.recovery;
      process.stderr.write(`sigil: recovered operation ${r.operation} (${r.kind}, interrupted in ${r.phase}): ${r.outcome}\n`);
    }
    return await use(opened);
  } finally {
    progress.finish();
    await opened.close();
  }
}

interface TargetSpec {
  name: string;
  type: string;
  version: string;
  image: string;
}

function parseTargetSpec(text: string): TargetSpec {
  const fields: Record<string, string> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new SigilError('cli.usage_target', `target "${text}" is not name=…,type=…,version=…,image=…`);
    fields[part.slice(0, eq)] = part.slice(eq + 1);
  }
  const { name, type, version, image } = fields;
  if (!name || !type || !version || !image) throw new SigilError('cli.usage_target', `target "${text}" needs name, type, version and image`);
  return { name, type, version, image };
}

export function registerUpdate(program: Command): void {
  const update = program.command('update').description('signed product releases: verify, download, switch atomically, roll back');

  stateOption(update.command('init').description('configure the device side: registry, trust bundle, device identity, floor, hook'))
    .option('--registry <host>', 'registry host[:port]')
    .option('--repository <name>', 'repository of the product manifests')
    .option('--tag <tag>', 'tag to follow (default stable)')
    .option('--plain-http', 'INSECURE: plain HTTP, for a registry on loopback or a test network')
    .option('--trust <file>', 'vendor trust bundle (sigil keyset trust)')
    .option('--tpm <uri>', "read the device certificate and the anti-rollback counter from this TPM")
    .option('--device-certificate <file>', 'without a TPM: the device certificate (PEM)')
    .option('--floor-file <file>', 'without a TPM: the anti-rollback floor file (default <state>/floor.json)')
    .option('--initial-release <n>', 'without a TPM: the first floor when the floor file is created (default 1)')
    .option('--hook <command>', 'shell command run after each switch with the decision (stdin, $SIGIL_UPDATE_DECISION)')
    .action(async (options: StateOptions & { registry?: string; repository?: string; tag?: string; plainHttp?: boolean; trust?: string; tpm?: string; deviceCertificate?: string; floorFile?: string; initialRelease?: string; hook?: string }) => {
      if (options.tpm !== undefined && options.deviceCertificate !== undefined) throw new SigilError('cli.usage_device', 'give --tpm or --device-certificate, not both');
      const result = await (await load.config()).initUpdate({
        stateDir: options.state,
        registry: options.registry,
        repository: options.repository,
        tag: options.tag,
        plainHttp: options.plainHttp,
        trust: options.trust,
        tpm: options.tpm,
        deviceCertificate: options.deviceCertificate,
        floorFile: options.floorFile,
        hook: options.hook,
        initialRelease: options.initialRelease ? parseRelease(options.initialRelease) : undefined,
      });
      if (options.json) printJson(result);
      else console.log(`device ${result.serial} of product ${result.productId}; floor ${result.floor}; following ${result.settings.registry ?? '(no registry)'}/${result.settings.repository ?? ''}:${result.settings.tag ?? 'stable'}`);
    });

  stateOption(update.command('check').description('fetch and verify the latest release manifest; download nothing'))
    .option('--reference <ref>', 'tag or digest instead of the configured tag')
    .action(async (options: StateOptions & { reference?: string }) => {
      const result = await withEngine(options, ({ engine }) => engine.check());
      if (options.json) printJson(result);
      else {
        console.log(`${result.status}: release ${result.candidate.release} (${result.candidate.id}), expires ${result.candidate.expires}; current ${describeRelease(result.current)}`);
        if (result.decision) console.log(`applying it would ${result.decision.action === 'none' ? 'change nothing' : result.decision.action}`);
      }
    });

  stateOption(update.command('apply').description('download, verify everything, switch atomically, raise the floor, run the hook'))
    .option('--reference <ref>', 'tag or digest instead of the configured tag')
    .action(async (options: StateOptions & { reference?: string }) => {
      printSwitch(await withEngine(options, ({ engine }) => engine.apply()), options.json);
    });

  stateOption(update.command('rollback').description('verify the previous release again and switch back to it')).action(async (options: StateOptions) => {
    printSwitch(await withEngine(options, ({ engine }) => engine.rollback()), options.json);
  });

  stateOption(update.command('commit').description('accept the current release for good: raise the floor to it, drop the previous one')).action(async (options: StateOptions) => {
    const result = await withEngine(options, ({ engine }) => engine.commit());
    if (options.json) printJson(result);
    else console.log(`committed ${describeRelease(result.current)}; anti-rollback floor ${result.floor}${result.retired ? `; removed ${result.retired}` : ''}`);
  });

  stateOption(update.command('status').description('current and previous release, floor, last operation, consistency (recovers first)')).action(async (options: StateOptions) => {
    const status = await withEngine(options, ({ engine }) => engine.status());
    if (options.json) printJson(status);
    else printStatus(status);
    if (!status.consistent) process.exitCode = EXIT.refused;
  });

  update
    .command('publish')
    .description("vendor side: sign a product manifest with the product's key and push it, with its signature referrer, as <destination>")
    .argument('<destination>', 'host[:port]/repository:tag of the release manifest')
    .requiredOption('--keyset <dir>')
    .option('--passphrase-file <file>', 'file holding the keyset passphrase (else $SIGIL_KEYSET_PASSPHRASE)')
    .requiredOption('--product <id>')
    .requiredOption('--release <n>')
    .requiredOption('--target <spec...>', 'name=web,type=container|host-root|uki,version=1.2.0,image=host/repo:tag-or-@digest (same registry)')
    .option('--expires <iso-date>', 'expiry (default: --valid-days from now)')
    .option('--valid-days <n>', 'days until expiry', '90')
    .option('--plain-http', 'INSECURE: plain HTTP, for a registry on loopback or a test network')
    .option('--json', 'print JSON')
    .action(async (destination: string, options: { keyset: string; passphraseFile?: string; product: string; release: string; target: string[]; expires?: string; validDays: string; plainHttp?: boolean; json?: boolean }) => {
      const { parseReference } = await load.reference();
      const { RegistryClient } = await load.client();
      const dest = parseReference(destination);
      if (!dest.tag) throw new SigilError('cli.usage_destination', `${destination} names no tag`);
      const clientFor = (repository: string) =>
        new RegistryClient({ registry: dest.registry, repository, plainHttp: options.plainHttp, username: process.env.SIGIL_REGISTRY_USERNAME, password: process.env.SIGIL_REGISTRY_PASSWORD });
      const targets = [];
      for (const spec of options.target.map(parseTargetSpec)) {
        const ref = parseReference(spec.image);
        if (ref.registry !== dest.registry) throw new SigilError('cli.usage_target', `target ${spec.name}: ${spec.image} is not on ${dest.registry}`);
        const fetched = await clientFor(ref.repository).getManifest(ref.digest ?? ref.tag ?? 'latest');
        if (!fetched) throw new SigilError('oci.not_found', `target ${spec.name}: ${spec.image} is not in the registry`);
        targets.push({ name: spec.name, type: spec.type, version: spec.version, ...(ref.repository !== dest.repository ? { repository: ref.repository } : {}), digest: fetched.digest, size: fetched.bytes.length });
      }
      const days = Number(options.validDays);
      if (!options.expires && (!Number.isFinite(days) || days <= 0)) throw new SigilError('cli.usage_expires', '--valid-days must be a positive number');
      const issuedAt = new Date();
      const expires = options.expires ?? new Date(issuedAt.getTime() + days * 86400_000).toISOString();
      const { encodeProductManifest } = await load.manifest();
      const document = encodeProductManifest({ productId: options.product, release: parseRelease(options.release), issuedAt: issuedAt.toISOString(), expires, targets: targets as never });
      const keyset = await (await load.keyset()).Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
      const signature = await (await load.signature()).signProductManifest(document, keyset.productKey(options.product), keyset.productCertificate(options.product));
      const published = await (await load.registry()).publishProductManifest(clientFor(dest.repository), { document, signature }, dest.tag);
      if (options.json) printJson({ destination, digest: published.descriptor.digest, signature: published.signature.digest, release: Number(options.release), expires, targets });
      else console.log(`published release ${options.release} of ${options.product} as ${destination}: ${published.descriptor.digest} (signature ${published.signature.digest})`);
    });
}
