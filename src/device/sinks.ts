import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync } from 'node:fs';
import { SigilError } from '../core/errors.ts';
import { writePrivateFile } from './key-files.ts';
import { checkSecretName } from './sealed-secrets.ts';

/**
 * Where an unsealed secret goes (`sigil boot unseal --sink NAME=SINK`):
 *   stdout              the raw bytes on standard output (one secret per call makes sense)
 *   file:/run/disk.key  a file of mode 0600 (a new file renamed over any existing one)
 *   keyring[:DESC]      the kernel user keyring: `keyctl padd user DESC @u`, the secret on stdin
 *                       (never in argv); DESC defaults to "sigil:NAME"; prints nothing secret
 * Secrets never go to logs or JSON output; --json reports only where each went.
 */
export type Sink = { kind: 'stdout' } | { kind: 'file'; path: string } | { kind: 'keyring'; description: string };

export function parseSink(spec: string): { name: string; sink: Sink } {
  const at = spec.indexOf('=');
  if (at <= 0) throw new SigilError('cli.usage_sink', `"${spec}" is not NAME=stdout, NAME=file:PATH or NAME=keyring[:DESCRIPTION]`);
  const name = checkSecretName(spec.slice(0, at));
  const target = spec.slice(at + 1);
  if (target === 'stdout') return { name, sink: { kind: 'stdout' } };
  if (target.startsWith('file:') && target.length > 5) return { name, sink: { kind: 'file', path: target.slice(5) } };
  if (target === 'keyring') return { name, sink: { kind: 'keyring', description: `sigil:${name}` } };
  if (target.startsWith('keyring:') && /^[\x21-\x7e]{1,200}$/.test(target.slice(8))) return { name, sink: { kind: 'keyring', description: target.slice(8) } };
  throw new SigilError('cli.usage_sink', `"${target}" is not stdout, file:PATH or keyring[:DESCRIPTION]`);
}

/** Add a secret to the user keyring with keyctl; returns the key's serial number. */
export function addToKeyring(description: string, secret: Uint8Array, keyctl = 'keyctl'): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(keyctl, ['padd', 'user', description, '@u'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(new SigilError('env.keyring_unavailable', 'the kernel keyring sink needs keyctl (Debian package keyutils), which is not installed', { keyctl }));
      } else reject(new SigilError('env.keyring_unavailable', `keyctl could not run: ${error.message}`, { keyctl }, { cause: error }));
    });
    child.on('close', (code) => {
      if (code === 0) resolve(out.trim());
      else reject(new SigilError('env.keyring_unavailable', `keyctl padd failed: ${err.trim() || `exit ${code}`}`, { keyctl }));
    });
    child.stdin.on('error', () => undefined); // keyctl missing: 'error' above reports it
    child.stdin.end(Buffer.from(secret));
  });
}

/**
 * Check keyctl runs before unsealing: the boot's one unseal attempt must not be spent on secrets
 * that then have nowhere to go.
 */
export function assertKeyringAvailable(keyctl = 'keyctl'): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(keyctl, ['--version'], { stdio: 'ignore' });
    child.on('error', (error: NodeJS.ErrnoException) =>
      reject(new SigilError('env.keyring_unavailable', error.code === 'ENOENT' ? 'the kernel keyring sink needs keyctl (Debian package keyutils), which is not installed' : `keyctl could not run: ${error.message}`, { keyctl })),
    );
    child.on('close', () => resolve());
  });
}

export interface Delivery {
  name: string;
  sink: Sink['kind'];
  /** The file path or keyring key serial; nothing for stdout. */
  where?: string;
}

export async function deliverSecret(name: string, secret: Uint8Array, sink: Sink, stdout: { write(data: Uint8Array): unknown } = process.stdout): Promise<Delivery> {
  switch (sink.kind) {
    case 'stdout':
      stdout.write(secret);
      return { name, sink: 'stdout' };
    case 'file': {
      // A fresh 0600 file renamed into place: an existing, wider-permission file never holds the secret.
      const temporary = `${sink.path}.${randomBytes(6).toString('hex')}.tmp`;
      writePrivateFile(temporary, secret, { exclusive: true });
      try {
        renameSync(temporary, sink.path);
      } catch (error) {
        rmSync(temporary, { force: true });
        throw new SigilError('env.file_write_failed', `cannot write ${sink.path}`, { path: sink.path }, { cause: error });
      }
      return { name, sink: 'file', where: sink.path };
    }
    case 'keyring':
      return { name, sink: 'keyring', where: await addToKeyring(sink.description, secret) };
  }
}
