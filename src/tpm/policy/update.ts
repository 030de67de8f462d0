import { Writer } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { digest } from '../../core/hash.ts';
import { hashAlg } from '../algorithms.ts';
import { TPM_CC } from '../constants.ts';
import { marshal } from '../marshal/codec.ts';
import { TPML_PCR_SELECTION, type PcrSelection } from '../structures/basic.ts';

/**
 * How each TPM2_Policy* command extends a session's policyDigest (TCG TPM 2.0 Library Part 3,
 * section 23, and the PolicyContextUpdate routine of Part 4). One pure async function per command:
 * `(hash, old, ...arguments) → new`. Every TPM2B argument is hashed as its buffer only, without
 * its size field, and command codes as big-endian u32: the reference implementation's
 * CryptUpdateDigest2B and CryptUpdateDigestInt.
 */

function u8(value: number): Uint8Array {
  return new Uint8Array([value & 0xff]);
}

function u16(value: number): Uint8Array {
  return new Writer(2).u16(value).finish();
}

function u32(value: number): Uint8Array {
  return new Writer(4).u32(value).finish();
}

function h(hash: number, ...parts: Uint8Array[]): Promise<Uint8Array> {
  return digest(hashAlg(hash).name, ...parts);
}

/** The all-zero digest a policy session starts from (and PolicyOR / PolicyAuthorize reset to). */
export function zeroDigest(hash: number): Uint8Array {
  return new Uint8Array(hashAlg(hash).size);
}

/** policyDigest ≔ H(policyDigest ‖ commandCode ‖ parts...): the shape most commands share. */
export function extend(hash: number, old: Uint8Array, commandCode: number, ...parts: Uint8Array[]): Promise<Uint8Array> {
  return h(hash, old, u32(commandCode), ...parts);
}

/**
 * PolicyUpdate (Part 3, 23.2.3; Part 4 PolicyContextUpdate), used by PolicySigned, PolicySecret,
 * PolicyAuthorize and PolicyAuthorizeNV: H(H(old ‖ commandCode ‖ name) ‖ policyRef). The outer hash
 * is taken even when policyRef is empty.
 */
export async function policyUpdate(hash: number, old: Uint8Array, commandCode: number, name: Uint8Array, policyRef: Uint8Array): Promise<Uint8Array> {
  const inner = await extend(hash, old, commandCode, name);
  return h(hash, inner, policyRef);
}

/** PolicyPCR (23.7): H(old ‖ TPM_CC_PolicyPCR ‖ TPML_PCR_SELECTION ‖ pcrDigest). */
export function policyPCR(hash: number, old: Uint8Array, selection: PcrSelection[], pcrDigest: Uint8Array): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyPCR, marshal(TPML_PCR_SELECTION, selection), pcrDigest);
}

/** The argument hash PolicyNV and PolicyCounterTimer bind: H(operandB ‖ offset ‖ operation). */
export function operandArgs(hash: number, operandB: Uint8Array, offset: number, operation: number): Promise<Uint8Array> {
  return h(hash, operandB, u16(offset), u16(operation));
}

/** PolicyNV (23.9): H(old ‖ TPM_CC_PolicyNV ‖ H(operandB ‖ offset ‖ operation) ‖ nvIndexName). */
export async function policyNV(hash: number, old: Uint8Array, nvIndexName: Uint8Array, operandB: Uint8Array, offset: number, operation: number): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyNV, await operandArgs(hash, operandB, offset, operation), nvIndexName);
}

/** PolicyCounterTimer (23.10): H(old ‖ TPM_CC_PolicyCounterTimer ‖ H(operandB ‖ offset ‖ operation)). */
export async function policyCounterTimer(hash: number, old: Uint8Array, operandB: Uint8Array, offset: number, operation: number): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyCounterTimer, await operandArgs(hash, operandB, offset, operation));
}

/** PolicySigned (23.3): PolicyUpdate(TPM_CC_PolicySigned, authObject name, policyRef). */
export function policySigned(hash: number, old: Uint8Array, authObjectName: Uint8Array, policyRef: Uint8Array): Promise<Uint8Array> {
  return policyUpdate(hash, old, TPM_CC.PolicySigned, authObjectName, policyRef);
}

/** PolicySecret (23.4): PolicyUpdate(TPM_CC_PolicySecret, authHandle name, policyRef). */
export function policySecret(hash: number, old: Uint8Array, authObjectName: Uint8Array, policyRef: Uint8Array): Promise<Uint8Array> {
  return policyUpdate(hash, old, TPM_CC.PolicySecret, authObjectName, policyRef);
}

/**
 * PolicyAuthorize (23.16): the digest is reset to zeros, then
 * PolicyUpdate(TPM_CC_PolicyAuthorize, keySign name, policyRef). The approved policy itself does
 * not enter the digest: it is what the key signs.
 */
export function policyAuthorize(hash: number, keySignName: Uint8Array, policyRef: Uint8Array): Promise<Uint8Array> {
  return policyUpdate(hash, zeroDigest(hash), TPM_CC.PolicyAuthorize, keySignName, policyRef);
}

/**
 * PolicyAuthorizeNV (23.22): reset to zeros, then H(zeros ‖ TPM_CC_PolicyAuthorizeNV ‖ nvIndexName).
 * Unlike PolicyUpdate there is no second hash: the command has no policyRef at all (the reference
 * code passes a NULL ref, which skips it), where an empty policyRef still gets hashed.
 */
export function policyAuthorizeNV(hash: number, nvIndexName: Uint8Array): Promise<Uint8Array> {
  return extend(hash, zeroDigest(hash), TPM_CC.PolicyAuthorizeNV, nvIndexName);
}

/** PolicyOR (23.6): H(zeros ‖ TPM_CC_PolicyOR ‖ digest₁ ‖ … ‖ digestₙ), 2 ≤ n ≤ 8. */
export function policyOR(hash: number, branchDigests: Uint8Array[]): Promise<Uint8Array> {
  const size = hashAlg(hash).size;
  if (branchDigests.length < 2 || branchDigests.length > 8) {
    throw new SigilError('tpm.policy_or_invalid', `PolicyOR takes 2 to 8 branch digests, not ${branchDigests.length}`, { count: branchDigests.length });
  }
  branchDigests.forEach((d, index) => {
    if (d.length !== size) {
      throw new SigilError('tpm.policy_or_invalid', `PolicyOR branch ${index} is ${d.length} bytes, the policy hash makes ${size}`, { index, length: d.length, size });
    }
  });
  return extend(hash, zeroDigest(hash), TPM_CC.PolicyOR, ...branchDigests);
}

/** PolicyCommandCode (23.11): H(old ‖ TPM_CC_PolicyCommandCode ‖ code). */
export function policyCommandCode(hash: number, old: Uint8Array, code: number): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyCommandCode, u32(code));
}

/** PolicyAuthValue (23.17): H(old ‖ TPM_CC_PolicyAuthValue). */
export function policyAuthValue(hash: number, old: Uint8Array): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyAuthValue);
}

/** PolicyPassword (23.18) extends with TPM_CC_PolicyAuthValue too, so the two are interchangeable. */
export function policyPassword(hash: number, old: Uint8Array): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyAuthValue);
}

/**
 * PolicyDuplicationSelect (23.15):
 * H(old ‖ TPM_CC_PolicyDuplicationSelect ‖ [objectName if includeObject] ‖ newParentName ‖ includeObject).
 */
export function policyDuplicationSelect(hash: number, old: Uint8Array, objectName: Uint8Array, newParentName: Uint8Array, includeObject: boolean): Promise<Uint8Array> {
  const object = includeObject ? [objectName] : [];
  return extend(hash, old, TPM_CC.PolicyDuplicationSelect, ...object, newParentName, u8(includeObject ? 1 : 0));
}

/** PolicyCpHash (23.13): H(old ‖ TPM_CC_PolicyCpHash ‖ cpHashA). */
export function policyCpHash(hash: number, old: Uint8Array, cpHashA: Uint8Array): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyCpHash, cpHashA);
}

/** PolicyNameHash (23.14): H(old ‖ TPM_CC_PolicyNameHash ‖ nameHash). */
export function policyNameHash(hash: number, old: Uint8Array, nameHash: Uint8Array): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyNameHash, nameHash);
}

/** PolicyLocality (23.8): H(old ‖ TPM_CC_PolicyLocality ‖ TPMA_LOCALITY byte). */
export function policyLocality(hash: number, old: Uint8Array, locality: number): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyLocality, u8(locality));
}

/** PolicyPhysicalPresence (23.12): H(old ‖ TPM_CC_PolicyPhysicalPresence). */
export function policyPhysicalPresence(hash: number, old: Uint8Array): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyPhysicalPresence);
}

/** PolicyNvWritten (23.20): H(old ‖ TPM_CC_PolicyNvWritten ‖ writtenSet byte). */
export function policyNvWritten(hash: number, old: Uint8Array, writtenSet: boolean): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyNvWritten, u8(writtenSet ? 1 : 0));
}

/** PolicyTemplate (23.21): H(old ‖ TPM_CC_PolicyTemplate ‖ templateHash). */
export function policyTemplate(hash: number, old: Uint8Array, templateHash: Uint8Array): Promise<Uint8Array> {
  return extend(hash, old, TPM_CC.PolicyTemplate, templateHash);
}
