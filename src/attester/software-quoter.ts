import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { toHex } from '../core/hex.ts';
import { digest } from '../core/hash.ts';
import { concatBytes } from '../core/bytes.ts';
import { hashAlgFromLabel } from '../tpm/algorithms.ts';
import { TPM_ALG, TPM_GENERATED_VALUE, TPM_ST } from '../tpm/constants.ts';
import { marshal } from '../tpm/marshal/codec.ts';
import { objectName } from '../tpm/names.ts';
import { keyObjectToTpmPublic } from '../tpm/public-key.ts';
import { TPMS_ATTEST } from '../tpm/structures/attest.ts';
import { TPMT_PUBLIC, type EccPublic } from '../tpm/structures/public.ts';
import { TPMT_SIGNATURE } from '../tpm/structures/signature.ts';
import { AK_ATTRIBUTES } from '../tpm/templates.ts';

/**
 * A software stand-in for a TPM's quote, for load generation and development only: real
 * TPMS_ATTEST structures signed by an ECDSA P-256 key that lives in this process (so it proves
 * nothing about a machine; a broker trusts it only if an administrator registers its AK public).
 * It lets `bench:broker` measure the broker rather than swtpm.
 */
export class SoftwareQuoter {
  readonly akPublic: EccPublic;
  readonly #privateKey: KeyObject;
  #clock = 1000n;
  akName = '';

  private constructor(privateKey: KeyObject, akPublic: EccPublic) {
    this.#privateKey = privateKey;
    this.akPublic = akPublic;
  }

  static async create(): Promise<SoftwareQuoter> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const akPublic = keyObjectToTpmPublic(privateKey, { objectAttributes: AK_ATTRIBUTES, scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 } }) as EccPublic;
    const quoter = new SoftwareQuoter(privateKey, akPublic);
    quoter.akName = toHex(await objectName(akPublic));
    return quoter;
  }

  /** Hex TPMT_PUBLIC, as the admin API's device material expects. */
  akPublicHex(): string {
    return toHex(marshal(TPMT_PUBLIC, this.akPublic));
  }

  /** Broker evidence ({quote, signature, pcrs}) over `pcrs` (bank → index → hex) with `binding`. */
  async quote(binding: Uint8Array, pcrs: Record<string, Record<string, string>>): Promise<Record<string, unknown>> {
    const selection = Object.entries(pcrs).map(([bank, values]) => ({ hash: hashAlgFromLabel(bank), pcrs: Object.keys(values).map(Number).sort((a, b) => a - b) }));
    const ordered: Uint8Array[] = [];
    for (const values of Object.values(pcrs)) {
      for (const index of Object.keys(values).map(Number).sort((a, b) => a - b)) ordered.push(Buffer.from(values[String(index)], 'hex'));
    }
    this.#clock += 1n;
    const attestBytes = marshal(TPMS_ATTEST, {
      magic: TPM_GENERATED_VALUE,
      qualifiedSigner: Buffer.from(this.akName, 'hex'),
      extraData: binding,
      clockInfo: { clock: this.#clock, resetCount: 1, restartCount: 0, safe: true },
      firmwareVersion: 0x2000100000000n,
      attested: { type: TPM_ST.ATTEST_QUOTE, pcrSelect: selection, pcrDigest: await digest('SHA-256', concatBytes(...ordered)) },
    });
    const raw = sign('sha256', attestBytes, { key: this.#privateKey, dsaEncoding: 'ieee-p1363' });
    const signature = marshal(TPMT_SIGNATURE, { sigAlg: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256, r: raw.subarray(0, 32), s: raw.subarray(32) });
    return { quote: Buffer.from(attestBytes).toString('base64url'), signature: Buffer.from(signature).toString('base64url'), pcrs };
  }
}
