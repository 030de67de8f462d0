/**
 * Test helpers for event logs: run tpm2_eventlog (tpm2-tools) as an independent replay oracle.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Replayed PCRs as tpm2_eventlog prints them: { sha256: { 0: hex } }. */
export async function tpm2EventlogPcrs(log: Uint8Array): Promise<Record<string, Record<number, string>>> {
  const dir = mkdtempSync(join(tmpdir(), 'sigil-eventlog-'));
  try {
    const path = join(dir, 'log.bin');
    writeFileSync(path, log);
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile('tpm2_eventlog', [path], { maxBuffer: 64 * 1024 * 1024 }, (error, out) => (error ? reject(error) : resolve(out))),
    );
    const out: Record<string, Record<number, string>> = {};
    let bank: string | undefined;
    let inPcrs = false;
    for (const line of stdout.split('\n')) {
      if (line === 'pcrs:') inPcrs = true;
      else if (inPcrs && /^ {2}(\w+):$/.test(line)) out[(bank = line.trim().slice(0, -1))] = {};
      else if (inPcrs && bank) {
        const m = /^ {4}(\d+)\s*: 0x([0-9a-f]+)$/.exec(line);
        if (m) out[bank][Number(m[1])] = m[2];
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
