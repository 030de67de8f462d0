import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { toHex } from '../core/hex.ts';

/**
 * TLS on by default: on first start the broker makes a local CA (ECDSA P-256, 10 years) and a
 * server certificate it issues (1 year, renewed at start when it nears expiry or lacks the listen
 * host), both in DATA/tls with private keys at mode 0600. Clients pin the CA (file or
 * fingerprint, printed at start).
 */
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** SHA-256 of the CA certificate's DER, colon-separated hex (as `openssl x509 -fingerprint -sha256`). */
  caFingerprint: string;
  caFile: string;
  created: boolean;
}

const DAY = 24 * 60 * 60 * 1000;

function signingKey(key: KeyObject): CryptoKey {
  return key.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']) as CryptoKey;
}

function publicCryptoKey(key: KeyObject): CryptoKey {
  return key.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['verify']) as CryptoKey;
}

function serial(): string {
  const bytes = new Uint8Array(randomBytes(16));
  bytes[0] &= 0x7f;
  return toHex(bytes);
}

function writePrivate(file: string, text: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  renameSync(temporary, file);
}

export function fingerprint(pem: string): string {
  const der = new X509Certificate(pem).raw;
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

async function createCa(dir: string): Promise<void> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const name = new x509.Name([{ CN: ['Sigil broker local CA'] }, { O: ['Sigil'] }]);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: name,
    issuer: name,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 3650 * DAY),
    publicKey: publicCryptoKey(publicKey),
    signingKey: signingKey(privateKey),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(publicCryptoKey(publicKey)),
    ],
  });
  writePrivate(path.join(dir, 'ca.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  writeFileSync(path.join(dir, 'ca.pem'), `${cert.toString('pem')}\n`);
}

/** Loopback names always; the listen host; on a wildcard listen, this host's name and addresses. */
function serverNames(host: string): { dns: string[]; ips: string[] } {
  const dns = new Set(['localhost']);
  const ips = new Set(['127.0.0.1', '::1']);
  if (host === '0.0.0.0' || host === '::') {
    dns.add(os.hostname());
    for (const addresses of Object.values(os.networkInterfaces())) for (const a of addresses ?? []) if (!a.internal) ips.add(a.address.split('%')[0]);
  } else if (host) (isIP(host) ? ips : dns).add(host);
  return { dns: [...dns], ips: [...ips] };
}

function certificateFits(certPem: string, host: string): boolean {
  const cert = new X509Certificate(certPem);
  if (new Date(cert.validTo).getTime() - Date.now() < 30 * DAY) return false;
  const { dns, ips } = serverNames(host);
  return dns.every((d) => cert.checkHost(d) !== undefined) && ips.every((ip) => cert.checkIP(ip) !== undefined);
}

async function createServerCertificate(dir: string, host: string): Promise<void> {
  const caPem = readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  const caKey = createPrivateKey(readFileSync(path.join(dir, 'ca.key')));
  const ca = new x509.X509Certificate(caPem);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { dns, ips } = serverNames(host);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: new x509.Name([{ CN: [dns.find((d) => d !== 'localhost') ?? 'localhost'] }, { O: ['Sigil'] }]),
    issuer: ca.subjectName,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 365 * DAY),
    publicKey: publicCryptoKey(publicKey),
    signingKey: signingKey(caKey),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([...dns.map((value) => ({ type: 'dns' as const, value })), ...ips.map((value) => ({ type: 'ip' as const, value }))], false),
      await x509.AuthorityKeyIdentifierExtension.create(ca, false),
    ],
  });
  writePrivate(path.join(dir, 'server.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  writeFileSync(path.join(dir, 'server.pem'), `${cert.toString('pem')}\n${caPem}`);
}

/** An operator's own certificate (PEM chain) and key instead of the local CA. */
export function providedTls(certFile: string, keyFile: string): TlsMaterial {
  const certPem = readFileSync(certFile, 'utf8');
  const chain = certPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  const caPem = chain.at(-1) ?? certPem;
  return { caPem, certPem, keyPem: readFileSync(keyFile, 'utf8'), caFingerprint: fingerprint(caPem), caFile: certFile, created: false };
}

export async function ensureTls(dataDir: string, host: string): Promise<TlsMaterial> {
  const dir = path.join(dataDir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let created = false;
  if (!existsSync(path.join(dir, 'ca.pem')) || !existsSync(path.join(dir, 'ca.key'))) {
    await createCa(dir);
    created = true;
  }
  const certFile = path.join(dir, 'server.pem');
  if (created || !existsSync(certFile) || !existsSync(path.join(dir, 'server.key')) || !certificateFits(readFileSync(certFile, 'utf8'), host)) {
    await createServerCertificate(dir, host);
  }
  const caPem = readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  return {
    caPem,
    certPem: readFileSync(certFile, 'utf8'),
    keyPem: readFileSync(path.join(dir, 'server.key'), 'utf8'),
    caFingerprint: fingerprint(caPem),
    caFile: path.join(dir, 'ca.pem'),
    created,
  };
}
