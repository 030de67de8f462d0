import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { verifyAuditChain } from '../broker/audit.ts';
import { decodeKeyText, masterKeyFromBytes, readKeyFile, type MasterKey } from '../broker/master-key.ts';
import { openDatabase } from '../broker/store/database.ts';
import { SigilError } from '../core/errors.ts';
import { EXIT, printJson } from './output.ts';
import { defaultDataDir } from './serve.ts';

/** The master key for MAC checks, if one is at hand; never creates one. */
async function findMasterKey(options: { data: string; masterKeyFile?: string; masterKeyTpm?: string; masterKeyPcrs: string }): Promise<MasterKey | undefined> {
  if (process.env.SIGIL_MASTER_KEY) return masterKeyFromBytes(decodeKeyText(process.env.SIGIL_MASTER_KEY), 'env');
  if (options.masterKeyFile) return masterKeyFromBytes(readKeyFile(options.masterKeyFile), 'file');
  if (options.masterKeyTpm) {
    const { loadTpmSealedKey } = await import('../broker/master-key-tpm.ts');
    return masterKeyFromBytes(await loadTpmSealedKey(options.data, options.masterKeyTpm, options.masterKeyPcrs), 'tpm');
  }
  const file = path.join(options.data, 'master.key');
  return existsSync(file) ? masterKeyFromBytes(readKeyFile(file), 'file') : undefined;
}

export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('the broker audit log');
  audit
    .command('verify')
    .description('walk the hash chain: detects edited, deleted and cut-off entries (exit 1 if any)')
    .option('--data <dir>', 'broker data directory', defaultDataDir())
    .option('--db <url>', 'postgres://… (default: SQLite in --data)')
    .option('--master-key-file <file>', 'master key, to check entry MACs too (default: the data directory\'s)')
    .option('--master-key-tpm <uri>', 'unseal the master key with this TPM')
    .option('--master-key-pcrs <spec>', 'PCRs of the TPM-sealed key', 'sha256:7')
    .option('--json', 'print JSON')
    .action(async (options: { data: string; db?: string; masterKeyFile?: string; masterKeyTpm?: string; masterKeyPcrs: string; json?: boolean }) => {
      if (!options.db && !existsSync(path.join(options.data, 'sigil.db'))) {
        throw new SigilError('env.broker_database_missing', `no broker database in ${options.data} (give --data or --db)`);
      }
      const master = await findMasterKey(options);
      const database = await openDatabase({ url: options.db, dataDir: options.data, poolSize: 2 });
      try {
        const result = await verifyAuditChain(database.db, master?.derive('audit-mac'));
        if (options.json) printJson({ ...result, database: database.location });
        else if (result.ok) {
          console.log(`audit chain ok: ${result.entries} entries, 1..${result.lastSeq}, no gap${result.macChecked ? ', every MAC verifies' : ' (MACs not checked: no master key)'}`);
        } else {
          console.log(`audit chain BROKEN: ${result.problems.length} problem(s) in ${result.entries} entries`);
          for (const p of result.problems) console.log(`  entry ${p.seq}: ${p.problem}`);
        }
        process.exitCode = result.ok ? EXIT.ok : EXIT.refused;
      } finally {
        await database.close();
      }
    });
}
