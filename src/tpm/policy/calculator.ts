import { SigilError } from '../../core/errors.ts';
import { hashAlg } from '../algorithms.ts';
import { TPM_ALG, TPM_EO } from '../constants.ts';
import { handleName } from '../handles.ts';
import { nvName, objectName } from '../names.ts';
import type { PcrSelection } from '../structures/basic.ts';
import type { NvPublic } from '../structures/nv.ts';
import type { TpmPublic } from '../structures/public.ts';
import { pcrDigest } from './approval.ts';
import * as update from './update.ts';

/**
 * Computes a policy digest offline, the value a TPM's trial session would reach after the same
 * TPM2_Policy* commands: the authPolicy to put in an object's public area or an NV index.
 *
 *   const policy = new PolicyCalculator(TPM_ALG.SHA256).policyPCR([{ hash: TPM_ALG.SHA256, pcrs: [7] }], [pcr7]).policyCommandCode(TPM_CC.Unseal);
 *   const authPolicy = await policy.digest();
 *
 * Methods only record the step (hashing is async WebCrypto), so they chain; digest() and trace()
 * run the steps in order from the all-zero digest.
 */

/** A name given as bytes, a permanent handle (its own name), an object's or an NV index's public area. */
export type NameSource = Uint8Array | number | TpmPublic | NvPublic;

export async function resolveName(source: NameSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (typeof source === 'number') return handleName(source);
  if ('nvIndex' in source) return nvName(source);
  return objectName(source);
}

export interface PolicyStep {
  command: string;
  /** policyDigest after this command. */
  digest: Uint8Array;
}

interface RecordedStep {
  command: string;
  apply: (old: Uint8Array) => Promise<Uint8Array>;
}

export class PolicyCalculator {
  readonly hashAlg: number;
  private readonly steps: RecordedStep[] = [];

  constructor(policyHash: number = TPM_ALG.SHA256) {
    hashAlg(policyHash); // unsupported algorithms fail here, not at digest()
    this.hashAlg = policyHash;
  }

  private record(command: string, apply: (old: Uint8Array) => Promise<Uint8Array>): this {
    this.steps.push({ command, apply });
    return this;
  }

  get size(): number {
    return this.steps.length;
  }

  /**
   * PolicyPCR. `pcrValuesOrDigest` is either the PCR values (bank by bank in selection order,
   * ascending PCR index within a bank), hashed here with the policy hash, or a ready pcrDigest.
   */
  policyPCR(selection: PcrSelection[], pcrValuesOrDigest: Uint8Array | Uint8Array[]): this {
    const size = hashAlg(this.hashAlg).size;
    if (pcrValuesOrDigest instanceof Uint8Array) {
      if (pcrValuesOrDigest.length !== size) {
        throw new SigilError('tpm.policy_argument_invalid', `a PolicyPCR digest must be ${size} bytes, not ${pcrValuesOrDigest.length}`);
      }
    } else {
      const selected = selection.reduce((n, s) => n + new Set(s.pcrs).size, 0);
      if (pcrValuesOrDigest.length !== selected) {
        throw new SigilError('tpm.policy_argument_invalid', `PolicyPCR selects ${selected} PCRs but ${pcrValuesOrDigest.length} values were given`, {
          selected,
          values: pcrValuesOrDigest.length,
        });
      }
      let index = 0;
      selection.forEach((s, bank) => {
        if (!isAscending(s.pcrs)) {
          throw new SigilError('tpm.policy_argument_invalid', 'PolicyPCR selection must list PCRs in ascending order when values are given', { bank });
        }
        const bankSize = hashAlg(s.hash).size;
        for (const pcr of s.pcrs) {
          const length = pcrValuesOrDigest[index++].length;
          if (length !== bankSize) {
            throw new SigilError('tpm.policy_argument_invalid', `PCR ${pcr} value is ${length} bytes, its bank makes ${bankSize}`, { bank, pcr, length });
          }
        }
      });
    }
    // Copies: a caller changing its arrays later must not change the recorded step.
    const values = pcrValuesOrDigest instanceof Uint8Array ? pcrValuesOrDigest.slice() : pcrValuesOrDigest.map((v) => v.slice());
    const pcrs = selection.map((s) => ({ hash: s.hash, pcrs: [...s.pcrs] }));
    return this.record('PolicyPCR', async (old) => {
      const d = values instanceof Uint8Array ? values : await pcrDigest(this.hashAlg, values);
      return update.policyPCR(this.hashAlg, old, pcrs, d);
    });
  }

  /** PolicyNV: compare the NV index's bytes at `offset` with operandB (TPM_EO, EQ by default). */
  policyNV(nvIndex: Uint8Array | NvPublic, operandB: Uint8Array, offset = 0, operation: number = TPM_EO.EQ): this {
    return this.record('PolicyNV', async (old) => update.policyNV(this.hashAlg, old, await resolveName(nvIndex), operandB, offset, operation));
  }

  /** PolicyCounterTimer: compare TPMS_TIME_INFO bytes at `offset` with operandB. */
  policyCounterTimer(operandB: Uint8Array, offset = 0, operation: number = TPM_EO.EQ): this {
    return this.record('PolicyCounterTimer', (old) => update.policyCounterTimer(this.hashAlg, old, operandB, offset, operation));
  }

  policySigned(authObject: NameSource, policyRef: Uint8Array = new Uint8Array(0)): this {
    return this.record('PolicySigned', async (old) => update.policySigned(this.hashAlg, old, await resolveName(authObject), policyRef));
  }

  /** PolicySecret: the authorizing entity is an object, an NV index or a hierarchy handle (TPM_RH_ENDORSEMENT...). */
  policySecret(authObject: NameSource, policyRef: Uint8Array = new Uint8Array(0)): this {
    return this.record('PolicySecret', async (old) => update.policySecret(this.hashAlg, old, await resolveName(authObject), policyRef));
  }

  /** PolicyAuthorize: replaces everything before it with "a policy signed by keySign". */
  policyAuthorize(keySign: Uint8Array | TpmPublic, policyRef: Uint8Array = new Uint8Array(0)): this {
    return this.record('PolicyAuthorize', async () => update.policyAuthorize(this.hashAlg, await resolveName(keySign), policyRef));
  }

  policyAuthorizeNV(nvIndex: Uint8Array | NvPublic): this {
    return this.record('PolicyAuthorizeNV', async () => update.policyAuthorizeNV(this.hashAlg, await resolveName(nvIndex)));
  }

  /** PolicyOR over 2..8 branches, given as digests or as calculators (with the same hash). */
  policyOR(branches: (Uint8Array | PolicyCalculator)[]): this {
    for (const b of branches) {
      if (b instanceof PolicyCalculator && b.hashAlg !== this.hashAlg) {
        throw new SigilError('tpm.policy_or_invalid', 'every PolicyOR branch must use the policy hash of the calculator');
      }
    }
    return this.record('PolicyOR', async () => {
      const digests = await Promise.all(branches.map((b) => (b instanceof PolicyCalculator ? b.digest() : b)));
      return update.policyOR(this.hashAlg, digests);
    });
  }

  policyCommandCode(code: number): this {
    return this.record('PolicyCommandCode', (old) => update.policyCommandCode(this.hashAlg, old, code));
  }

  policyAuthValue(): this {
    return this.record('PolicyAuthValue', (old) => update.policyAuthValue(this.hashAlg, old));
  }

  policyPassword(): this {
    return this.record('PolicyPassword', (old) => update.policyPassword(this.hashAlg, old));
  }

  policyDuplicationSelect(object: Uint8Array | TpmPublic, newParent: Uint8Array | TpmPublic, includeObject = false): this {
    return this.record('PolicyDuplicationSelect', async (old) =>
      update.policyDuplicationSelect(this.hashAlg, old, await resolveName(object), await resolveName(newParent), includeObject),
    );
  }

  policyCpHash(cpHashA: Uint8Array): this {
    return this.record('PolicyCpHash', (old) => update.policyCpHash(this.hashAlg, old, cpHashA));
  }

  policyNameHash(nameHash: Uint8Array): this {
    return this.record('PolicyNameHash', (old) => update.policyNameHash(this.hashAlg, old, nameHash));
  }

  /** TPMA_LOCALITY: bit n for localities 0..4, or a value ≥ 32 for one extended locality. */
  policyLocality(locality: number): this {
    return this.record('PolicyLocality', (old) => update.policyLocality(this.hashAlg, old, locality));
  }

  policyPhysicalPresence(): this {
    return this.record('PolicyPhysicalPresence', (old) => update.policyPhysicalPresence(this.hashAlg, old));
  }

  policyNvWritten(writtenSet: boolean): this {
    return this.record('PolicyNvWritten', (old) => update.policyNvWritten(this.hashAlg, old, writtenSet));
  }

  policyTemplate(templateHash: Uint8Array): this {
    return this.record('PolicyTemplate', (old) => update.policyTemplate(this.hashAlg, old, templateHash));
  }

  /** Every step with the digest after it: what a trace compares against a TPM's PolicyGetDigest. */
  async trace(): Promise<PolicyStep[]> {
    const out: PolicyStep[] = [];
    let current = update.zeroDigest(this.hashAlg);
    for (const step of this.steps) {
      current = await step.apply(current);
      out.push({ command: step.command, digest: current });
    }
    return out;
  }

  async digest(): Promise<Uint8Array> {
    const steps = await this.trace();
    return steps.length === 0 ? update.zeroDigest(this.hashAlg) : steps[steps.length - 1].digest;
  }
}

function isAscending(values: number[]): boolean {
  for (let i = 1; i < values.length; i++) if (values[i] <= values[i - 1]) return false;
  return true;
}
