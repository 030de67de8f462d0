import { createCipheriv, createPrivateKey, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SigilError } from '../core/errors.ts';
import { toBase64 } from '../core/hex.ts';
import { integer, objectIdentifier, octetString, sequence } from './der.ts';

/**
 * Vendor private keys on disk: PKCS#8 PEM, mode 0600, in folders of mode 0700.
 *
 * Unencrypted: "-----BEGIN PRIVATE KEY-----" (RFC 5208 PrivateKeyInfo).
 * Encrypted:   "-----BEGIN ENCRYPTED PRIVATE KEY-----" (RFC 5208 EncryptedPrivateKeyInfo) with
 *              PBES2 (RFC 8018): key derivation scrypt (RFC 7914 section 7; N=16384, r=8, p=1,
 *              16-byte random salt, 32-byte key) and AES-256-CBC (random 16-byte IV). That is what
 *              `openssl pkcs8 -topk8 -scrypt -v2 aes-256-cbc` writes, so OpenSSL reads these files too.
 * node:crypto's own PKCS#8 encryption only offers PBKDF2 with OpenSSL's 2048 iterations, so the
 * wrapping is done here and only the reading is left to OpenSSL.
 */

const SCRYPT = { N: 16384, r: 8, p: 1 } as const;
const OID_PBES2 = '1.2.840.113549.1.5.13';
const OID_SCRYPT = '1.3.6.1.4.1.11591.4.11';
const OID_AES256_CBC = '2.16.840.1.101.3.4.1.42';

function pem(label: string, der: Uint8Array): string {
  const body = toBase64(der).replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;
}

/** PKCS#8 PEM of a private key, encrypted under `passphrase` when one is given. */
export function privateKeyPem(privateKey: KeyObject, passphrase?: string): string {
  if (privateKey.type !== 'private') throw new SigilError('keyset.key_invalid', 'only private keys are written to key files');
  const plain = new Uint8Array(privateKey.export({ type: 'pkcs8', format: 'der' }));
  if (passphrase === undefined) return pem('PRIVATE KEY', plain);
  if (passphrase.length === 0) throw new SigilError('keyset.passphrase_empty', 'an empty passphrase protects nothing; omit it to write an unencrypted key');
  const salt = new Uint8Array(randomBytes(16));
  const iv = new Uint8Array(randomBytes(16));
  const key = scryptSync(passphrase, salt, 32, { ...SCRYPT, maxmem: 64 * 1024 * 1024 });
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  const encrypted = new Uint8Array(Buffer.concat([cipher.update(plain), cipher.final()]));
  key.fill(0);
  const der = sequence(
    sequence(
      objectIdentifier(OID_PBES2),
      sequence(
        sequence(objectIdentifier(OID_SCRYPT), sequence(octetString(salt), integer(SCRYPT.N), integer(SCRYPT.r), integer(SCRYPT.p))),
        sequence(objectIdentifier(OID_AES256_CBC), octetString(iv)),
      ),
    ),
    octetString(encrypted),
  );
  return pem('ENCRYPTED PRIVATE KEY', der);
}

/** Parse a key file's text; an encrypted key needs its passphrase. */
export function parsePrivateKeyPem(text: string, passphrase?: string, where = 'key file'): KeyObject {
  const encrypted = text.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
  if (!encrypted && !text.includes('-----BEGIN PRIVATE KEY-----')) {
    throw new SigilError('keyset.key_invalid', `${where} is not a PKCS#8 PEM private key`, { where });
  }
  if (encrypted && passphrase === undefined) {
    throw new SigilError('keyset.passphrase_required', `${where} is encrypted: give its passphrase (--passphrase-file or SIGIL_KEYSET_PASSPHRASE)`, { where });
  }
  try {
    return createPrivateKey(encrypted ? { key: text, format: 'pem', passphrase: passphrase! } : { key: text, format: 'pem' });
  } catch (error) {
    if (encrypted) throw new SigilError('keyset.passphrase_wrong', `the passphrase does not open ${where}`, { where }, { cause: error });
    throw new SigilError('keyset.key_invalid', `${where} holds no usable private key`, { where }, { cause: error });
  }
}

export function writeKeyFile(path: string, privateKey: KeyObject, passphrase?: string): void {
  writePrivateFile(path, privateKeyPem(privateKey, passphrase), { exclusive: true });
}

export function readKeyFile(path: string, passphrase?: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new SigilError('keyset.file_missing', `cannot read key file ${path}`, { path }, { cause: error });
  }
  return parsePrivateKeyPem(text, passphrase, path);
}

/**
 * Write a file only its owner can read. `exclusive` refuses to overwrite, so a second
 * `keyset create` into the same folder cannot silently replace a vendor's keys.
 */
export function writePrivateFile(path: string, data: Uint8Array | string, options: { exclusive?: boolean } = {}): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, data, { mode: 0o600, flag: options.exclusive ? 'wx' : 'w' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new SigilError('keyset.file_exists', `${path} exists; refusing to overwrite it`, { path });
    throw new SigilError('env.file_write_failed', `cannot write ${path}`, { path }, { cause: error });
  }
  // The mode given to writeFileSync only applies to new files and is masked by the umask.
  chmodSync(path, 0o600);
}
