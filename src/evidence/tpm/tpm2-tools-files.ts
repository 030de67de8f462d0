import { SigilError } from '../../core/errors.ts';
import { hashAlg } from '../../tpm/algorithms.ts';
import type { PcrSelection } from '../../tpm/structures/basic.ts';

/**
 * tpm2-tools' PCR files, so `sigil verify tpm` reads `tpm2_quote -o` output directly.
 *
 * "serialized" (tpm2_quote -o, tpm2_pcrread -o, tpm2_checkquote -f): little-endian C structs,
 * not TPM marshaling (tpm2-tools 5.4, tools/misc/tpm2_checkquote.c):
 *   TPML_PCR_SELECTION: u32 count, 16 × {u16 hash, u8 sizeofSelect, u8[4] select, u8 pad} = 132 bytes
 *   u32 number of TPML_DIGEST lists
 *   each TPML_DIGEST: u32 count, 8 × {u16 size, u8[64] buffer} = 532 bytes, values in selection
 *   order, 8 per list.
 * "values" (tpm2_quote -F values): the PCR values concatenated in selection order.
 */
export type PcrValues = Map<number, Map<number, Uint8Array>>;

const SELECTION_BYTES = 132;
const DIGEST_LIST_BYTES = 532;

function fail(message: string): never {
  throw new SigilError('tpm.pcr_file_malformed', `tpm2-tools PCR file: ${message}`);
}

export function parseSerializedPcrs(bytes: Uint8Array): { selection: PcrSelection[]; values: PcrValues } {
  if (bytes.length < SELECTION_BYTES + 4) fail(`${bytes.length} bytes is too short`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  if (count > 16) fail(`${count} PCR banks`);
  const selection: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const at = 4 + i * 8;
    const hash = view.getUint16(at, true);
    const size = bytes[at + 2];
    if (size > 4) fail(`sizeofSelect ${size}`);
    hashAlg(hash);
    const pcrs: number[] = [];
    for (let p = 0; p < size * 8; p++) if (bytes[at + 3 + (p >> 3)] & (1 << (p & 7))) pcrs.push(p);
    selection.push({ hash, pcrs });
  }
  const lists = view.getUint32(SELECTION_BYTES, true);
  if (lists > 64 || bytes.length !== SELECTION_BYTES + 4 + lists * DIGEST_LIST_BYTES) fail(`${lists} digest lists do not fit ${bytes.length} bytes`);
  const digests: Uint8Array[] = [];
  for (let l = 0; l < lists; l++) {
    const list = SELECTION_BYTES + 4 + l * DIGEST_LIST_BYTES;
    const n = view.getUint32(list, true);
    if (n > 8) fail(`a digest list of ${n}`);
    for (let i = 0; i < n; i++) {
      const at = list + 4 + i * 66;
      const size = view.getUint16(at, true);
      if (size > 64) fail(`a digest of ${size} bytes`);
      digests.push(bytes.slice(at + 2, at + 2 + size));
    }
  }
  return { selection, values: assign(selection, digests) };
}

export function parseConcatenatedPcrs(bytes: Uint8Array, selection: PcrSelection[]): PcrValues {
  const digests: Uint8Array[] = [];
  let offset = 0;
  for (const bank of selection) {
    const size = hashAlg(bank.hash).size;
    for (let i = 0; i < bank.pcrs.length; i++) {
      if (offset + size > bytes.length) fail('fewer values than the quote selects');
      digests.push(bytes.slice(offset, offset + size));
      offset += size;
    }
  }
  if (offset !== bytes.length) fail(`${bytes.length - offset} bytes beyond the selected values`);
  return assign(selection, digests);
}

function assign(selection: PcrSelection[], digests: Uint8Array[]): PcrValues {
  const values: PcrValues = new Map();
  let i = 0;
  for (const bank of selection) {
    const bankValues = values.get(bank.hash) ?? new Map<number, Uint8Array>();
    for (const pcr of bank.pcrs) {
      const value = digests[i++];
      if (!value) fail('fewer values than the selection names');
      if (value.length !== hashAlg(bank.hash).size) fail(`PCR ${pcr} value is ${value.length} bytes`);
      bankValues.set(pcr, value);
    }
    values.set(bank.hash, bankValues);
  }
  if (i !== digests.length) fail(`${digests.length - i} values beyond the selection`);
  return values;
}
