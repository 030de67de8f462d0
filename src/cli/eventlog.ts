import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { banksToJson, isQuirkId, parseTcgEventLog, QUIRKS, replayTcgLog, type QuirkId } from '../eventlog/index.ts';
import { printJson } from './output.ts';

/** `sigil eventlog replay <log>`: the PCR values a TCG event log replays to, like `sigil tpm pcrs`. */
export function registerEventlog(program: Command): void {
  const eventlog = program.command('eventlog').description('TCG PC Client event logs');
  eventlog
    .command('replay')
    .description('replay a binary event log (e.g. /sys/kernel/security/tpm0/binary_bios_measurements)')
    .argument('<log>', 'the binary log file')
    .option('--quirk <ids...>', `accept these documented firmware quirks: ${Object.keys(QUIRKS).join(', ')}`)
    .option('--json', 'print JSON: {"sha256": {"0": "<hex>", ...}}')
    .action(async (path: string, options: { quirk?: string[]; json?: boolean }) => {
      const quirks = (options.quirk ?? []).map((id) => {
        if (!isQuirkId(id)) throw new SigilError('cli.usage_quirk', `unknown quirk "${id}"`);
        return id as QuirkId;
      });
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(readFileSync(path));
      } catch (error) {
        throw new SigilError('env.file_unreadable', `cannot read ${path}`, {}, { cause: error });
      }
      const log = parseTcgEventLog(bytes, { quirks });
      const replay = await replayTcgLog(log);
      const banks = banksToJson(replay.banks);
      if (options.json) printJson(banks);
      else for (const [bank, values] of Object.entries(banks)) for (const [i, v] of Object.entries(values)) console.log(`${bank}:${i.padStart(2)} ${v}`);
    });
}
