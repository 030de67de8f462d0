import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { fromHex, toBase64, toHex } from '../core/hex.ts';
import { openCollateralBundle } from '../evidence/collateral/node-files.ts';
import { parseAkPublic } from '../evidence/tpm/bundle.ts';
import { parseConcatenatedPcrs, parseSerializedPcrs } from '../evidence/tpm/tpm2-tools-files.ts';
import { parseQuote } from '../evidence/tpm/quote.ts';
import { verifyAnyEvidence, type VerifiedEvidence, type VerifyAnyOptions } from '../evidence/verify-any.ts';
import type { EvidenceKind } from '../evidence/verifier.ts';
import { hashAlg } from '../tpm/algorithms.ts';
import { marshal } from '../tpm/marshal/codec.ts';
import { objectName } from '../tpm/names.ts';
import { TPMT_PUBLIC } from '../tpm/structures/public.ts';
import { keyObjectToTpmPublic } from '../tpm/public-key.ts';
import { AK_ATTRIBUTES } from '../tpm/templates.ts';
import { printJson } from './output.ts';

const KINDS = ['auto', 'tpm', 'snp', 'tdx', 'azure-snp', 'azure-tdx'];

function readInput(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new SigilError('env.file_unreadable', `cannot read the ${what} ${path}`, {}, { cause: error });
  }
}

function parseAt(text: string | undefined): Date {
  if (text === undefined) return new Date();
  const at = /^\d+$/.test(text) ? new Date(Number(text) * 1000) : new Date(text);
  if (Number.isNaN(at.getTime())) throw new SigilError('cli.usage_time', `"${text}" is not a time (ISO 8601 or Unix seconds)`);
  return at;
}

interface VerifyCliOptions {
  kind: string;
  collateral?: string;
  at?: string;
  nonce?: string;
  vcek?: string;
  chain?: string;
  akName?: string[];
  akRoot?: string[];
  json?: boolean;
}

/** The few values people look for first, per kind; --json prints every claim. */
function summary(result: VerifiedEvidence): string[] {
  const c = result.verified.claims as Record<string, any>;
  switch (result.kind) {
    case 'snp':
      return [`${c.product} report v${c.reportVersion}, signed by its ${c.signingKey.toUpperCase()}`, `measurement ${c.measurement}`, `report_data ${c.reportData}`];
    case 'tdx':
      return [`TDX quote v${c.quoteVersion} (TD ${c.tdReportVersion})${c.tcb ? `, TCB ${c.tcb.status}` : ', TCB not evaluated (no collateral)'}`, `MRTD ${c.mrTd}`, `report_data ${c.reportData}`];
    case 'tpm':
      return [`AK ${c.ak.name} trusted by ${c.ak.trustedBy}`, ...Object.entries(c.pcrs as Record<string, Record<string, string>>).map(([bank, v]) => `${bank}: ${Object.keys(v).length} PCRs quoted`)];
    default:
      return [`${result.kind}: hardware report, runtime-data binding and vTPM quote verified`];
  }
}

function print(result: VerifiedEvidence, json: boolean | undefined): void {
  if (json) {
    printJson({ kind: result.kind, verified: true, at: result.verified.verifiedAt, claims: result.verified.claims, collateral: result.collateral ?? null });
    return;
  }
  console.log(`verified ${result.kind} evidence`);
  for (const line of summary(result)) console.log(`  ${line}`);
  if (result.collateral?.stale) console.log('  warning: some collateral was stale');
}

async function baseOptions(options: VerifyCliOptions): Promise<VerifyAnyOptions> {
  if (!KINDS.includes(options.kind)) throw new SigilError('cli.usage_kind', `--kind must be one of ${KINDS.join(', ')}`);
  return {
    kind: options.kind as EvidenceKind | 'auto',
    at: parseAt(options.at),
    ...(options.nonce ? { nonce: fromHex(options.nonce) } : {}),
    ...(options.collateral ? { collateral: await openCollateralBundle(options.collateral) } : {}),
    ...(options.vcek ? { vcek: readInput(options.vcek, 'VCEK') } : {}),
    ...(options.chain ? { chain: readFileSync(options.chain, 'utf8') } : {}),
    akTrust: {
      ...(options.akName ? { pinnedAkNames: options.akName } : {}),
      ...(options.akRoot ? { akRoots: options.akRoot.map((f) => readInput(f, 'AK root')) } : {}),
    },
  };
}

/**
 * `sigil verify <evidence>`: any kind, detected from its shape; `sigil verify tpm` takes
 * tpm2-tools' files (`tpm2_quote -m/-s/-o`, AK public as PEM or TPM2B_PUBLIC) directly.
 */
export function registerVerify(program: Command): void {
  const verify = program
    .command('verify')
    .description('verify evidence: SNP report, TDX quote, TPM bundle (JSON), Azure CVM evidence')
    .argument('[evidence]', 'the evidence file')
    .option('--kind <kind>', KINDS.join('|'), 'auto')
    .option('--collateral <dir>', 'offline collateral bundle (see src/evidence/collateral/README.md for file names)')
    .option('--at <time>', 'verification time (ISO 8601 or Unix seconds); default now')
    .option('--nonce <hex>', 'the nonce the evidence must carry (TPM quotes, Azure vTPM quotes)')
    .option('--vcek <file>', 'SNP: the VCEK/VLEK certificate (DER or PEM)')
    .option('--chain <file>', 'SNP: ASK/ARK (PEM)')
    .option('--ak-name <hex...>', 'TPM: trust these AK names (pinned)')
    .option('--ak-root <file...>', 'TPM: roots for AK certificate chains (DER)')
    .option('--json', 'print every verified claim as JSON')
    // `verify tpm` has options of the same names: the parent's are only read before it.
    .enablePositionalOptions()
    .action(async (evidence: string | undefined, options: VerifyCliOptions) => {
      if (!evidence) throw new SigilError('cli.usage_evidence', 'give an evidence file, or use `sigil verify tpm` with tpm2-tools files');
      print(await verifyAnyEvidence(readInput(evidence, 'evidence'), await baseOptions(options)), options.json);
    });

  verify
    .command('tpm')
    .description("verify tpm2-tools' quote files (tpm2_quote -m/-s/-o) with a given AK, like tpm2_checkquote")
    .requiredOption('--quote <file>', 'TPMS_ATTEST (tpm2_quote -m)')
    .requiredOption('--sig <file>', 'TPMT_SIGNATURE (tpm2_quote -s)')
    .requiredOption('--pcrs <file>', 'PCR values (tpm2_quote -o, serialized; or -F values)')
    .requiredOption('--ak <file>', 'AK public: PEM, or TPM2B_PUBLIC / TPMT_PUBLIC (tpm2_createak -u)')
    .requiredOption('--nonce <hex>', 'the qualifying data the quote must carry')
    .option('--eventlog <file>', 'binary TCG event log to replay against the quoted PCRs')
    .option('--at <time>', 'verification time; default now')
    .option('--json', 'print every verified claim as JSON')
    .action(async (options: { quote: string; sig: string; pcrs: string; ak: string; nonce: string; eventlog?: string; at?: string; json?: boolean }) => {
      const attest = readInput(options.quote, 'quote');
      const signature = readInput(options.sig, 'signature');
      const quote = parseQuote(attest, signature);
      const pcrBytes = readInput(options.pcrs, 'PCR file');
      const values = pcrBytes.length >= 136 && pcrBytes.length === 136 + new DataView(pcrBytes.buffer, pcrBytes.byteOffset).getUint32(132, true) * 532 ? parseSerializedPcrs(pcrBytes).values : parseConcatenatedPcrs(pcrBytes, quote.attest.attested.pcrSelect);
      const akBytes = readInput(options.ak, 'AK public');
      const pem = new TextDecoder().decode(akBytes);
      // A PEM carries no TPM attributes: like tpm2_checkquote, trust the key as an AK.
      const akPublic = pem.includes('-----BEGIN') ? keyObjectToTpmPublic(createPublicKey(pem), { objectAttributes: AK_ATTRIBUTES, scheme: { scheme: quote.signature.sigAlg, hashAlg: (quote.signature as { hashAlg: number }).hashAlg } }) : parseAkPublic(akBytes);
      const pcrs: Record<string, Record<string, string>> = {};
      for (const [bank, bankValues] of values) pcrs[hashAlg(bank).label] = Object.fromEntries([...bankValues].map(([i, v]) => [String(i), toHex(v)]));
      const bundle = {
        quote: toHex(attest),
        signature: toHex(signature),
        pcrs,
        akPublic: toHex(marshal(TPMT_PUBLIC, akPublic)),
        ...(options.eventlog ? { eventLog: toBase64(readInput(options.eventlog, 'event log')) } : {}),
      };
      const result = await verifyAnyEvidence(new TextEncoder().encode(JSON.stringify(bundle)), {
        kind: 'tpm',
        at: parseAt(options.at),
        nonce: fromHex(options.nonce),
        akTrust: { pinnedAkNames: [toHex(await objectName(akPublic))] },
      });
      print(result, options.json);
    });
}
