import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { fromHex } from '../core/hex.ts';
import { parseBootPolicy, signBootPolicy, verifyBootPolicy, DEFAULT_LOCKOUT_PCR } from '../device/boot-policy.ts';
import { parseRelease, readInputFile, readPassphrase, readTrust, withTpm, writeJsonFile } from '../device/cli-io.ts';
import { Keyset } from '../device/keyset.ts';
import { hashAlg, hashAlgFromLabel } from '../tpm/algorithms.ts';
import { selectionFromSpec } from '../tpm/tpm-seal.ts';
import { printJson } from './output.ts';

/**
 * `sigil policy sign | verify`: signed boot policies (src/device/boot-policy.ts). The vendor signs
 * offline from predicted PCR values (a JSON file, e.g. from `sigil measure`) or, for a lab, from
 * a reference machine's current PCRs; devices verify with the trust bundle.
 */

/** { "sha256": { "7": "<hex>", "11": "<hex>" } } → bank → PCR → value. */
function parseValuesFile(bytes: Uint8Array): Map<number, Map<number, Uint8Array>> {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new SigilError('cli.usage_pcr_values', 'the PCR values file is not JSON', {}, { cause: error });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new SigilError('cli.usage_pcr_values', 'the PCR values file must be { "sha256": { "7": "<hex>" } }');
  const out = new Map<number, Map<number, Uint8Array>>();
  for (const [bank, pcrs] of Object.entries(doc)) {
    const alg = hashAlgFromLabel(bank);
    if (typeof pcrs !== 'object' || pcrs === null) throw new SigilError('cli.usage_pcr_values', `bank ${bank} must map PCR indexes to hex values`);
    const values = new Map<number, Uint8Array>();
    for (const [index, value] of Object.entries(pcrs as Record<string, unknown>)) {
      if (!/^\d{1,2}$/.test(index) || typeof value !== 'string') throw new SigilError('cli.usage_pcr_values', `"${bank}:${index}" must be a PCR index with a hex value`);
      const bytes = fromHex(value);
      if (bytes.length !== hashAlg(alg).size) throw new SigilError('cli.usage_pcr_values', `${bank}:${index} must be ${hashAlg(alg).size} bytes`);
      values.set(Number(index), bytes);
    }
    out.set(alg, values);
  }
  return out;
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('signed boot policies (PolicyPCR + release floor under PolicyAuthorize)');

  policy
    .command('sign')
    .description('sign an approved boot policy for a product release')
    .requiredOption('--keyset <dir>')
    .requiredOption('--product <id>')
    .requiredOption('--release <n>', 'release number; the TPM refuses the policy once the floor passes it')
    .option('--pcr-values <file>', 'predicted PCR values: { "sha256": { "7": "<hex>", "11": "<hex>" } }')
    .option('--from-tpm <uri>', "take the values of --pcrs from this (reference) machine's TPM instead")
    .option('--pcrs <spec>', 'with --from-tpm: the PCRs to bind, e.g. sha256:7,11 (or sha256:4,9,11 for UKIs)', 'sha256:7,11')
    .option('--lockout-pcr <n>', 'PCR extended after unseal (0-15; expected zero unless --pcr-values gives it)', String(DEFAULT_LOCKOUT_PCR))
    .requiredOption('--out <file>')
    .option('--passphrase-file <file>', 'file holding the keyset passphrase (else $SIGIL_KEYSET_PASSPHRASE)')
    .option('--json', 'print JSON')
    .action(
      async (options: { keyset: string; product: string; release: string; pcrValues?: string; fromTpm?: string; pcrs: string; lockoutPcr: string; out: string; passphraseFile?: string; json?: boolean }) => {
        if (Boolean(options.pcrValues) === Boolean(options.fromTpm)) throw new SigilError('cli.usage_pcr_source', 'give exactly one of --pcr-values and --from-tpm');
        const lockoutPcr = Number(options.lockoutPcr);
        let pcrValues: Map<number, Map<number, Uint8Array>>;
        if (options.pcrValues) pcrValues = parseValuesFile(readInputFile(options.pcrValues, 'PCR values file'));
        else {
          // The lock-out PCR is never read from a running machine: after its boot unseal it holds
          // the lock-out measurement, and a policy must expect the value before it.
          const selection = selectionFromSpec(options.pcrs).map((s) => ({ ...s, pcrs: s.pcrs.filter((p) => p !== lockoutPcr) }));
          pcrValues = await withTpm(options.fromTpm, (tpm) => tpm.readSelection(selection));
        }
        const keyset = await Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
        const signed = await signBootPolicy({ policyKey: keyset.privateKey('policy-signing'), productId: options.product, release: parseRelease(options.release), pcrValues, lockoutPcr });
        writeJsonFile(options.out, signed);
        const pcrs = signed.pcrs.map((b) => `${b.bank}:${Object.keys(b.values).join(',')}`).join('+');
        if (options.json) printJson({ out: options.out, productId: signed.productId, release: signed.release, pcrs, lockoutPcr: signed.lockoutPcr, approvedPolicy: signed.approvedPolicy });
        else console.log(`boot policy for ${signed.productId} release ${signed.release} over ${pcrs} (lock-out PCR ${signed.lockoutPcr}) → ${options.out}`);
      },
    );

  policy
    .command('verify')
    .description('check a signed boot policy in software: signer, product binding, digest, signature')
    .argument('<policy>', 'signed boot policy (JSON)')
    .requiredOption('--trust <file>', 'vendor trust bundle')
    .requiredOption('--product <id>', "the device's product ID")
    .option('--json', 'print JSON')
    .action(async (file: string, options: { trust: string; product: string; json?: boolean }) => {
      const trust = await readTrust(options.trust);
      const parsed = parseBootPolicy(readInputFile(file, 'boot policy'));
      await verifyBootPolicy(parsed, trust, options.product);
      const out = { verified: true, productId: parsed.productId, release: parsed.release, lockoutPcr: parsed.lockoutPcr, pcrs: parsed.selection.map((s) => `${hashAlg(s.hash).label}:${s.pcrs.join(',')}`) };
      if (options.json) printJson(out);
      else console.log(`boot policy for ${out.productId} release ${out.release} verifies (PCRs ${out.pcrs.join('+')}, lock-out ${out.lockoutPcr})`);
    });
}
