import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SigilError } from '../core/errors.ts';
import { Tpm } from '../tpm/tpm.ts';
import { seal, selectionFromSpec, unseal, type SealedObject } from '../tpm/tpm-seal.ts';

/**
 * The master key sealed to the host TPM under PolicyPCR: DATA/master-key.sealed.json holds the
 * TPM's encrypted blob (useless on any other TPM, or after the bound PCRs change). First start
 * makes the key and seals it; later starts unseal it.
 */
export async function loadTpmSealedKey(dataDir: string, tpmUri: string, pcrs: string): Promise<Uint8Array> {
  const file = path.join(dataDir, 'master-key.sealed.json');
  const tpm = Tpm.open(tpmUri);
  try {
    if (existsSync(file)) {
      const sealed = JSON.parse(readFileSync(file, 'utf8')) as SealedObject;
      const key = await unseal(tpm, sealed);
      if (key.length !== 32) throw new SigilError('broker.master_key_invalid', 'the TPM-sealed master key is not 32 bytes');
      return key;
    }
    const key = new Uint8Array(randomBytes(32));
    const sealed = await seal(tpm, { secret: key, selection: selectionFromSpec(pcrs) });
    const temporary = `${file}.${process.pid}.tmp`;
    writeFileSync(temporary, JSON.stringify(sealed, null, 2), { mode: 0o600 });
    renameSync(temporary, file);
    return key;
  } finally {
    await tpm.close();
  }
}
