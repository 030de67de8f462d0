import { readFileSync } from 'node:fs';
import { SigilError } from '../core/errors.ts';
import { Tpm } from '../tpm/tpm.ts';
import { writePrivateFile } from './key-files.ts';
import { loadVendorTrust, type VendorTrust } from './trust.ts';

/**
 * File and TPM plumbing shared by the `sigil keyset|device|policy|boot` commands, so each
 * command file stays a thin mapping from options to library calls.
 */

/** The keyset passphrase: from --passphrase-file or SIGIL_KEYSET_PASSPHRASE, never from argv (visible in ps). */
export function readPassphrase(file: string | undefined): string | undefined {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new SigilError('cli.usage_passphrase_file', `cannot read the passphrase file ${file}`, { file }, { cause: error });
    }
    const passphrase = text.replace(/\r?\n$/, '');
    if (passphrase.length === 0) throw new SigilError('cli.usage_passphrase_file', `the passphrase file ${file} is empty`);
    return passphrase;
  }
  const env = process.env.SIGIL_KEYSET_PASSPHRASE;
  return env === undefined || env === '' ? undefined : env;
}

export function readInputFile(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path === '-' ? 0 : path));
  } catch (error) {
    throw new SigilError('cli.usage_file', `cannot read the ${what} ${path}`, { path }, { cause: error });
  }
}

export async function readTrust(path: string): Promise<VendorTrust> {
  return loadVendorTrust(readInputFile(path, 'vendor trust bundle'));
}

export function writeJsonFile(path: string, value: unknown): void {
  writePrivateFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

export async function withTpm<T>(uri: string | undefined, use: (tpm: Tpm) => Promise<T>): Promise<T> {
  const tpm = Tpm.open(uri);
  try {
    return await use(tpm);
  } finally {
    await tpm.close();
  }
}

export function parseRelease(text: string): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(value) || value < 1 || value > 0xffffffff) {
    throw new SigilError('cli.usage_release', `"${text}" is not a release number (1-4294967295)`);
  }
  return value;
}
