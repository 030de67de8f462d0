/**
 * `sigil verity format|verify|dump`: mirrors `veritysetup` (same options, same report lines, same
 * hash file), plus `--json` and a progress bar on stderr when it is a terminal.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { fromHex, toHex } from '../core/hex.ts';
import { isVerityHash, SUPERBLOCK_SIZE, type VerityHash } from '../image/verity/params.ts';
import { printJson } from './output.ts';

// Loaded when a verity command runs, so other `sigil` commands do not pay for parsing them.
const load = {
  format: () => import('../image/verity/format.ts'),
  verify: () => import('../image/verity/verify.ts'),
  openParams: () => import('../image/verity/open-params.ts'),
  superblock: () => import('../image/verity/superblock.ts'),
};

interface VerityCliOptions {
  salt?: string;
  hash?: string;
  dataBlockSize?: string;
  hashBlockSize?: string;
  dataBlocks?: string;
  superblock: boolean;
  hashOffset?: string;
  uuid?: string;
  rootHashFile?: string;
  threads?: string;
  json?: boolean;
}

export function parseCount(text: string | undefined, what: string): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw new SigilError('cli.usage_number', `${what} "${text}" is not a whole number`, { [what]: text });
  return value;
}

function parseSalt(text: string | undefined): Uint8Array | undefined {
  if (text === undefined) return undefined;
  return text === '-' ? new Uint8Array(0) : fromHex(text);
}

function parseHash(text: string | undefined): VerityHash | undefined {
  if (text === undefined) return undefined;
  const lower = text.toLowerCase();
  if (!isVerityHash(lower)) throw new SigilError('cli.usage_hash', `hash "${text}" is not supported (sha256, sha512)`, { hash: text });
  return lower;
}

const MIB = 1024 * 1024;

/** A one-line progress bar (bytes, rate, ETA) on stderr, only when stderr is a terminal. */
export function progressBar(label: string, enabled = process.stderr.isTTY === true): ((done: number, total: number) => void) & { finish(): void } {
  const start = performance.now();
  let shown = false;
  let last = 0;
  const update = (done: number, total: number) => {
    const now = performance.now();
    if (!enabled || (now - last < 100 && done < total)) return;
    last = now;
    shown = true;
    const seconds = (now - start) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? (total - done) / rate : 0;
    const pct = total > 0 ? Math.floor((100 * done) / total) : 100;
    const width = 24;
    const filled = Math.round((width * pct) / 100);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${(done / MIB).toFixed(0)}/${(total / MIB).toFixed(0)} MiB ${(rate / MIB).toFixed(0)} MiB/s ETA ${eta.toFixed(0)}s `);
  };
  return Object.assign(update, {
    finish() {
      if (shown) process.stderr.write('\n');
    },
  });
}

function openOptions(options: VerityCliOptions) {
  return {
    superblock: options.superblock,
    hashOffset: parseCount(options.hashOffset, 'hash-offset'),
    hash: parseHash(options.hash),
    dataBlockSize: parseCount(options.dataBlockSize, 'data-block-size'),
    hashBlockSize: parseCount(options.hashBlockSize, 'hash-block-size'),
    dataBlocks: parseCount(options.dataBlocks, 'data-blocks'),
    salt: parseSalt(options.salt),
    threads: parseCount(options.threads, 'threads'),
  };
}

function common(cmd: Command): Command {
  return cmd
    .option('--hash <name>', 'hash algorithm: sha256 (default) or sha512')
    .option('--salt <hex>', 'salt in hex, "-" for none (format default: 32 random bytes)')
    .option('--data-block-size <bytes>', 'data block size (default 4096)')
    .option('--hash-block-size <bytes>', 'hash block size (default 4096)')
    .option('--data-blocks <n>', 'data blocks to cover (default: the whole data file)')
    .option('--no-superblock', 'no verity superblock in the hash file')
    .option('--hash-offset <bytes>', 'offset of the hash area in the hash file (a multiple of 512)')
    .option('--root-hash-file <path>', 'format: write the root hash there; verify: read it from there')
    .option('--threads <n>', 'threads hashing the data (default: every core)')
    .option('--json', 'print JSON');
}

export function registerVerity(program: Command): void {
  const verity = program.command('verity').description('dm-verity hash trees, byte-identical to veritysetup');

  common(verity.command('format').description('build the hash tree of <data> into <hash> (veritysetup format)'))
    .argument('<data>', 'data file or device')
    .argument('<hash>', 'hash file (may be <data> with --hash-offset past the data)')
    .option('--uuid <uuid>', 'UUID for the superblock (default: random)')
    .action(async (data: string, hash: string, options: VerityCliOptions) => {
      const progress = progressBar('verity format', !options.json && process.stderr.isTTY === true);
      const parsed = openOptions(options);
      const { formatReport, formatVerity } = await load.format();
      const result = await formatVerity(data, hash, { ...parsed, salt: parsed.salt, uuid: options.uuid, onProgress: progress });
      progress.finish();
      if (options.rootHashFile) writeFileSync(options.rootHashFile, toHex(result.rootHash), { mode: 0o600 });
      if (options.json) {
        const { params, geometry } = result;
        printJson({
          rootHash: toHex(result.rootHash),
          uuid: result.uuid ?? null,
          hashType: 1,
          hash: params.hash,
          dataBlocks: params.dataBlocks,
          dataBlockSize: params.dataBlockSize,
          hashBlocks: geometry.hashBlocks,
          hashBlockSize: params.hashBlockSize,
          salt: toHex(params.salt),
          superblock: params.superblock,
          hashOffset: params.hashOffset,
          hashDeviceSize: geometry.hashFileEnd,
          uncoveredBytes: result.uncoveredBytes,
        });
      } else {
        process.stdout.write(formatReport(hash, result));
        if (result.uncoveredBytes > 0) process.stderr.write(`sigil: warning: the last ${result.uncoveredBytes} bytes of ${data} are not a whole block and are not protected\n`);
      }
    });

  common(verity.command('verify').description('check <data> and <hash> against <root> (veritysetup verify); exit 0 valid, 1 not'))
    .argument('<data>', 'data file or device')
    .argument('<hash>', 'hash file')
    .argument('[root]', 'root hash in hex (or --root-hash-file)')
    .action(async (data: string, hash: string, root: string | undefined, options: VerityCliOptions) => {
      const rootText = root ?? (options.rootHashFile ? readFileSync(options.rootHashFile, 'utf8').trim() : undefined);
      if (!rootText) throw new SigilError('cli.usage_root', 'give the root hash or --root-hash-file');
      const progress = progressBar('verity verify', !options.json && process.stderr.isTTY === true);
      const result = await (await load.verify()).verifyVerity(data, hash, rootText, { ...openOptions(options), onProgress: progress });
      progress.finish();
      if (options.json) printJson({ valid: true, rootHash: toHex(result.rootHash), dataBlocks: result.params.dataBlocks, hash: result.params.hash });
      else console.log(`verified ${result.params.dataBlocks} data blocks against root hash ${toHex(result.rootHash)}`);
    });

  verity
    .command('dump')
    .description('print the superblock of <hash> (veritysetup dump)')
    .argument('<hash>', 'hash file')
    .option('--hash-offset <bytes>', 'offset of the superblock')
    .option('--json', 'print JSON')
    .action(async (hash: string, options: { hashOffset?: string; json?: boolean }) => {
      const { readAt } = await load.openParams();
      const sb = (await load.superblock()).parseSuperblock(readAt(hash, parseCount(options.hashOffset, 'hash-offset') ?? 0, SUPERBLOCK_SIZE));
      if (options.json) printJson({ ...sb, salt: toHex(sb.salt) });
      else {
        console.log(`UUID:            \t${sb.uuid}\nHash type:       \t${sb.hashType}\nData blocks:     \t${sb.dataBlocks}\nData block size: \t${sb.dataBlockSize}`);
        console.log(`Hash block size: \t${sb.hashBlockSize}\nHash algorithm:  \t${sb.hash}\nSalt:            \t${sb.salt.length ? toHex(sb.salt) : '-'}`);
      }
    });
}
