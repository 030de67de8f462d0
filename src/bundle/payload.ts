import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { fromBase64, fromHex, toBase64, toHex } from '../core/hex.ts';
import { field, parseJsonObject } from '../device/json-input.ts';
import { checkSecretName } from '../device/sealed-secrets.ts';
import { MAX_PAYLOAD } from './bundle-format.ts';

/**
 * What a bundle protects, encrypted under its data key (AES-256-GCM, 12-byte IV, 16-byte tag):
 *
 *   { "integrity": { "algorithm": "sha256", "kernel": hex, "initrd": hex, "cmdline": hex },
 *     "secrets": { "<name>": base64, … } }
 *
 * Each integrity digest is optional (at least one is required); a device opening the bundle must
 * present every artefact the bundle names, and each must hash to its digest. The cmdline digest is
 * SHA-256 of the UTF-8 command line with trailing newlines and NULs removed, so the text given and
 * /proc/cmdline hash alike.
 */
export const ARTEFACTS = ['kernel', 'initrd', 'cmdline'] as const;
export type ArtefactName = (typeof ARTEFACTS)[number];
export type IntegrityDigests = Partial<Record<ArtefactName, Uint8Array>>;

export interface Artefacts {
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  cmdline?: string;
}

export interface BundlePayload {
  integrity: IntegrityDigests;
  secrets: Map<string, Uint8Array>;
}

const PAYLOAD_CODE = 'bundle.payload_tampered';

export function normalizeCmdline(cmdline: string): string {
  return cmdline.replace(/[\n\0]+$/, '');
}

function artefactBytes(name: ArtefactName, artefacts: Artefacts): Uint8Array | undefined {
  if (name === 'cmdline') return artefacts.cmdline === undefined ? undefined : new TextEncoder().encode(normalizeCmdline(artefacts.cmdline));
  return artefacts[name];
}

/** SHA-256 of each artefact given: what `bundle seal` records. */
export function artefactDigests(artefacts: Artefacts): IntegrityDigests {
  const out: IntegrityDigests = {};
  for (const name of ARTEFACTS) {
    const bytes = artefactBytes(name, artefacts);
    if (bytes !== undefined) out[name] = new Uint8Array(createHash('sha256').update(bytes).digest());
  }
  return out;
}

/**
 * Every digest the bundle holds must be matched by the artefact the device is about to boot.
 * Returns the names checked; refuses naming each missing or differing artefact.
 */
export function checkArtefacts(integrity: IntegrityDigests, artefacts: Artefacts): ArtefactName[] {
  const actual = artefactDigests(artefacts);
  const missing = ARTEFACTS.filter((name) => integrity[name] && !actual[name]);
  if (missing.length > 0) {
    throw new SigilError('bundle.artefact_missing', `the bundle checks the ${missing.join(', ')} but none was given to compare`, { missing });
  }
  const differing = ARTEFACTS.filter((name) => integrity[name] && !constantTimeEqual(integrity[name], actual[name]!));
  if (differing.length > 0) {
    throw new SigilError('bundle.integrity_mismatch', `the ${differing.join(', ')} differ${differing.length === 1 ? 's' : ''} from what the bundle was sealed for: refusing to release its secrets`, {
      differing: differing.map((name) => ({ artefact: name, expected: toHex(integrity[name]!), actual: toHex(actual[name]!) })),
    });
  }
  return ARTEFACTS.filter((name) => integrity[name]);
}

export function checkPayloadInput(integrity: IntegrityDigests, secrets: Map<string, Uint8Array>): void {
  if (!ARTEFACTS.some((name) => integrity[name])) throw new SigilError('bundle.integrity_missing', 'a bundle names at least one of kernel, initrd, cmdline to check');
  for (const name of ARTEFACTS) {
    if (integrity[name] && integrity[name].length !== 32) throw new SigilError('bundle.integrity_missing', `the ${name} digest must be 32 bytes (SHA-256)`);
  }
  if (secrets.size === 0) throw new SigilError('bundle.secrets_empty', 'give at least one secret to seal');
  for (const name of secrets.keys()) checkSecretName(name);
}

export function encodePayload(payload: BundlePayload): Uint8Array {
  checkPayloadInput(payload.integrity, payload.secrets);
  const integrity: Record<string, string> = { algorithm: 'sha256' };
  for (const name of ARTEFACTS) if (payload.integrity[name]) integrity[name] = toHex(payload.integrity[name]);
  const secrets = Object.fromEntries([...payload.secrets].map(([name, value]) => [name, toBase64(value)]));
  const bytes = new TextEncoder().encode(JSON.stringify({ integrity, secrets }));
  if (bytes.length > MAX_PAYLOAD) throw new SigilError('bundle.secrets_too_large', `the secrets exceed ${MAX_PAYLOAD} bytes`);
  return bytes;
}

export function decodePayload(bytes: Uint8Array): BundlePayload {
  const doc = parseJsonObject(bytes, PAYLOAD_CODE, 'bundle payload');
  const integrityDoc = field(doc, 'integrity', 'object', PAYLOAD_CODE);
  if (integrityDoc.algorithm !== 'sha256') throw new SigilError(PAYLOAD_CODE, 'the bundle payload names an unknown digest algorithm');
  const integrity: IntegrityDigests = {};
  for (const name of ARTEFACTS) {
    const value = integrityDoc[name];
    if (value === undefined) continue;
    if (typeof value !== 'string' || !/^[0-9a-f]{64}$/.test(value)) throw new SigilError(PAYLOAD_CODE, `the ${name} digest in the payload is malformed`);
    integrity[name] = fromHex(value);
  }
  const secretsDoc = field(doc, 'secrets', 'object', PAYLOAD_CODE);
  const secrets = new Map<string, Uint8Array>();
  for (const name of Object.keys(secretsDoc)) secrets.set(checkSecretName(name), fromBase64(field(secretsDoc, name, 'string', PAYLOAD_CODE)));
  checkPayloadInput(integrity, secrets);
  return { integrity, secrets };
}

export function encryptPayload(dataKey: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): { iv: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array } {
  const iv = new Uint8Array(randomBytes(12));
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
  cipher.setAAD(aad);
  const ciphertext = new Uint8Array(Buffer.concat([cipher.update(plaintext), cipher.final()]));
  return { iv, ciphertext, tag: new Uint8Array(cipher.getAuthTag()) };
}

export function decryptPayload(dataKey: Uint8Array, payload: { iv: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array }, aad: Uint8Array): Uint8Array {
  try {
    const decipher = createDecipheriv('aes-256-gcm', dataKey, payload.iv);
    decipher.setAAD(aad);
    decipher.setAuthTag(payload.tag);
    return new Uint8Array(Buffer.concat([decipher.update(payload.ciphertext), decipher.final()]));
  } catch (error) {
    throw new SigilError(
      PAYLOAD_CODE,
      'the bundle payload does not decrypt with this data key for this bundle ID, epoch and recipient list: the bundle was altered, or the key belongs to another bundle',
      {},
      { cause: error },
    );
  }
}
