import { Writer } from '../../core/bytes.ts';
import { SigilError, isSigilError } from '../../core/errors.ts';
import { fromHex } from '../../core/hex.ts';
import { hashAlg } from '../../tpm/algorithms.ts';
import { TPM_ALG } from '../../tpm/constants.ts';
import { parseQuote, type ParsedQuote } from '../tpm/quote.ts';

/**
 * The Azure vTPM quote as Trustee's attesters send it (az-cvm-vtpm `vtpm::Quote`):
 *
 *   { "signature": raw RSASSA-PKCS1-v1_5 / SHA-256 signature by HCLAkPub,
 *     "message":   TPMS_ATTEST (the quote the vTPM signed),
 *     "pcrs":      the quoted PCR values, in the quote's selection order (24 SHA-256 PCRs) }
 *
 * each as hex (evidence v1+, the *_tpm_quote.json files) or as JSON byte arrays (legacy v0).
 * The signature is raw bytes, not a TPMT_SIGNATURE, so it is wrapped as RSASSA/SHA-256 — the
 * only scheme the Azure AK signs with — before the shared TPM quote parser sees it.
 */
export interface AzureTpmQuote {
  quote: ParsedQuote;
  /** Quoted PCR values by bank algorithm and index, from the `pcrs` list. */
  pcrValues: Map<number, Map<number, Uint8Array>>;
  signature: Uint8Array;
}

const CODE = 'azure.tpm_quote_malformed';
const MAX_BYTES = 1 << 16;

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new SigilError(CODE, `vTPM quote: ${message}`, details);
}

/** Hex text or a JSON array of byte values → bytes. */
export function jsonBytes(value: unknown, what: string): Uint8Array {
  if (typeof value === 'string') {
    if (value.length > MAX_BYTES * 2 || !/^([0-9a-fA-F]{2})*$/.test(value)) fail(`${what} is not hex`);
    return fromHex(value);
  }
  if (Array.isArray(value)) {
    if (value.length > MAX_BYTES) fail(`${what} is too long`);
    const out = new Uint8Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const b = value[i];
      if (typeof b !== 'number' || !Number.isInteger(b) || b < 0 || b > 255) fail(`${what}[${i}] is not a byte`);
      out[i] = b;
    }
    return out;
  }
  return fail(`${what} is neither hex nor a byte array`);
}

/** Raw RSASSA signature → TPMT_SIGNATURE bytes (Part 2, 11.3.4). */
function rsassaSignature(raw: Uint8Array): Uint8Array {
  if (raw.length === 0 || raw.length > 1024) fail(`a ${raw.length}-byte signature is not an RSA signature`);
  return new Writer(raw.length + 6).u16(TPM_ALG.RSASSA).u16(TPM_ALG.SHA256).sized16(raw).finish();
}

export function parseAzureTpmQuote(value: unknown): AzureTpmQuote {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('expected an object with signature, message and pcrs');
  const input = value as Record<string, unknown>;
  const signature = jsonBytes(input.signature, 'signature');
  const message = jsonBytes(input.message, 'message');
  if (!Array.isArray(input.pcrs) || input.pcrs.length > 128) fail('"pcrs" is not a list of PCR values');
  const pcrList = input.pcrs.map((p, i) => jsonBytes(p, `pcrs[${i}]`));
  let quote: ParsedQuote;
  try {
    quote = parseQuote(message, rsassaSignature(signature));
  } catch (error) {
    const code = isSigilError(error) ? error.code : undefined;
    throw new SigilError(CODE, `vTPM quote: the message is not a TPM quote (${error instanceof Error ? error.message : String(error)})`, { cause: code }, { cause: error });
  }
  const pcrValues = new Map<number, Map<number, Uint8Array>>();
  let next = 0;
  for (const bank of quote.attest.attested.pcrSelect) {
    let size: number;
    try {
      size = hashAlg(bank.hash).size;
    } catch (error) {
      throw new SigilError(CODE, `vTPM quote: PCR bank 0x${bank.hash.toString(16)} is not a known hash`, { bank: bank.hash }, { cause: error });
    }
    const values = pcrValues.get(bank.hash) ?? new Map<number, Uint8Array>();
    pcrValues.set(bank.hash, values);
    for (const index of bank.pcrs) {
      const pcr = pcrList[next];
      if (!pcr) fail(`the quote selects more PCRs than the ${pcrList.length} given`, { given: pcrList.length });
      if (pcr.length !== size) fail(`pcrs[${next}] is ${pcr.length} bytes, the bank's digest is ${size}`, { index: next });
      values.set(index, pcr);
      next++;
    }
  }
  if (next !== pcrList.length) fail(`${pcrList.length} PCR values given, the quote selects ${next}`, { given: pcrList.length, selected: next });
  return { quote, pcrValues, signature };
}
