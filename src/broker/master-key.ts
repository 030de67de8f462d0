import { createCipheriv, createDecipheriv, createHash, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { constants, existsSync, openSync, readFileSync, statSync, writeFileSync, closeSync } from 'node:fs';
import path from 'node:path';
import { SigilError } from '../core/errors.ts';
import { fromHex } from '../core/hex.ts';

/**
 * The broker master key (32 bytes) protects everything secret at rest: resource values, the EAR
 * signing key, webhook secrets (envelope encryption: a fresh data key per value, wrapped with a
 * key derived from the master key), and keys the audit MACs. It comes from, in order:
 *   SIGIL_MASTER_KEY (hex or base64), a key file (mode 0600 enforced), a blob sealed to the host
 *   TPM (master-key.sealed.json in the data directory), or DATA/master.key created on first start.
 */
export interface MasterKey {
  /** Public identifier: the first 16 hex digits of SHA-256("sigil master key id" ‖ key). */
  readonly id: string;
  readonly source: 'env' | 'file' | 'tpm';
  /** HKDF-SHA256 subkey for a purpose ("envelope", "audit-mac", …). */
  derive(purpose: string): Buffer;
}

export function masterKeyFromBytes(key: Uint8Array, source: MasterKey['source']): MasterKey {
  if (key.length !== 32) throw new SigilError('broker.master_key_invalid', `the master key must be 32 bytes, not ${key.length}`);
  const secret = Buffer.from(key);
  const id = createHash('sha256').update('sigil master key id').update(secret).digest('hex').slice(0, 16);
  const cache = new Map<string, Buffer>();
  return {
    id,
    source,
    derive(purpose) {
      let sub = cache.get(purpose);
      if (!sub) {
        sub = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `sigil ${purpose} v1`, 32));
        cache.set(purpose, sub);
      }
      return sub;
    },
  };
}

export function decodeKeyText(text: string): Uint8Array {
  const clean = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(clean)) return fromHex(clean);
  const bytes = Buffer.from(clean, 'base64');
  if (bytes.length === 32) return new Uint8Array(bytes);
  throw new SigilError('broker.master_key_invalid', 'the master key must be 32 bytes as 64 hex digits or base64');
}

export function readKeyFile(file: string): Uint8Array {
  const stat = statSync(file);
  if ((stat.mode & 0o077) !== 0) {
    throw new SigilError('broker.master_key_permissions', `${file} is readable by group or others (mode ${(stat.mode & 0o777).toString(8)}): chmod 600 it`, { file });
  }
  const raw = readFileSync(file);
  return raw.length === 32 ? new Uint8Array(raw) : decodeKeyText(raw.toString('utf8'));
}

/** Create a key file atomically with O_EXCL, so two replicas starting together cannot both write one. */
export function createKeyFile(file: string): Uint8Array | undefined {
  const key = new Uint8Array(randomBytes(32));
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw error;
  }
  try {
    writeFileSync(fd, Buffer.from(key).toString('hex') + '\n');
  } finally {
    closeSync(fd);
  }
  return key;
}

export interface MasterKeyOptions {
  dataDir: string;
  file?: string;
  /** A TPM URI (swtpm://…, device:///dev/tpmrm0) to seal the master key to. */
  tpm?: string;
  /** PCR selection the sealed key is bound to, e.g. "sha256:7"; default none is not allowed: "sha256:7". */
  tpmPcrs?: string;
  env?: NodeJS.ProcessEnv;
}

export async function loadMasterKey(options: MasterKeyOptions): Promise<MasterKey> {
  const envValue = (options.env ?? process.env).SIGIL_MASTER_KEY;
  if (envValue) return masterKeyFromBytes(decodeKeyText(envValue), 'env');
  if (options.file) {
    if (!existsSync(options.file)) throw new SigilError('broker.master_key_missing', `master key file ${options.file} does not exist`, { file: options.file });
    return masterKeyFromBytes(readKeyFile(options.file), 'file');
  }
  if (options.tpm) {
    const { loadTpmSealedKey } = await import('./master-key-tpm.ts');
    return masterKeyFromBytes(await loadTpmSealedKey(options.dataDir, options.tpm, options.tpmPcrs ?? 'sha256:7'), 'tpm');
  }
  const file = path.join(options.dataDir, 'master.key');
  const created = createKeyFile(file);
  return masterKeyFromBytes(created ?? readKeyFile(file), 'file');
}

/**
 * Envelope: { v, kek, dek, iv, ct } (base64). dek = AES-256-GCM(KEK, data key) with its own IV
 * and tag; ct = AES-256-GCM(data key, value) with `aad` bound (tenant/path), so a value copied to
 * another row fails to open.
 */
export interface Envelope {
  v: 1;
  kek: string;
  dek: string;
  iv: string;
  ct: string;
}

/** The envelope KEK as a KeyObject, made once: AES with a raw key builds a KeyObject per call. */
const kekObjects = new WeakMap<Buffer, KeyObject>();

function kek(master: MasterKey): KeyObject {
  const raw = master.derive('envelope');
  let key = kekObjects.get(raw);
  if (!key) kekObjects.set(raw, (key = createSecretKey(raw)));
  return key;
}

/** Raw keys become KeyObjects first: Node 24 spends ~8 µs per cipher doing it implicitly otherwise. */
const asKey = (key: Buffer | KeyObject): KeyObject => (Buffer.isBuffer(key) ? createSecretKey(key) : key);

function seal(key: Buffer | KeyObject, plaintext: Uint8Array, aad: string): { iv: Buffer; ct: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', asKey(key), iv);
  cipher.setAAD(Buffer.from(aad));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return { iv, ct };
}

function open(key: Buffer | KeyObject, iv: Buffer, sealed: Buffer, aad: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', asKey(key), iv);
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

export function encryptEnvelope(master: MasterKey, plaintext: Uint8Array, aad: string): string {
  const dataKey = randomBytes(32);
  const wrapped = seal(kek(master), dataKey, `dek|${aad}`);
  const body = seal(dataKey, plaintext, aad);
  dataKey.fill(0);
  const envelope: Envelope = {
    v: 1,
    kek: master.id,
    dek: Buffer.concat([wrapped.iv, wrapped.ct]).toString('base64'),
    iv: body.iv.toString('base64'),
    ct: body.ct.toString('base64'),
  };
  return JSON.stringify(envelope);
}

export function decryptEnvelope(master: MasterKey, text: string, aad: string): Uint8Array {
  let envelope: Envelope;
  try {
    envelope = JSON.parse(text) as Envelope;
  } catch {
    throw new SigilError('broker.envelope_invalid', 'a stored secret is not an envelope');
  }
  if (envelope.kek !== master.id) {
    throw new SigilError('broker.master_key_mismatch', 'a stored secret was encrypted under another master key', { expected: envelope.kek, actual: master.id });
  }
  try {
    const dek = Buffer.from(envelope.dek, 'base64');
    const dataKey = open(kek(master), dek.subarray(0, 12), dek.subarray(12), `dek|${aad}`);
    const value = new Uint8Array(open(dataKey, Buffer.from(envelope.iv, 'base64'), Buffer.from(envelope.ct, 'base64'), aad));
    dataKey.fill(0);
    return value;
  } catch (error) {
    throw new SigilError('broker.envelope_invalid', 'a stored secret failed its integrity check (tampered, or moved to another row)', {}, { cause: error });
  }
}
