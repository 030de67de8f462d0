import { constantTimeEqual } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { hashAlg } from '../tpm/algorithms.ts';
import { importObject } from '../tpm/commands/duplication.ts';
import { load, unseal } from '../tpm/commands/object.ts';
import { TPM_CC } from '../tpm/constants.ts';
import { PolicySession } from '../tpm/session/policy.ts';
import { storageKey, type LoadedKey } from '../tpm/tpm-keys.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { readDeviceIdentity } from '../device/device-identity.ts';
import type { VendorTrust } from '../device/trust.ts';
import { findRecipient, parseBundle, payloadAad, verifyBundleSignature, type BundleRecipient, type SealedBundle } from './bundle-format.ts';
import { checkArtefacts, decodePayload, decryptPayload, type Artefacts, type ArtefactName } from './payload.ts';

/**
 * Device side (`sigil bundle open`): who am I (device certificate in NV, chained to the vendor's
 * manufacturing CA) → is the bundle for my product and signed by its key → am I a recipient, with
 * this very storage key → are my PCRs the sealed ones (so a refusal names them) → TPM: Import the
 * wrapped data key under the SRK, Load, satisfy PolicyPCR + PolicyCommandCode(Unseal) in a session
 * salted to the SRK with response encryption, Unseal → decrypt the payload (AAD: bundle ID, epoch,
 * recipients) → every artefact the bundle names matches → secrets.
 */
export interface OpenBundleOptions {
  trust: VendorTrust;
  /** File bytes or text, or a parsed bundle. */
  bundle: unknown;
  /** What is about to boot: checked against the bundle's integrity digests. */
  artefacts: Artefacts;
  /** Refuse bundles of an older epoch (the device remembers the newest it has seen). */
  minEpoch?: number;
}

export interface OpenedBundle {
  bundleId: string;
  productId: string;
  epoch: number;
  serial: string;
  /** The artefacts that were compared and matched. */
  checked: ArtefactName[];
  secrets: Map<string, Uint8Array>;
}

function isBundle(value: unknown): value is SealedBundle {
  return typeof value === 'object' && value !== null && Array.isArray((value as SealedBundle).recipients) && (value as SealedBundle).payload?.iv instanceof Uint8Array;
}

/** Compare the TPM's PCRs with a recipient's sealed values, naming every difference. */
async function assertPcrsMatch(tpm: Tpm, recipient: BundleRecipient): Promise<void> {
  const current = await tpm.readSelection(recipient.pcrPolicy.selection);
  const differing: { pcr: string; expected: string; actual: string }[] = [];
  for (const bank of recipient.pcrPolicy.selection) {
    for (const pcr of bank.pcrs) {
      const expected = recipient.pcrPolicy.values.get(bank.hash)!.get(pcr)!;
      const actual = current.get(bank.hash)!.get(pcr)!;
      if (!constantTimeEqual(expected, actual)) differing.push({ pcr: `${hashAlg(bank.hash).label}:${pcr}`, expected: toHex(expected), actual: toHex(actual) });
    }
  }
  if (differing.length > 0) {
    throw new SigilError('bundle.pcr_mismatch', `this machine's boot state differs from the one the bundle was sealed to in PCR ${differing.map((d) => d.pcr).join(', ')}`, { differing });
  }
}

/**
 * The TPM half alone: import one recipient's wrapped data key under this TPM's storage key and
 * unseal it under its PCR policy. The TPM decides — tests call this directly with another
 * machine's wrap, or with PCRs that differ, to show the TPM refuses on its own.
 */
export async function unwrapDataKey(tpm: Tpm, recipient: BundleRecipient): Promise<Uint8Array> {
  const srk = await storageKey(tpm);
  try {
    return await unwrapUnder(tpm, srk, recipient);
  } finally {
    if (srk.transient) await tpm.flush(srk.handle).catch(() => undefined);
  }
}

async function unwrapUnder(tpm: Tpm, srk: LoadedKey, recipient: BundleRecipient): Promise<Uint8Array> {
  const parent = { handle: srk.handle, name: srk.name };
  const sealed = recipient.sealedKey;
  let outPrivate: Uint8Array;
  try {
    outPrivate = await tpm.client.run(importObject(parent, { objectPublic: sealed.publicArea, duplicate: sealed.duplicate, inSymSeed: sealed.seed }));
  } catch (error) {
    // The outer wrapper's HMAC is keyed by a seed only the intended storage key recovers.
    if (error instanceof SigilError && /^tpm\.rc\.(integrity|value|ecc_point|key|size)/.test(error.code)) {
      throw new SigilError('bundle.not_for_this_tpm', "the TPM refused the wrapped data key: it was wrapped to another TPM's storage key (or altered)", { tpmError: error.code }, { cause: error });
    }
    throw error;
  }
  const object = await tpm.client.run(load(parent, outPrivate, sealed.publicArea));
  return tpm.using(object.handle, async () => {
    const session = await PolicySession.start(tpm.client, { salt: { handle: srk.handle, publicArea: srk.publicArea }, encrypt: true });
    try {
      await session.policyPCR(recipient.pcrPolicy.selection);
      await session.policyCommandCode(TPM_CC.Unseal);
      try {
        return await session.run(unseal({ handle: object.handle, name: object.name, session }));
      } catch (error) {
        if (error instanceof SigilError && (error.code === 'tpm.policy_pcr_mismatch' || error.code.startsWith('tpm.rc.policy'))) {
          throw new SigilError('bundle.pcr_mismatch', 'the TPM refused to unseal the data key: the PCRs are not the sealed values', error.details, { cause: error });
        }
        throw error;
      }
    } finally {
      await session.flush(tpm.client).catch(() => undefined);
    }
  });
}

/** Open a bundle on this device. Secrets are returned only when every check passed. */
export async function openBundle(tpm: Tpm, options: OpenBundleOptions): Promise<OpenedBundle> {
  const bundle = isBundle(options.bundle) ? options.bundle : await parseBundle(options.bundle);
  const identity = await readDeviceIdentity(tpm, options.trust);
  verifyBundleSignature(bundle, options.trust, identity.productId);
  if (options.minEpoch !== undefined && bundle.epoch < options.minEpoch) {
    throw new SigilError('bundle.epoch_rolled_back', `bundle ${bundle.bundleId} is epoch ${bundle.epoch}; this device already accepts only epoch ${options.minEpoch} or newer`, {
      epoch: bundle.epoch,
      minEpoch: options.minEpoch,
    });
  }
  const recipient = findRecipient(bundle, identity.serial);
  if (!recipient) {
    throw new SigilError('bundle.not_a_recipient', `device ${identity.serial} is not a recipient of bundle ${bundle.bundleId} (epoch ${bundle.epoch}): it was never listed, or it was revoked`, {
      serial: identity.serial,
      bundleId: bundle.bundleId,
      epoch: bundle.epoch,
    });
  }
  const srk = await storageKey(tpm);
  let dataKey: Uint8Array | undefined;
  let plaintext: Uint8Array | undefined;
  try {
    if (!constantTimeEqual(srk.name, recipient.storageKey.name)) {
      throw new SigilError('bundle.storage_key_mismatch', `the bundle was sealed to another storage key than this TPM's for device ${identity.serial} (was the TPM cleared?)`, {
        expected: toHex(recipient.storageKey.name),
        actual: toHex(srk.name),
      });
    }
    await assertPcrsMatch(tpm, recipient);
    dataKey = await unwrapUnder(tpm, srk, recipient);
    plaintext = decryptPayload(dataKey, bundle.payload, payloadAad(bundle));
    const payload = decodePayload(plaintext);
    try {
      const checked = checkArtefacts(payload.integrity, options.artefacts);
      return { bundleId: bundle.bundleId, productId: bundle.productId, epoch: bundle.epoch, serial: identity.serial, checked, secrets: payload.secrets };
    } catch (error) {
      for (const value of payload.secrets.values()) value.fill(0);
      throw error;
    }
  } finally {
    dataKey?.fill(0);
    plaintext?.fill(0);
    if (srk.transient) await tpm.flush(srk.handle).catch(() => undefined);
  }
}
