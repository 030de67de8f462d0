import { concatBytes, constantTimeEqual } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { hashAlg } from '../tpm/algorithms.ts';
import { auth } from '../tpm/command.ts';
import { verifySignature } from '../tpm/commands/attestation.ts';
import { load, loadExternal, unseal } from '../tpm/commands/object.ts';
import { TPM_CC, TPM_EO, TPM_RH } from '../tpm/constants.ts';
import { approvedPolicyDigest } from '../tpm/policy/index.ts';
import { PolicySession } from '../tpm/session/policy.ts';
import type { Ticket } from '../tpm/structures/basic.ts';
import { storageKey, type LoadedKey } from '../tpm/tpm-keys.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { DEFAULT_LOCKOUT_PCR, parseBootPolicy, policyTpmSignature, verifyBootPolicy, type BootPolicy } from './boot-policy.ts';
import { readDeviceIdentity } from './device-identity.ts';
import { RELEASE_FLOOR_NV_INDEX } from './identifiers.ts';
import { advanceReleaseFloor, assertNotRolledBack, releaseOperand } from './release-floor.ts';
import { assertSealedUnder, openSecrets, parseSealedSecrets, type SealedSecrets } from './sealed-secrets.ts';
import type { VendorTrust } from './trust.ts';

/**
 * Boot-time unseal (`sigil boot unseal`), in the order the MachineOS design gives: read the signed
 * policy, satisfy it, unseal, then extend the lock-out PCR with Sigil's own measurement so nothing
 * later in this boot can satisfy the policy again.
 *
 *  1. who am I: device certificate from NV, chained to the manufacturing CA, certifying the TPM key
 *  2. the policy, in software: vendor signer, product binding, digest, signature; release ≥ floor;
 *     current PCRs equal the signed values (so a refusal names the PCR, not just "policy failed")
 *  3. in the TPM: LoadExternal(vendor key) → VerifySignature → ticket; a policy session salted to
 *     the SRK with response encryption: PolicyPCR, PolicyNV(floor ≤ release), PolicyCommandCode,
 *     PolicyAuthorize(ticket); Unseal the data key; decrypt the secrets
 *  4. always, success or not: PCR_Event(lock-out PCR, "sigil boot-unseal lock-out v1" ‖ 0 ‖
 *     approvedPolicy) — one attempt per boot. Secrets are returned only once the extend succeeded.
 */
export const LOCKOUT_EVENT = 'sigil boot-unseal lock-out v1\0';

export interface BootUnsealOptions {
  trust: VendorTrust;
  /** The signed policy: file contents or an already parsed policy. */
  policy: unknown;
  /** The sealed secrets: file contents or an already parsed value. */
  sealed: unknown;
  /** Raise the release floor to the policy's release after a successful unseal (commit an update). */
  commitRelease?: boolean;
}

export interface BootUnsealResult {
  secrets: Map<string, Uint8Array>;
  productId: string;
  serial: string;
  release: number;
  /** The release floor after the call. */
  floor: number;
  lockout: { pcr: number; extended: boolean };
}

function isPolicy(value: unknown): value is BootPolicy {
  return typeof value === 'object' && value !== null && (value as BootPolicy).approvedPolicy instanceof Uint8Array;
}

function isSealed(value: unknown): value is SealedSecrets {
  return typeof value === 'object' && value !== null && (value as SealedSecrets).privateBlob instanceof Uint8Array;
}

/** Compare the TPM's PCRs with the signed values, naming every difference. */
async function assertPcrsMatch(tpm: Tpm, policy: BootPolicy): Promise<void> {
  const current = await tpm.readSelection(policy.selection);
  const differing: { pcr: string; expected: string; actual: string }[] = [];
  let lockedOut = false;
  for (const bank of policy.selection) {
    for (const pcr of bank.pcrs) {
      const expected = policy.values.get(bank.hash)!.get(pcr)!;
      const actual = current.get(bank.hash)!.get(pcr)!;
      if (constantTimeEqual(expected, actual)) continue;
      if (pcr === policy.lockoutPcr) lockedOut = true;
      differing.push({ pcr: `${hashAlg(bank.hash).label}:${pcr}`, expected: toHex(expected), actual: toHex(actual) });
    }
  }
  if (lockedOut) {
    throw new SigilError('device.locked_out', `the lock-out PCR ${policy.lockoutPcr} was already extended in this boot: secrets were unsealed (or an attempt was made) already; reboot to unseal again`, {
      differing,
    });
  }
  if (differing.length > 0) {
    throw new SigilError('device.pcr_mismatch', `the boot state differs from the signed policy in PCR ${differing.map((d) => d.pcr).join(', ')}`, { differing });
  }
}

async function policyTicket(tpm: Tpm, trust: VendorTrust, policy: BootPolicy): Promise<Ticket> {
  const key = await tpm.client.run(loadExternal(trust.policySigning.tpmPublic, TPM_RH.OWNER));
  return tpm.using(key.handle, async () => {
    if (!constantTimeEqual(key.name, trust.policySigning.name)) throw new SigilError('device.policy_signer_unknown', 'the TPM names the vendor policy key differently than Sigil computed');
    const aHash = await approvedPolicyDigest(trust.policySigning.tpmPublic.nameAlg, policy.approvedPolicy, policy.policyRef);
    try {
      return await tpm.client.run(verifySignature(key.handle, aHash, policyTpmSignature(policy)));
    } catch (error) {
      if (error instanceof SigilError && error.code.startsWith('tpm.rc.signature')) {
        throw new SigilError('device.policy_signature_invalid', "the TPM refused the boot policy's signature", {}, { cause: error });
      }
      throw error;
    }
  });
}

async function unsealDataKey(tpm: Tpm, srk: LoadedKey, sealed: SealedSecrets, policy: BootPolicy, ticket: Ticket, signerName: Uint8Array): Promise<Uint8Array> {
  const object = await tpm.client.run(load({ handle: srk.handle, name: srk.name }, sealed.privateBlob, sealed.publicArea));
  return tpm.using(object.handle, async () => {
    const session = await PolicySession.start(tpm.client, { salt: { handle: srk.handle, publicArea: srk.publicArea }, encrypt: true });
    try {
      await session.policyPCR(policy.selection);
      try {
        await session.policyNV(auth(RELEASE_FLOOR_NV_INDEX), RELEASE_FLOOR_NV_INDEX, releaseOperand(policy.release), 0, TPM_EO.UNSIGNED_LE);
      } catch (error) {
        if (error instanceof SigilError && error.code.startsWith('tpm.rc.policy')) {
          throw new SigilError('device.release_rolled_back', `the TPM refused release ${policy.release}: the release floor is above it`, { release: policy.release }, { cause: error });
        }
        throw error;
      }
      await session.policyCommandCode(TPM_CC.Unseal);
      try {
        await session.policyAuthorize(policy.approvedPolicy, policy.policyRef, signerName, ticket);
      } catch (error) {
        // PolicyAuthorize compares the session's digest with the approved one (TPM_RC_VALUE when
        // they differ). PolicyNV and PolicyCommandCode passed with fixed inputs, so the part that
        // differs is PolicyPCR over the current PCR values.
        if (error instanceof SigilError && error.code === 'tpm.rc.value') {
          throw new SigilError('device.pcr_mismatch', 'the TPM refused the signed policy: the current PCRs are not the ones it approves', {}, { cause: error });
        }
        throw error;
      }
      try {
        return await session.run(unseal({ handle: object.handle, name: object.name, session }));
      } catch (error) {
        if (error instanceof SigilError && error.code === 'tpm.policy_pcr_mismatch') {
          throw new SigilError('device.pcr_mismatch', 'the TPM refused the unseal: the PCRs changed from the signed values', error.details, { cause: error });
        }
        throw error;
      }
    } finally {
      await session.flush(tpm.client).catch(() => undefined);
    }
  });
}

/**
 * The TPM half alone (step 3): the TPM, not Sigil's software checks, decides. bootUnseal runs the
 * software checks first so that a refusal explains itself; tests call this directly to show the
 * TPM refuses on its own.
 */
export async function unsealSecrets(tpm: Tpm, trust: VendorTrust, policy: BootPolicy, sealed: SealedSecrets): Promise<Map<string, Uint8Array>> {
  const srk = await storageKey(tpm);
  let dataKey: Uint8Array | undefined;
  try {
    if (!constantTimeEqual(sealed.parentName, srk.name)) {
      throw new SigilError('device.sealed_secrets_foreign', "the secrets were sealed under another TPM's storage key");
    }
    const ticket = await policyTicket(tpm, trust, policy);
    dataKey = await unsealDataKey(tpm, srk, sealed, policy, ticket, trust.policySigning.name);
    return await openSecrets(sealed, dataKey);
  } finally {
    dataKey?.fill(0);
    if (srk.transient) await tpm.flush(srk.handle).catch(() => undefined);
  }
}

export async function bootUnseal(tpm: Tpm, options: BootUnsealOptions): Promise<BootUnsealResult> {
  const { trust } = options;
  let policy: BootPolicy | undefined;
  let outcome: Omit<BootUnsealResult, 'lockout' | 'secrets'> | undefined;
  let secrets: Map<string, Uint8Array> | undefined;
  let failure: unknown;
  try {
    policy = isPolicy(options.policy) ? options.policy : parseBootPolicy(options.policy);
    const sealed = isSealed(options.sealed) ? options.sealed : parseSealedSecrets(options.sealed);
    const identity = await readDeviceIdentity(tpm, trust);
    await verifyBootPolicy(policy, trust, identity.productId);
    await assertSealedUnder(sealed, trust.policySigning.name, identity.productId);
    let floor = await assertNotRolledBack(tpm, policy.release, 'boot policy');
    await assertPcrsMatch(tpm, policy);
    secrets = await unsealSecrets(tpm, trust, policy, sealed);
    if (options.commitRelease && policy.release > floor) floor = await advanceReleaseFloor(tpm, policy.release);
    outcome = { productId: identity.productId, serial: identity.serial, release: policy.release, floor };
  } catch (error) {
    failure = error;
  }
  const lockoutPcr = policy?.lockoutPcr ?? DEFAULT_LOCKOUT_PCR;
  try {
    await tpm.extendEvent(lockoutPcr, concatBytes(new TextEncoder().encode(LOCKOUT_EVENT), policy?.approvedPolicy ?? new Uint8Array(0)));
  } catch (error) {
    for (const value of secrets?.values() ?? []) value.fill(0);
    if (failure) throw failure;
    throw new SigilError('device.lockout_failed', `the secrets were unsealed but PCR ${lockoutPcr} could not be extended; refusing to hand them out`, {}, { cause: error });
  }
  if (failure) {
    for (const value of secrets?.values() ?? []) value.fill(0);
    throw failure;
  }
  return { ...outcome!, secrets: secrets!, lockout: { pcr: lockoutPcr, extended: true } };
}
