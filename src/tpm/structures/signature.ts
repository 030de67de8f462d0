import { TPM_ALG } from '../constants.ts';
import type { Codec } from '../marshal/codec.ts';
import { TPM2B_ECC_PARAMETER, TPM2B_PUBLIC_KEY_RSA, TPMT_HA } from './basic.ts';

/** TPMT_SIGNATURE (Part 2, 11.3.4): selector then the scheme's fields. */
export type TpmSignature =
  | { sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; hashAlg: number; sig: Uint8Array }
  | { sigAlg: typeof TPM_ALG.ECDSA | typeof TPM_ALG.ECDAA | typeof TPM_ALG.SM2 | typeof TPM_ALG.ECSCHNORR; hashAlg: number; r: Uint8Array; s: Uint8Array }
  | { sigAlg: typeof TPM_ALG.HMAC; hashAlg: number; digest: Uint8Array }
  | { sigAlg: typeof TPM_ALG.NULL };

export const TPMT_SIGNATURE: Codec<TpmSignature> = {
  name: 'TPMT_SIGNATURE',
  read(r) {
    const sigAlg = r.u16();
    switch (sigAlg) {
      case TPM_ALG.RSASSA:
      case TPM_ALG.RSAPSS:
        return { sigAlg, hashAlg: r.u16(), sig: TPM2B_PUBLIC_KEY_RSA.read(r) };
      case TPM_ALG.ECDSA:
      case TPM_ALG.ECDAA:
      case TPM_ALG.SM2:
      case TPM_ALG.ECSCHNORR:
        return { sigAlg, hashAlg: r.u16(), r: TPM2B_ECC_PARAMETER.read(r), s: TPM2B_ECC_PARAMETER.read(r) };
      case TPM_ALG.HMAC: {
        const ha = TPMT_HA.read(r);
        return { sigAlg, hashAlg: ha.hashAlg, digest: ha.digest };
      }
      case TPM_ALG.NULL:
        return { sigAlg };
      default:
        return r.fail(`unknown signature algorithm 0x${sigAlg.toString(16)}`, { sigAlg }, 'tpm.response_malformed');
    }
  },
  write(w, v) {
    w.u16(v.sigAlg);
    if (v.sigAlg === TPM_ALG.NULL) return;
    if ('sig' in v) {
      w.u16(v.hashAlg);
      TPM2B_PUBLIC_KEY_RSA.write(w, v.sig);
    } else if ('r' in v) {
      w.u16(v.hashAlg);
      TPM2B_ECC_PARAMETER.write(w, v.r);
      TPM2B_ECC_PARAMETER.write(w, v.s);
    } else {
      TPMT_HA.write(w, { hashAlg: v.hashAlg, digest: v.digest });
    }
  },
};
