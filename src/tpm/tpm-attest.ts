import { auth } from './command.ts';
import { quote as quoteCommand, type AttestResult } from './commands/attestation.ts';
import { activateCredential as activateCommand, type Credential } from './commands/credential.ts';
import { TPM_RH } from './constants.ts';
import { marshal } from './marshal/codec.ts';
import { PolicySession } from './session/policy.ts';
import type { PcrSelection } from './structures/basic.ts';
import { TPMT_SIGNATURE } from './structures/signature.ts';
import type { LoadedKey } from './tpm-keys.ts';
import type { Tpm } from './tpm.ts';

/** Quotes and credential activation: the device side of TPM attestation. */

export interface QuoteEvidence extends AttestResult {
  /** TPMT_SIGNATURE as the TPM marshals it (tpm2_checkquote's "tss" signature format). */
  signatureBytes: Uint8Array;
  /** PCR values read right after the quote, for the verifier to recompute the digest. */
  pcrValues: Map<number, Map<number, Uint8Array>>;
}

export async function quote(tpm: Tpm, ak: LoadedKey, nonce: Uint8Array, selection: PcrSelection[]): Promise<QuoteEvidence> {
  const result = await tpm.client.run(quoteCommand(auth(ak.handle), nonce, selection));
  // Read the values for the quoted selection; a PCR extended in between makes the verifier's
  // digest check fail, which is the safe outcome.
  const pcrValues = await tpm.readSelection(result.attest.attested.type === 0x8018 ? result.attest.attested.pcrSelect : selection);
  return { ...result, signatureBytes: marshal(TPMT_SIGNATURE, result.signature), pcrValues };
}

/**
 * ActivateCredential with an EK: the EK's policy is PolicySecret(TPM_RH_ENDORSEMENT), so its
 * authorization is a policy session asserting that; the AK authorizes with its (empty) password.
 */
export async function activateCredential(tpm: Tpm, ak: LoadedKey, ek: LoadedKey, credential: Credential): Promise<Uint8Array> {
  const policy = await PolicySession.start(tpm.client, { salt: { handle: ek.handle, publicArea: ek.publicArea }, encrypt: true });
  try {
    await policy.policySecret(auth(TPM_RH.ENDORSEMENT));
    return await policy.run(activateCommand(auth(ak.handle), { handle: ek.handle, name: ek.name, session: policy }, credential));
  } finally {
    await policy.flush(tpm.client).catch(() => undefined);
  }
}
