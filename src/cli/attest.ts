import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { BrokerClient } from '../attester/client.ts';
import { generateRuntimeKey } from '../attester/runtime-key.ts';
import { enrolTpm, LINUX_EVENT_LOG, LINUX_IMA_LOG, loadAk, saveAk, tpmEvidence, type SavedAk } from '../attester/tpm-attester.ts';
import { SigilError } from '../core/errors.ts';
import { Tpm } from '../tpm/tpm.ts';
import { selectionFromSpec } from '../tpm/tpm-seal.ts';
import { printJson } from './output.ts';

interface AttestOptions {
  broker: string;
  ca?: string;
  tenant: string;
  tpm?: string;
  snp?: boolean;
  tdx?: boolean;
  ak: string;
  enrol?: boolean;
  device?: string;
  pcrs: string;
  policy?: string;
  resource?: string;
  out?: string;
  json?: boolean;
  eventLog?: string;
  imaLog?: string;
  imaTemplateHash?: string;
}

/** A log file to send: a path, or "auto" for the kernel's own when it can be read (else none). */
function readLog(option: string | undefined, auto: string): Uint8Array | undefined {
  if (option === undefined) return undefined;
  if (option === 'auto') {
    try {
      return new Uint8Array(readFileSync(auto));
    } catch {
      return undefined;
    }
  }
  if (!existsSync(option)) throw new SigilError('cli.usage_log_missing', `no log at ${option}`);
  return new Uint8Array(readFileSync(option));
}

/**
 * `sigil attest`: the device side of the broker protocol. With --enrol, enrol the TPM first
 * (EK certificate + credential activation) and keep the AK in --ak; then challenge, quote bound
 * to a fresh runtime key, attest, and with --resource fetch and decrypt a secret.
 */
export function registerAttest(program: Command): void {
  program
    .command('attest')
    .description('attest to a Sigil broker and optionally receive a secret')
    .requiredOption('--broker <url>', 'broker URL, e.g. https://127.0.0.1:8443')
    .option('--ca <file>', 'the broker CA certificate (PEM), as printed by `sigil serve`')
    .requiredOption('--tenant <id>', 'tenant')
    .option('--tpm <uri>', 'TPM evidence from this TPM (swtpm://…, device:///dev/tpmrm0; default $SIGIL_TPM)')
    .option('--snp', 'SEV-SNP evidence via configfs-tsm')
    .option('--tdx', 'TDX evidence via configfs-tsm')
    .option('--ak <file>', 'where the enrolled AK is kept', 'sigil-ak.json')
    .option('--enrol', 'enrol this TPM first (EK certificate + credential activation)')
    .option('--device <id>', 'device id to enrol as')
    .option('--pcrs <spec>', 'PCRs to quote', 'sha256:0,1,2,3,4,5,6,7')
    .option('--event-log <file>', `send this TCG event log with the quote ("auto": ${LINUX_EVENT_LOG} when readable)`)
    .option('--ima-log <file>', `send this binary IMA measurement list ("auto": ${LINUX_IMA_LOG} when readable)`)
    .option('--ima-template-hash <alg>', 'the IMA list\'s template hash when it is not sha1 (sha256)')
    .option('--policy <id>', 'appraisal policy to ask for (default: the tenant default)')
    .option('--resource <path>', 'fetch this secret after attesting')
    .option('--out <file>', 'write the secret here (0600) instead of stdout')
    .option('--json', 'print JSON')
    .action(async (options: AttestOptions) => {
      if (options.snp || options.tdx) {
        throw new SigilError('env.tsm_unavailable', 'SNP/TDX evidence needs configfs-tsm (/sys/kernel/config/tsm/report), which this machine does not offer');
      }
      const client = new BrokerClient(options.broker, { ca: options.ca ? readFileSync(options.ca, 'utf8') : undefined });
      const tpm = Tpm.open(options.tpm);
      try {
        let saved: SavedAk;
        if (options.enrol) {
          const enrolled = await enrolTpm(client, tpm, { tenant: options.tenant, deviceId: options.device });
          await tpm.flush(enrolled.ak.handle);
          saved = saveAk(enrolled, options.tenant);
          writeFileSync(options.ak, `${JSON.stringify(saved, null, 2)}\n`, { mode: 0o600 });
        } else {
          if (!existsSync(options.ak)) throw new SigilError('attester.ak_file_missing', `no enrolled AK at ${options.ak}: enrol first with --enrol`);
          saved = JSON.parse(readFileSync(options.ak, 'utf8')) as SavedAk;
        }
        if (options.imaTemplateHash !== undefined && options.imaTemplateHash !== 'sha1' && options.imaTemplateHash !== 'sha256') throw new SigilError('cli.usage_ima_template_hash', '--ima-template-hash must be sha1 or sha256');
        const ak = await loadAk(tpm, saved);
        const runtimeKey = await generateRuntimeKey();
        const result = await tpm.using(ak.handle, () =>
          client.attestWith({ tenant: options.tenant, kind: 'tpm', deviceId: saved.deviceId, policyId: options.policy, runtimeKey }, (binding) =>
            tpmEvidence(tpm, ak, binding, selectionFromSpec(options.pcrs), () => ({
              eventLog: readLog(options.eventLog, LINUX_EVENT_LOG),
              imaLog: readLog(options.imaLog, LINUX_IMA_LOG),
              imaTemplateHash: options.imaTemplateHash as 'sha1' | 'sha256' | undefined,
            })),
          ),
        );
        let secret: Uint8Array | undefined;
        if (options.resource) secret = await client.fetchResource(options.tenant, options.resource, result.ear, runtimeKey);
        if (secret && options.out) writeFileSync(options.out, secret, { mode: 0o600 });
        if (options.json) printJson({ deviceId: saved.deviceId, status: result.status, expiresAt: result.expiresAt, ear: result.ear, secret: secret && !options.out ? Buffer.from(secret).toString('base64') : undefined });
        else {
          process.stderr.write(`attested: ${result.status} (device ${saved.deviceId}, EAR valid until ${result.expiresAt})\n`);
          if (secret && !options.out) process.stdout.write(secret);
          else if (!secret) process.stdout.write(`${result.ear}\n`);
        }
      } finally {
        await tpm.close();
        client.close();
      }
    });
}
