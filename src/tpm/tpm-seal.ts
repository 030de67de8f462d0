import { SigilError } from '../core/errors.ts';
import { fromHex, toHex } from '../core/hex.ts';
import { hashAlg, hashAlgFromLabel } from './algorithms.ts';
import { create, load, unseal as unsealCommand } from './commands/object.ts';
import { TPM_ALG } from './constants.ts';
import { marshal, unmarshal } from './marshal/codec.ts';
import { PolicyCalculator } from './policy/calculator.ts';
import { HmacSession } from './session/hmac.ts';
import { PolicySession } from './session/policy.ts';
import { TPM2B_PRIVATE, type PcrSelection } from './structures/basic.ts';
import { TPM2B_PUBLIC } from './structures/public.ts';
import { sealedDataTemplate } from './templates.ts';
import { storageKey, type LoadedKey } from './tpm-keys.ts';
import type { Tpm } from './tpm.ts';

/**
 * Seal a secret under PolicyPCR and unseal it. Both directions salt their session to the SRK
 * and encrypt the secret-bearing parameter (Create's inSensitive, Unseal's outData), so the secret
 * never crosses the TPM transport in clear. The sealed blob is the TPM's own encrypted private
 * part plus the public area, stored as JSON with hex fields; nothing in it is secret.
 */
export interface SealedObject {
  format: 'sigil.sealed.v1';
  /** TPM2B_PUBLIC and TPM2B_PRIVATE as the TPM marshals them (what tpm2_load -u / -r read). */
  public: string;
  private: string;
  /** The PCRs the policy binds, e.g. [{ bank: 'sha256', pcrs: [7] }]. */
  pcrs: { bank: string; pcrs: number[] }[];
  policyDigest: string;
  /** Which parent the object was created under (its name, hex). */
  parentName: string;
}

export interface SealOptions {
  secret: Uint8Array;
  selection: PcrSelection[];
  /** PCR values to seal to (bank → index → value); the TPM's current values when absent. */
  pcrValues?: Map<number, Map<number, Uint8Array>>;
}

export function selectionFromSpec(spec: string): PcrSelection[] {
  // "sha256:0,7+sha1:7" (tpm2-tools' syntax)
  return spec.split('+').map((part) => {
    const [bank, list] = part.split(':');
    if (!bank || !list) throw new SigilError('cli.usage_pcr_spec', `"${part}" is not a PCR selection like sha256:0,7`);
    const pcrs = list.split(',').map((p) => Number(p));
    if (pcrs.some((p) => !Number.isInteger(p) || p < 0 || p > 23)) throw new SigilError('cli.usage_pcr_spec', `PCR indexes in "${part}" must be 0..23`);
    return { hash: hashAlgFromLabel(bank), pcrs: [...new Set(pcrs)].sort((a, b) => a - b) };
  });
}

/** The PolicyPCR digest for a selection and its values (policy hash SHA-256). */
export async function pcrPolicyDigest(selection: PcrSelection[], values: Map<number, Map<number, Uint8Array>>): Promise<Uint8Array> {
  const ordered: Uint8Array[] = [];
  for (const bank of selection) {
    for (const index of bank.pcrs) {
      const value = values.get(bank.hash)?.get(index);
      if (!value) throw new SigilError('tpm.pcr_value_missing', `no value for PCR ${hashAlg(bank.hash).label}:${index}`);
      ordered.push(value);
    }
  }
  return new PolicyCalculator(TPM_ALG.SHA256).policyPCR(selection, ordered).digest();
}

async function withStorageKey<T>(tpm: Tpm, use: (srk: LoadedKey) => Promise<T>): Promise<T> {
  const srk = await storageKey(tpm);
  try {
    return await use(srk);
  } finally {
    if (srk.transient) await tpm.flush(srk.handle).catch(() => undefined);
  }
}

export async function seal(tpm: Tpm, options: SealOptions): Promise<SealedObject> {
  const values = options.pcrValues ?? (await tpm.readSelection(options.selection));
  const policyDigest = await pcrPolicyDigest(options.selection, values);
  return withStorageKey(tpm, async (srk) => {
    const session = await HmacSession.start(tpm.client, { salt: { handle: srk.handle, publicArea: srk.publicArea }, decrypt: true });
    try {
      const created = await tpm.client.run(
        create({ handle: srk.handle, name: srk.name, session }, { inSensitive: { data: options.secret }, inPublic: sealedDataTemplate({ authPolicy: policyDigest }) }),
      );
      return {
        format: 'sigil.sealed.v1',
        public: toHex(marshal(TPM2B_PUBLIC, created.outPublic)),
        private: toHex(marshal(TPM2B_PRIVATE, created.outPrivate)),
        pcrs: options.selection.map((s) => ({ bank: hashAlg(s.hash).label, pcrs: s.pcrs })),
        policyDigest: toHex(policyDigest),
        parentName: toHex(srk.name),
      };
    } finally {
      await session.flush(tpm.client).catch(() => undefined);
    }
  });
}

/** Check a parsed JSON value is a SealedObject and return its binary parts. */
export function readSealedObject(value: unknown) {
  const v = value as Partial<SealedObject>;
  if (!v || v.format !== 'sigil.sealed.v1' || typeof v.public !== 'string' || typeof v.private !== 'string' || !Array.isArray(v.pcrs)) {
    throw new SigilError('tpm.sealed_object_invalid', 'not a Sigil sealed object (format sigil.sealed.v1)');
  }
  return {
    publicArea: unmarshal(TPM2B_PUBLIC, fromHex(v.public), 'tpm.sealed_object_invalid'),
    privateBlob: unmarshal(TPM2B_PRIVATE, fromHex(v.private), 'tpm.sealed_object_invalid'),
    selection: v.pcrs.map((p) => ({ hash: hashAlgFromLabel(String(p.bank)), pcrs: p.pcrs.map(Number) })),
  };
}

/** Unseal: satisfy PolicyPCR in a salted policy session that also encrypts the response. */
export async function unseal(tpm: Tpm, sealed: SealedObject): Promise<Uint8Array> {
  const { publicArea, privateBlob, selection } = readSealedObject(sealed);
  return withStorageKey(tpm, async (srk) => {
    const loaded = await tpm.client.run(load({ handle: srk.handle, name: srk.name }, privateBlob, publicArea));
    return tpm.using(loaded.handle, async () => {
      const policy = await PolicySession.start(tpm.client, { salt: { handle: srk.handle, publicArea: srk.publicArea }, encrypt: true });
      try {
        await policy.policyPCR(selection);
        return await policy.run(unsealCommand({ handle: loaded.handle, name: loaded.name, session: policy }));
      } finally {
        await policy.flush(tpm.client).catch(() => undefined);
      }
    });
  });
}
