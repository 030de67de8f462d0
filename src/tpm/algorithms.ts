import { SigilError } from '../core/errors.ts';
import type { HashName } from '../core/hash.ts';
import { HASH_ALGS, TPM_ALG } from './constants.ts';

export interface HashAlgInfo {
  alg: number;
  name: HashName;
  node: string;
  size: number;
  label: string;
}

export function hashAlg(alg: number): HashAlgInfo {
  const info = HASH_ALGS[alg];
  if (!info) throw new SigilError('tpm.hash_unsupported', `hash algorithm 0x${alg.toString(16)} is not supported`, { alg });
  return { alg, ...info };
}

/** `sha256` → TPM_ALG_SHA256; accepts the labels tpm2-tools uses. */
export function hashAlgFromLabel(label: string): number {
  const lower = label.toLowerCase().replace('-', '');
  for (const [alg, info] of Object.entries(HASH_ALGS)) if (info.label === lower) return Number(alg);
  throw new SigilError('tpm.hash_unsupported', `unknown hash algorithm "${label}"`, { label });
}

export function algName(alg: number): string {
  for (const [name, value] of Object.entries(TPM_ALG)) if (value === alg) return name;
  return `0x${alg.toString(16).padStart(4, '0')}`;
}
