import { SigilError } from '../../core/errors.ts';
import { fromHex } from '../../core/hex.ts';
import { JsonFields, parseJson } from './json-fields.ts';

/**
 * Intel collateral for one quote (PCS API v4 / PCCS): TCB Info and QE identity as signed JSON,
 * their issuer chain (TCB signing certificate + root, the `TCB-Info-Issuer-Chain` and
 * `SGX-Enclave-Identity-Issuer-Chain` response headers), the PCK CRL and the Root CA CRL.
 * Every part is optional: without TCB info the quote is verified but its TCB is not evaluated.
 */
export interface SignedJson {
  /** The exact signed JSON text (the value of "tcbInfo" / "enclaveIdentity"), byte for byte. */
  body: string;
  /** ECDSA P-256 r || s over the UTF-8 of `body`. */
  signature: Uint8Array;
}

export interface TdxCollateral {
  tcbInfo?: SignedJson;
  qeIdentity?: SignedJson;
  /** PEM: TCB signing certificate then root. Also used for the QE identity unless the next is given. */
  tcbInfoIssuerChain?: string;
  qeIdentityIssuerChain?: string;
  /** DER or PEM. */
  pckCrl?: Uint8Array | string;
  rootCaCrl?: Uint8Array | string;
}

const CODE = 'tdx.collateral_malformed';

/**
 * Find the raw text of a top-level member's object value. The signature covers these exact bytes
 * (whitespace and key order included), so re-serializing parsed JSON would not do.
 */
export function rawJsonMember(text: string, member: string): string {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (depth === 1 && text.slice(i + 1, end) === member) {
        const colon = skipSpace(text, end + 1);
        const value = skipSpace(text, colon + 1);
        if (text[colon] === ':' && text[value] === '{') {
          const close = matchingBrace(text, value);
          if (close > 0) return text.slice(value, close + 1);
        }
      }
      i = end;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  throw new SigilError(CODE, `the response has no "${member}" object`, { member });
}

/** Index of the quote closing the string that opens at `open`. */
function stringEnd(text: string, open: number): number {
  let i = open + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i;
}

function skipSpace(text: string, from: number): number {
  let i = from;
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  return i;
}

function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"') i = stringEnd(text, i);
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

function signatureHex(hex: string, what: string): Uint8Array {
  try {
    const bytes = fromHex(hex);
    if (bytes.length !== 64) throw new Error(`${bytes.length} bytes`);
    return bytes;
  } catch (error) {
    throw new SigilError(CODE, `the ${what} signature is not 64 bytes of hex (r || s)`, {}, { cause: error });
  }
}

/** A PCS response body `{"tcbInfo": {...}, "signature": "<hex>"}` (or "enclaveIdentity"). */
export function signedJsonFromPcsResponse(text: string, member: 'tcbInfo' | 'enclaveIdentity'): SignedJson {
  const response = new JsonFields(parseJson(text, CODE, `${member} response`), CODE, member === 'tcbInfo' ? 'TCB info response' : 'QE identity response');
  response.child(member);
  return { body: rawJsonMember(text, member), signature: signatureHex(response.string('signature'), member) };
}

/**
 * The collateral JSON of Intel's QVL / Phala's dcap-qvl (QuoteCollateralV3): PEM issuer chains,
 * hex DER CRLs, `tcb_info` / `qe_identity` as the signed JSON strings with hex signatures.
 */
export function collateralFromQvlJson(text: string): TdxCollateral {
  const json = new JsonFields(parseJson(text, CODE, 'collateral'), CODE, 'collateral');
  const hexField = (name: string) => {
    try {
      return fromHex(json.string(name));
    } catch (error) {
      throw new SigilError(CODE, `collateral.${name} is not hex`, {}, { cause: error });
    }
  };
  const collateral: TdxCollateral = {};
  if (json.has('tcb_info')) collateral.tcbInfo = { body: json.string('tcb_info'), signature: signatureHex(json.string('tcb_info_signature'), 'TCB info') };
  if (json.has('qe_identity')) collateral.qeIdentity = { body: json.string('qe_identity'), signature: signatureHex(json.string('qe_identity_signature'), 'QE identity') };
  if (json.has('tcb_info_issuer_chain')) collateral.tcbInfoIssuerChain = json.string('tcb_info_issuer_chain');
  if (json.has('qe_identity_issuer_chain')) collateral.qeIdentityIssuerChain = json.string('qe_identity_issuer_chain');
  if (json.has('pck_crl')) collateral.pckCrl = hexField('pck_crl');
  if (json.has('root_ca_crl')) collateral.rootCaCrl = hexField('root_ca_crl');
  return collateral;
}
