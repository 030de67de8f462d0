import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { parseRelease, readInputFile, readPassphrase, writeJsonFile } from '../device/cli-io.ts';
import { createKeyset, Keyset } from '../device/keyset.ts';
import { openOwnershipEscrow, parseProvisioningRecord } from '../device/provisioning-record.ts';
import { signRelease } from '../device/release.ts';
import { printJson } from './output.ts';

/**
 * `sigil keyset create | add-product | trust | sign-release | open-escrow`: the vendor's offline
 * side. Passphrases come from --passphrase-file or SIGIL_KEYSET_PASSPHRASE, never from argv.
 */
interface Common {
  json?: boolean;
  passphraseFile?: string;
}

export function registerKeyset(program: Command): void {
  const keyset = program.command('keyset').description('vendor keysets: CA hierarchy, product, policy-signing and escrow keys');
  const common = (cmd: Command) =>
    cmd.option('--passphrase-file <file>', 'file holding the keyset passphrase (else $SIGIL_KEYSET_PASSPHRASE)').option('--json', 'print JSON');

  common(keyset.command('create').description('create a keyset folder: root, manufacturing and product CAs, policy-signing and escrow keys'))
    .requiredOption('--dir <dir>', 'new folder for the keyset (mode 0700)')
    .requiredOption('--vendor <name>', 'vendor name for certificates')
    .option('--product <id...>', 'products to issue certificates for')
    .option('--no-encrypt', 'write the private keys unencrypted even when a passphrase is available')
    .action(async (options: Common & { dir: string; vendor: string; product?: string[]; encrypt: boolean }) => {
      const passphrase = options.encrypt ? readPassphrase(options.passphraseFile) : undefined;
      const created = await createKeyset({ dir: options.dir, vendor: options.vendor, products: options.product, passphrase });
      const out = { dir: options.dir, vendor: created.vendor, encrypted: created.encrypted, products: created.products(), policySigningKeyName: toHex((await created.policySigningKey()).name) };
      if (options.json) printJson(out);
      else {
        console.log(`keyset for "${out.vendor}" in ${out.dir} (${out.encrypted ? 'keys encrypted' : 'keys NOT encrypted: give a passphrase to encrypt them'})`);
        console.log(`products: ${out.products.join(', ') || '(none)'}; policy-signing key name ${out.policySigningKeyName}`);
      }
    });

  common(keyset.command('add-product').description('issue a product certificate and signing key'))
    .requiredOption('--keyset <dir>')
    .requiredOption('--product <id>')
    .action(async (options: Common & { keyset: string; product: string }) => {
      const opened = await Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
      const cert = await opened.addProduct(options.product);
      if (options.json) printJson({ product: options.product, subject: cert.subject, serialNumber: cert.serialNumber });
      else console.log(`product ${options.product}: ${cert.subject}`);
    });

  keyset
    .command('trust')
    .description('write the public trust bundle devices and brokers use')
    .option('--json', 'print JSON')
    .requiredOption('--keyset <dir>')
    .requiredOption('--out <file>')
    .action(async (options: { json?: boolean; keyset: string; out: string }) => {
      const opened = await Keyset.open(options.keyset);
      const doc = opened.trustDocument();
      writeJsonFile(options.out, doc);
      if (options.json) printJson({ out: options.out, vendor: doc.vendor, products: opened.products() });
      else console.log(`trust bundle for "${doc.vendor}" (${opened.products().length} products) → ${options.out}`);
    });

  common(keyset.command('sign-release').description("sign a release statement with a product's key"))
    .requiredOption('--keyset <dir>')
    .requiredOption('--product <id>')
    .requiredOption('--release <n>')
    .option('--expires <iso-date>')
    .option('--content <file>', 'JSON content to carry in the statement')
    .requiredOption('--out <file>')
    .action(async (options: Common & { keyset: string; product: string; release: string; expires?: string; content?: string; out: string }) => {
      const opened = await Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
      let content: unknown;
      if (options.content) {
        try {
          content = JSON.parse(new TextDecoder().decode(readInputFile(options.content, 'content file')));
        } catch (error) {
          throw new SigilError('cli.usage_content', `${options.content} is not JSON`, {}, { cause: error });
        }
      }
      if (options.expires !== undefined && Number.isNaN(Date.parse(options.expires))) throw new SigilError('cli.usage_expires', `"${options.expires}" is not a date`);
      const statement = { productId: options.product, release: parseRelease(options.release), issuedAt: new Date().toISOString(), expires: options.expires, content };
      writeJsonFile(options.out, signRelease(statement, opened.productKey(options.product), opened.productCertificate(options.product)));
      if (options.json) printJson({ out: options.out, productId: options.product, release: statement.release });
      else console.log(`release ${statement.release} of ${options.product} signed → ${options.out}`);
    });

  common(keyset.command('open-escrow').description("decrypt a device's escrowed TPM hierarchy authorizations (writes a 0600 file)"))
    .requiredOption('--keyset <dir>')
    .requiredOption('--record <file>', 'the provisioning record')
    .requiredOption('--out <file>', 'where to write the authorizations (hex, JSON, mode 0600)')
    .action(async (options: Common & { keyset: string; record: string; out: string }) => {
      const opened = await Keyset.open(options.keyset, readPassphrase(options.passphraseFile));
      const record = parseProvisioningRecord(readInputFile(options.record, 'provisioning record'));
      const auths = openOwnershipEscrow(record, opened.privateKey('escrow'));
      writeJsonFile(options.out, Object.fromEntries(Object.entries(auths).map(([k, v]) => [k, toHex(v as Uint8Array)])));
      if (options.json) printJson({ out: options.out, serial: record.serial, hierarchies: Object.keys(auths) });
      else console.log(`authorizations of ${record.serial} (${Object.keys(auths).join(', ')}) → ${options.out}`);
    });
}
