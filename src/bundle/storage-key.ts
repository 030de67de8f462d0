import { SigilError } from '../core/errors.ts';
import { TPM_ALG, TPMA_OBJECT } from '../tpm/constants.ts';
import type { TpmPublic } from '../tpm/structures/public.ts';

/**
 * What a key must be for Sigil to wrap anything to it: a storage key (restricted | decrypt, with
 * an AES-CFB symmetric definition, as Import needs) that is fixedTPM | fixedParent — it cannot
 * leave its TPM, so neither can what is wrapped to it. A device's SRK (0x81000001) is one.
 */
export const NON_DUPLICABLE_STORAGE = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt;

export function assertNonDuplicableStorageKey(publicArea: TpmPublic, code: string, what: string): void {
  if (publicArea.type !== TPM_ALG.ECC && publicArea.type !== TPM_ALG.RSA) {
    throw new SigilError(code, `the ${what} is not an RSA or ECC key`);
  }
  if ((publicArea.objectAttributes & NON_DUPLICABLE_STORAGE) !== NON_DUPLICABLE_STORAGE) {
    throw new SigilError(code, `the ${what} is not a non-duplicable storage key (fixedTPM | fixedParent | restricted | decrypt): what is wrapped to it could leave its TPM`, {
      attributes: publicArea.objectAttributes,
    });
  }
  const symmetric = publicArea.symmetric;
  if (symmetric.algorithm !== TPM_ALG.AES || symmetric.mode !== TPM_ALG.CFB) {
    throw new SigilError(code, `the ${what} has no AES-CFB symmetric definition, which TPM2_Import needs`);
  }
}
