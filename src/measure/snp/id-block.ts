/**
 * SNP ID block and key digests (SEV-SNP Firmware ABI spec, SNP_LAUNCH_FINISH: "ID_BLOCK
 * structure" and appendix "Public key formats"). A guest owner pins the launch digest in an ID
 * block signed by an ID key; the report then carries ID_KEY_DIGEST / AUTHOR_KEY_DIGEST, which are
 * SHA-384 over the key in AMD's format — what a verifier's reference values name.
 *
 * ID_BLOCK (96 bytes): 0x00 LD[48], 0x30 FAMILY_ID[16], 0x40 IMAGE_ID[16], 0x50 VERSION u32 (1),
 *   0x54 GUEST_SVN u32, 0x58 POLICY u64.
 * ECDSA public key (0x404 bytes): 0x00 CURVE u32 (2 = P-384), 0x04 QX[72] LE, 0x4C QY[72] LE,
 *   0x94 reserved[0x370].
 */
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { fromBase64 } from '../../core/hex.ts';

export interface IdBlockFields {
  launchDigest: Uint8Array;
  familyId?: Uint8Array;
  imageId?: Uint8Array;
  version?: number;
  guestSvn?: number;
  policy: bigint;
}

export function idBlock(fields: IdBlockFields): Uint8Array {
  const block = new Uint8Array(96);
  const view = new DataView(block.buffer);
  const put = (value: Uint8Array | undefined, at: number, length: number, name: string) => {
    if (value === undefined) return;
    if (value.length !== length) throw new SigilError('measure.id_block_invalid', `${name} is ${value.length} bytes, not ${length}`, { name });
    block.set(value, at);
  };
  put(fields.launchDigest, 0x00, 48, 'the launch digest');
  put(fields.familyId, 0x30, 16, 'the family ID');
  put(fields.imageId, 0x40, 16, 'the image ID');
  view.setUint32(0x50, fields.version ?? 1, true);
  view.setUint32(0x54, fields.guestSvn ?? 0, true);
  view.setBigUint64(0x58, fields.policy, true);
  return block;
}

function pemBody(pem: string): Uint8Array {
  const match = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(pem);
  if (!match) throw new SigilError('measure.key_invalid', 'expected a PEM "PUBLIC KEY" (SubjectPublicKeyInfo)');
  return fromBase64(match[1]);
}

/** A P-384 public key (SPKI PEM) in AMD's 0x404-byte format. */
export async function amdEcdsaPublicKey(spkiPem: string): Promise<Uint8Array> {
  let jwk: JsonWebKey;
  try {
    const key = await crypto.subtle.importKey('spki', pemBody(spkiPem) as Uint8Array<ArrayBuffer>, { name: 'ECDSA', namedCurve: 'P-384' }, true, ['verify']);
    jwk = await crypto.subtle.exportKey('jwk', key);
  } catch (error) {
    if (error instanceof SigilError) throw error;
    throw new SigilError('measure.key_invalid', 'not a P-384 public key', {}, { cause: error });
  }
  const out = new Uint8Array(0x404);
  new DataView(out.buffer).setUint32(0, 2, true);
  // JWK coordinates are big-endian; AMD stores them little-endian, zero-extended to 72 bytes.
  out.set(fromBase64(jwk.x ?? '').reverse(), 0x04);
  out.set(fromBase64(jwk.y ?? '').reverse(), 0x4c);
  return out;
}

/** ID_KEY_DIGEST / AUTHOR_KEY_DIGEST as the report carries them. */
export async function amdKeyDigest(spkiPem: string): Promise<Uint8Array> {
  return digest('SHA-384', await amdEcdsaPublicKey(spkiPem));
}
