import { concatBytes, utf8 } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { toHex } from '../../core/hex.ts';

/**
 * IMA template fields (Linux Documentation/security/IMA-templates.rst and
 * security/integrity/ima/ima_template_lib.c). In the binary list and in the template hash every
 * field is a u32 length followed by its data, except for the original "ima" template:
 *
 *   d-ng    "<algo>:\0" + digest          (ima-ng, ima-sig, ima-buf, ima-modsig)
 *   d-ngv2  "<ima|verity>:<algo>:\0" + digest (ima-ngv2, ima-sigv2)
 *   n-ng    path + "\0"
 *   sig     the security.ima xattr (may be empty)
 *   buf     the measured buffer (ima-buf)
 *   d, n    "ima" template: a bare SHA-1 digest, and the name; its template hash is
 *           SHA-1(digest || name zero-padded to IMA_EVENT_NAME_LEN_MAX + 1 = 256 bytes)
 */
export const TEMPLATES: Record<string, string[]> = {
  ima: ['d', 'n'],
  'ima-ng': ['d-ng', 'n-ng'],
  'ima-sig': ['d-ng', 'n-ng', 'sig'],
  'ima-ngv2': ['d-ngv2', 'n-ng'],
  'ima-sigv2': ['d-ngv2', 'n-ng', 'sig'],
  'ima-buf': ['d-ng', 'n-ng', 'buf'],
  'ima-modsig': ['d-ng', 'n-ng', 'sig', 'd-modsig', 'modsig'],
};

export const IMA_EVENT_NAME_LEN_MAX = 255;

const HASH_SIZES: Record<string, number> = { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64, sm3: 32, 'sha3-256': 32, 'sha3-384': 48, 'sha3-512': 64, 'streebog256': 32, 'streebog512': 64 };

export interface FileDigest {
  /** "ima" or "verity" for d-ngv2; undefined for d-ng and d. */
  type?: string;
  alg: string;
  digest: string;
}

export interface ImaFields {
  fileDigest?: FileDigest;
  path?: string;
  signature?: string;
  buffer?: string;
}

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError('ima.template_invalid', message, details);
}

/** Decode "<prefix>:\0<digest>" (d-ng) or "<type>:<algo>:\0<digest>" (d-ngv2). */
export function decodeDigestField(data: Uint8Array, v2: boolean): FileDigest {
  const nul = data.indexOf(0);
  if (nul < 2 || data[nul - 1] !== 0x3a) fail('a d-ng field has no "<algo>:\\0" prefix');
  const prefix = utf8.decode(data.subarray(0, nul - 1));
  const parts = prefix.split(':');
  if (parts.length !== (v2 ? 2 : 1)) fail(`d-ng prefix "${prefix}"`);
  const alg = parts[parts.length - 1];
  const digest = data.subarray(nul + 1);
  if (HASH_SIZES[alg] !== undefined && HASH_SIZES[alg] !== digest.length) fail(`a ${alg} file digest of ${digest.length} bytes`);
  return { type: v2 ? parts[0] : undefined, alg, digest: toHex(digest) };
}

export function encodeDigestField(file: FileDigest, digest: Uint8Array): Uint8Array {
  const prefix = file.type ? `${file.type}:${file.alg}:` : `${file.alg}:`;
  return concatBytes(utf8.encode(prefix), new Uint8Array([0]), digest);
}

/** Interpret the fields of a known template; unknown templates keep their raw fields only. */
export function interpretFields(template: string, fields: Uint8Array[]): ImaFields {
  const names = TEMPLATES[template];
  if (!names) return {};
  if (names.length !== fields.length) fail(`template ${template} needs ${names.length} fields, the entry has ${fields.length}`);
  const out: ImaFields = {};
  names.forEach((name, i) => {
    const data = fields[i];
    switch (name) {
      case 'd':
        if (data.length !== 20) fail(`an "ima" template digest of ${data.length} bytes`);
        out.fileDigest = { alg: 'sha1', digest: toHex(data) };
        break;
      case 'd-ng':
      case 'd-ngv2':
        out.fileDigest = decodeDigestField(data, name === 'd-ngv2');
        break;
      case 'n':
        out.path = utf8.decode(data);
        break;
      case 'n-ng':
        if (data.length === 0 || data[data.length - 1] !== 0) fail('an n-ng name without its NUL terminator');
        out.path = utf8.decode(data.subarray(0, data.length - 1));
        break;
      case 'sig':
        if (data.length) out.signature = toHex(data);
        break;
      case 'buf':
        out.buffer = toHex(data);
        break;
    }
  });
  return out;
}

/** The bytes the template hash covers (see the file comment). */
export function templateHashInput(template: string, fields: Uint8Array[]): Uint8Array {
  if (template === 'ima') {
    const name = new Uint8Array(IMA_EVENT_NAME_LEN_MAX + 1);
    if (fields[1].length > IMA_EVENT_NAME_LEN_MAX) fail('an "ima" template name longer than 255 bytes');
    name.set(fields[1]);
    return concatBytes(fields[0], name);
  }
  return concatBytes(...fields.flatMap((f) => [u32(f.length), f]));
}

export function u32(value: number): Uint8Array {
  return new Uint8Array([value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff]);
}
