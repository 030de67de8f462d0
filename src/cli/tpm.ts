import { chmodSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { fromHex, toHex } from '../core/hex.ts';
import { parseCertificates, verifyEkCertificate } from '../evidence/tpm/ek-certificate.ts';
import { parseQuote, verifyQuote } from '../evidence/tpm/quote.ts';
import { hashAlg, hashAlgFromLabel } from '../tpm/algorithms.ts';
import { marshal } from '../tpm/marshal/codec.ts';
import { tpmPublicToPem } from '../tpm/public-key.ts';
import { TPM2B_PUBLIC } from '../tpm/structures/public.ts';
import { Tpm } from '../tpm/tpm.ts';
import { quote } from '../tpm/tpm-attest.ts';
import { createAttestationKey, endorsementKey, readEkCertificate, storageKey, type KeyType } from '../tpm/tpm-keys.ts';
import { nvCounterIncrement, nvDefine, nvReadAll, nvUndefine, nvWriteAll } from '../tpm/tpm-nv.ts';
import { seal, selectionFromSpec, unseal, type SealedObject } from '../tpm/tpm-seal.ts';
import { printJson } from './output.ts';
import { registerTpmDuplicate } from './tpm-duplicate.ts';

interface TpmOptions {
  tpm?: string;
  json?: boolean;
}

async function withTpm<T>(options: TpmOptions, use: (tpm: Tpm) => Promise<T>): Promise<T> {
  const tpm = Tpm.open(options.tpm);
  try {
    return await use(tpm);
  } finally {
    await tpm.close();
  }
}

function parseIndex(text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new SigilError('cli.usage_index', `"${text}" is not a handle or NV index`);
  return value;
}

/** Write a file only its owner can read: secrets and keys never land world-readable. */
function writePrivateFile(path: string, data: Uint8Array | string): void {
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export function registerTpm(program: Command): void {
  const tpm = program.command('tpm').description('TPM 2.0: PCRs, quotes, sealing, EK, NV');
  const common = (cmd: Command) =>
    cmd.option('--tpm <uri>', 'swtpm://host:port, mssim://host:port or device:///dev/tpmrm0 (default: $SIGIL_TPM)').option('--json', 'print JSON');

  common(tpm.command('pcrs').description('read PCR values'))
    .option('--bank <bank>', 'one bank (sha1, sha256, sha384, sha512); default: every active bank')
    .option('--pcrs <list>', 'comma-separated PCR indexes (default 0-23)')
    .action(async (options: TpmOptions & { bank?: string; pcrs?: string }) => {
      await withTpm(options, async (t) => {
        const banks = options.bank ? [hashAlgFromLabel(options.bank)] : await t.pcrBanks();
        const indexes = options.pcrs ? selectionFromSpec(`sha256:${options.pcrs}`)[0].pcrs : undefined;
        const out: Record<string, Record<string, string>> = {};
        for (const bank of banks) {
          const values = await t.readPcrs(bank, indexes);
          out[hashAlg(bank).label] = Object.fromEntries([...values].map(([i, v]) => [String(i), toHex(v)]));
        }
        if (options.json) printJson(out);
        else for (const [bank, values] of Object.entries(out)) for (const [i, v] of Object.entries(values)) console.log(`${bank}:${i.padStart(2)} ${v}`);
      });
    });

  common(tpm.command('extend').description('extend a PCR: <pcr>:<bank>=<hex>[,<bank>=<hex>] or <pcr> --data <text>'))
    .argument('<spec>', 'e.g. 16:sha256=<hex> (tpm2_pcrextend syntax) or 16 with --data')
    .option('--data <text>', 'hash this text in every bank (TPM2_PCR_Event)')
    .action(async (spec: string, options: TpmOptions & { data?: string }) => {
      await withTpm(options, async (t) => {
        const [pcrText, digestsText] = spec.split(':');
        const pcr = Number(pcrText);
        if (!Number.isInteger(pcr) || pcr < 0 || pcr > 23) throw new SigilError('cli.usage_pcr', `"${pcrText}" is not a PCR index 0..23`);
        if (options.data !== undefined) {
          const digests = await t.extendEvent(pcr, new TextEncoder().encode(options.data));
          if (options.json) printJson({ pcr, digests: digests.map((d) => ({ bank: hashAlg(d.hashAlg).label, digest: toHex(d.digest) })) });
          return;
        }
        if (!digestsText) throw new SigilError('cli.usage_extend', 'give digests (16:sha256=<hex>) or --data');
        const digests = digestsText.split(',').map((entry) => {
          const [bank, hex] = entry.split('=');
          const alg = hashAlgFromLabel(bank);
          const digest = fromHex(hex ?? '');
          if (digest.length !== hashAlg(alg).size) throw new SigilError('cli.usage_digest', `a ${bank} digest is ${hashAlg(alg).size} bytes`);
          return { hashAlg: alg, digest };
        });
        await t.extend(pcr, digests);
        if (options.json) printJson({ pcr, digests: digests.map((d) => ({ bank: hashAlg(d.hashAlg).label, digest: toHex(d.digest) })) });
      });
    });

  common(tpm.command('quote').description('quote PCRs with a fresh attestation key and verify the quote'))
    .requiredOption('--pcrs <spec>', 'PCR selection, e.g. sha256:0,7,16')
    .requiredOption('--nonce <hex>', 'the verifier nonce (qualifying data)')
    .option('--ak-type <type>', 'ecc or rsa', 'ecc')
    .option('--out-dir <dir>', 'write quote.msg, quote.sig (TPMT_SIGNATURE), ak.pub (TPM2B_PUBLIC), ak.pem, pcrs.json')
    .action(async (options: TpmOptions & { pcrs: string; nonce: string; akType: KeyType; outDir?: string }) => {
      await withTpm(options, async (t) => {
        const selection = selectionFromSpec(options.pcrs);
        const nonce = fromHex(options.nonce);
        const srk = await storageKey(t);
        try {
          const ak = await createAttestationKey(t, srk, options.akType);
          const evidence = await t.using(ak.handle, () => quote(t, ak, nonce, selection));
          const verified = await verifyQuote(parseQuote(evidence.attestBytes, evidence.signatureBytes), { akPublic: ak.publicArea, nonce, pcrValues: evidence.pcrValues });
          if (options.outDir) {
            mkdirSync(options.outDir, { recursive: true });
            writeFileSync(join(options.outDir, 'quote.msg'), evidence.attestBytes);
            writeFileSync(join(options.outDir, 'quote.sig'), evidence.signatureBytes);
            writeFileSync(join(options.outDir, 'ak.pub'), marshal(TPM2B_PUBLIC, ak.publicArea));
            writeFileSync(join(options.outDir, 'ak.pem'), tpmPublicToPem(ak.publicArea));
            writeFileSync(join(options.outDir, 'pcrs.json'), JSON.stringify(verified.pcrs, null, 2));
          }
          const out = { quote: toHex(evidence.attestBytes), signature: toHex(evidence.signatureBytes), akPublic: toHex(marshal(TPM2B_PUBLIC, ak.publicArea)), akName: toHex(ak.name), pcrs: verified.pcrs, verified: true };
          if (options.json) printJson(out);
          else console.log(`quote verified: ${Object.entries(verified.pcrs).map(([b, v]) => `${b}:${Object.keys(v).join(',')}`).join(' ')} (AK ${toHex(ak.name)})`);
        } finally {
          if (srk.transient) await t.flush(srk.handle);
        }
      });
    });

  common(tpm.command('seal').description('seal a secret to the current values of some PCRs (PolicyPCR)'))
    .requiredOption('--pcrs <spec>', 'PCR selection, e.g. sha256:7')
    .requiredOption('--in <file>', 'the secret (at most 128 bytes); - for stdin')
    .requiredOption('--out <file>', 'where to write the sealed object (JSON)')
    .action(async (options: TpmOptions & { pcrs: string; in: string; out: string }) => {
      await withTpm(options, async (t) => {
        const secret = new Uint8Array(readFileSync(options.in === '-' ? 0 : options.in));
        if (secret.length === 0 || secret.length > 128) throw new SigilError('cli.usage_secret_size', 'a sealed secret is 1 to 128 bytes');
        const sealed = await seal(t, { secret, selection: selectionFromSpec(options.pcrs) });
        writePrivateFile(options.out, JSON.stringify(sealed, null, 2));
        if (options.json) printJson({ out: options.out, policyDigest: sealed.policyDigest, pcrs: sealed.pcrs });
        else console.log(`sealed to ${options.pcrs} (policy ${sealed.policyDigest}) → ${options.out}`);
      });
    });

  common(tpm.command('unseal').description('unseal a sealed object; refused when the PCRs changed'))
    .requiredOption('--in <file>', 'the sealed object (JSON)')
    .option('--out <file>', 'write the secret to this file (mode 0600) instead of stdout')
    .action(async (options: TpmOptions & { in: string; out?: string }) => {
      await withTpm(options, async (t) => {
        let sealed: SealedObject;
        try {
          sealed = JSON.parse(readFileSync(options.in, 'utf8'));
        } catch (error) {
          throw new SigilError('tpm.sealed_object_invalid', `${options.in} is not a JSON sealed object`, {}, { cause: error });
        }
        const secret = await unseal(t, sealed);
        if (options.out) writePrivateFile(options.out, secret);
        else if (options.json) printJson({ secret: toHex(secret) });
        else process.stdout.write(secret);
      });
    });

  common(tpm.command('ek').description('the endorsement key and its certificate'))
    .option('--type <type>', 'rsa or ecc', 'rsa')
    .option('--ca <files...>', 'PEM files with the EK CA root(s) and intermediates: validates the certificate')
    .option('--out-cert <file>', 'write the EK certificate (DER)')
    .action(async (options: TpmOptions & { type: KeyType; ca?: string[]; outCert?: string }) => {
      await withTpm(options, async (t) => {
        const ek = await endorsementKey(t, options.type);
        await t.flush(ek.handle);
        const cert = await readEkCertificate(t, options.type);
        if (cert && options.outCert) writeFileSync(options.outCert, cert);
        let validation: unknown;
        if (options.ca) {
          if (!cert) throw new SigilError('tpm.ek_cert_missing', 'the TPM holds no EK certificate to validate');
          const certs = options.ca.flatMap((f) => parseCertificates(readFileSync(f, 'utf8')));
          const roots = certs.filter((c) => c.subject === c.issuer);
          validation = await verifyEkCertificate(cert, { roots, intermediates: certs.filter((c) => c.subject !== c.issuer), ekPublic: ek.publicArea });
        }
        const out = { type: options.type, name: toHex(ek.name), publicKeyPem: tpmPublicToPem(ek.publicArea), certificate: cert ? toHex(cert) : null, validation: validation ?? null };
        if (options.json) printJson(out);
        else {
          process.stdout.write(out.publicKeyPem);
          console.log(cert ? `EK certificate: ${cert.length} bytes${validation ? ', valid against the given CA' : ''}` : 'no EK certificate in NV');
        }
      });
    });

  registerTpmDuplicate(tpm);

  const nv = tpm.command('nv').description('NV indexes and counters');
  common(nv.command('define').description('define an index (owner authorization)'))
    .requiredOption('--index <index>', 'e.g. 0x1500016')
    .option('--size <bytes>', 'data size', '32')
    .option('--counter', 'a monotonic 64-bit counter')
    .action(async (options: TpmOptions & { index: string; size: string; counter?: boolean }) => {
      await withTpm(options, async (t) => {
        const info = await nvDefine(t, { index: parseIndex(options.index), size: Number(options.size), counter: options.counter });
        if (options.json) printJson(info);
      });
    });
  common(nv.command('read').description('read a whole index'))
    .requiredOption('--index <index>')
    .action(async (options: TpmOptions & { index: string }) => {
      await withTpm(options, async (t) => {
        const data = await nvReadAll(t, parseIndex(options.index));
        if (options.json) printJson({ data: toHex(data) });
        else console.log(toHex(data));
      });
    });
  common(nv.command('write').description('write hex data at offset 0'))
    .requiredOption('--index <index>')
    .requiredOption('--data <hex>')
    .action(async (options: TpmOptions & { index: string; data: string }) => {
      await withTpm(options, (t) => nvWriteAll(t, parseIndex(options.index), fromHex(options.data)));
    });
  common(nv.command('increment').description('increment a counter and print its value'))
    .requiredOption('--index <index>')
    .action(async (options: TpmOptions & { index: string }) => {
      await withTpm(options, async (t) => {
        const value = await nvCounterIncrement(t, parseIndex(options.index));
        if (options.json) printJson({ value: value.toString() });
        else console.log(value.toString());
      });
    });
  common(nv.command('undefine').description('delete an index (owner authorization)'))
    .requiredOption('--index <index>')
    .action(async (options: TpmOptions & { index: string }) => {
      await withTpm(options, (t) => nvUndefine(t, parseIndex(options.index)));
    });
}
