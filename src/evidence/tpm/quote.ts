import { bytesEqual, concatBytes, constantTimeEqual, Reader } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { digest, digestSync, hasDigestSync } from '../../core/hash.ts';
import { toHex } from '../../core/hex.ts';
import { hashAlg } from '../../tpm/algorithms.ts';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../../tpm/constants.ts';
import type { PcrSelection } from '../../tpm/structures/basic.ts';
import { TPMS_ATTEST, type Attest } from '../../tpm/structures/attest.ts';
import type { TpmPublic } from '../../tpm/structures/public.ts';
import { TPMT_SIGNATURE, type TpmSignature } from '../../tpm/structures/signature.ts';
import { verifyTpmSignature } from './signature.ts';

/**
 * A TPM2_Quote as evidence, in the three steps every verifier has (DESIGN.md section 3):
 * parse (untrusted bytes → structure), verify (signature, nonce, PCR digest → claims), and the
 * appraisal of those claims lives in policy/. Offsets: TPMS_ATTEST per TPM 2.0 Part 2, 10.12.12.
 */
export interface ParsedQuote {
  /** The exact bytes the AK signed. */
  attestBytes: Uint8Array;
  attest: Attest & { attested: { type: typeof TPM_ST.ATTEST_QUOTE } };
  signature: TpmSignature;
}

export function parseQuote(attestBytes: Uint8Array, signatureBytes: Uint8Array): ParsedQuote {
  try {
    const attest = evidenceStructure('tpm.quote_malformed', () => {
      const r = new Reader(attestBytes, { errorCode: 'tpm.quote_malformed', what: 'TPMS_ATTEST' });
      const value = TPMS_ATTEST.read(r);
      r.end();
      return value;
    });
    if (attest.magic !== TPM_GENERATED_VALUE) {
      throw new SigilError('tpm.quote_not_tpm_generated', 'the attestation does not start with TPM_GENERATED_VALUE', { magic: attest.magic });
    }
    if (attest.attested.type !== TPM_ST.ATTEST_QUOTE) {
      throw new SigilError('tpm.quote_wrong_type', 'the attestation is not a quote', { type: attest.attested.type });
    }
    const signature = parseSignature(signatureBytes);
    return { attestBytes, attest: attest as ParsedQuote['attest'], signature };
  } catch (error) {
    throw asSigilError(error, 'tpm.quote_malformed', 'the quote could not be parsed');
  }
}

function parseSignature(bytes: Uint8Array): TpmSignature {
  return evidenceStructure('tpm.signature_malformed', () => {
    const r = new Reader(bytes, { errorCode: 'tpm.signature_malformed', what: 'TPMT_SIGNATURE' });
    const signature = TPMT_SIGNATURE.read(r);
    r.end();
    return signature;
  });
}

/** The shared codecs name a bad selector "tpm.response_malformed"; in evidence it is this structure. */
function evidenceStructure<T>(code: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof SigilError && error.code === 'tpm.response_malformed') throw new SigilError(code, error.message, error.details);
    throw error;
  }
}

export interface QuoteTrust {
  /** The attestation key's public area, already trusted (pinned, certified, or activated). */
  akPublic: TpmPublic;
  /**
   * The nonce the verifier issued; must equal the quote's extraData. When absent the nonce is not
   * checked here and the caller must compare `quote.attest.extraData` itself (the broker does, for
   * every evidence kind in one place).
   */
  nonce?: Uint8Array;
  /** PCR values claimed for the quoted selection (bank alg → index → value). */
  pcrValues: Map<number, Map<number, Uint8Array>>;
}

export interface VerifiedQuote {
  readonly verified: true;
  /** Quoted PCR values, per bank label ("sha256") and index, hex. */
  pcrs: Record<string, Record<number, string>>;
  selection: PcrSelection[];
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: bigint;
  qualifiedSigner: Uint8Array;
}

/** The PCR digest a quote covers: H_sig(PCR values in selection order) (Part 3, 18.4). */
export async function quotePcrDigest(hash: number, selection: PcrSelection[], values: Map<number, Map<number, Uint8Array>>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const bank of selection) {
    const bankValues = values.get(bank.hash);
    for (const index of bank.pcrs) {
      const value = bankValues?.get(index);
      if (!value) {
        throw new SigilError('tpm.quote_pcr_missing', `no value given for quoted PCR ${hashAlg(bank.hash).label}:${index}`, { bank: bank.hash, index });
      }
      parts.push(value);
    }
  }
  const name = hashAlg(hash).name;
  return hasDigestSync ? digestSync(name, ...parts) : digest(name, concatBytes(...parts));
}

export async function verifyQuote(quote: ParsedQuote, trust: QuoteTrust): Promise<VerifiedQuote> {
  if (quote.signature.sigAlg === TPM_ALG.NULL || quote.signature.sigAlg === TPM_ALG.HMAC) {
    throw new SigilError('tpm.quote_signature_invalid', 'the quote carries no asymmetric signature');
  }
  await verifyTpmSignature(trust.akPublic, quote.attestBytes, quote.signature, 'tpm.quote_signature_invalid');
  if (trust.nonce && !constantTimeEqual(quote.attest.extraData, trust.nonce)) {
    throw new SigilError('tpm.quote_nonce_mismatch', 'the quote was made for a different nonce', {
      expected: toHex(trust.nonce),
      actual: toHex(quote.attest.extraData),
    });
  }
  const { pcrSelect, pcrDigest } = quote.attest.attested;
  const computed = await quotePcrDigest(quote.signature.hashAlg, pcrSelect, trust.pcrValues);
  if (!bytesEqual(computed, pcrDigest)) {
    throw new SigilError('tpm.quote_pcr_digest_mismatch', 'the PCR values given do not match the digest the TPM signed', {
      expected: toHex(pcrDigest),
      computed: toHex(computed),
    });
  }
  const pcrs: Record<string, Record<number, string>> = {};
  for (const bank of pcrSelect) {
    const label = hashAlg(bank.hash).label;
    pcrs[label] = {};
    for (const index of bank.pcrs) pcrs[label][index] = toHex(trust.pcrValues.get(bank.hash)!.get(index)!);
  }
  const { clockInfo } = quote.attest;
  return {
    verified: true,
    pcrs,
    selection: pcrSelect,
    clock: clockInfo.clock,
    resetCount: clockInfo.resetCount,
    restartCount: clockInfo.restartCount,
    safe: clockInfo.safe,
    firmwareVersion: quote.attest.firmwareVersion,
    qualifiedSigner: quote.attest.qualifiedSigner,
  };
}
