import { Writer } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { auth } from '../tpm/command.ts';
import { nvDefineSpace, nvIncrement, nvReadPublic } from '../tpm/commands/nv.ts';
import { TPM_ALG, TPM_NT, TPM_RH, TPMA_NV, nvTypeBits } from '../tpm/constants.ts';
import { nvName } from '../tpm/names.ts';
import type { NvPublic } from '../tpm/structures/nv.ts';
import { nvCounterRead } from '../tpm/tpm-nv.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { RELEASE_FLOOR_NV_INDEX, handleText } from './identifiers.ts';

/**
 * Anti-rollback: a TPM NV counter (TPM_NT_COUNTER at 0x01500101) holds the lowest release the
 * device accepts. Signed boot policies and release manifests carry a release number; one below
 * the floor is refused, in software here and, for boot policies, by the TPM itself: each signed
 * policy contains PolicyNV(floor index, release as 8-byte big-endian, offset 0, UNSIGNED_LE),
 * i.e. "floor ≤ my release", which stops holding for every older policy once the floor passes it.
 *
 * Why a counter: it only ever goes up, even across TPM2_NV_UndefineSpace (a redefined counter
 * starts above the highest value any counter had), and it is not ORDERLY, so a power cut cannot
 * make it jump (an orderly counter may skip ahead after a non-orderly shutdown, stranding the
 * current release). Attributes: AUTHWRITE | AUTHREAD | OWNERREAD | NO_DA with an empty authValue:
 * anyone who can talk to the TPM can raise the floor — which can deny service, never roll back.
 * A counter moves by one per NV_Increment, so releases are expected to be numbered 1, 2, 3, ...
 */

const ATTRIBUTES = nvTypeBits(TPM_NT.COUNTER) | TPMA_NV.AUTHWRITE | TPMA_NV.AUTHREAD | TPMA_NV.OWNERREAD | TPMA_NV.NO_DA;
/** One acceptance may raise the floor at most this far (NV wear; a mistyped release must not brick a device). */
export const MAX_FLOOR_STEP = 1000;
export const MAX_RELEASE = 0xffffffff;

/** The floor index's public area once written: what its name — bound into every signed policy — hashes. */
export function releaseFloorNvPublic(): NvPublic {
  return { nvIndex: RELEASE_FLOOR_NV_INDEX, nameAlg: TPM_ALG.SHA256, attributes: ATTRIBUTES | TPMA_NV.WRITTEN, authPolicy: new Uint8Array(0), dataSize: 8 };
}

export function releaseFloorName(): Promise<Uint8Array> {
  return nvName(releaseFloorNvPublic());
}

/** The PolicyNV operand for a release: its 8-byte big-endian value. */
export function releaseOperand(release: number): Uint8Array {
  checkRelease(release);
  return new Writer(8).u32(0).u32(release).finish();
}

export function checkRelease(release: unknown, code = 'device.release_invalid'): number {
  if (typeof release !== 'number' || !Number.isSafeInteger(release) || release < 1 || release > MAX_RELEASE) {
    throw new SigilError(code, `a release number is a whole number from 1 to ${MAX_RELEASE}`, { release: String(release) });
  }
  return release;
}

async function floorDefined(tpm: Tpm): Promise<NvPublic | undefined> {
  try {
    return (await tpm.client.run(nvReadPublic(RELEASE_FLOOR_NV_INDEX))).nvPublic;
  } catch (error) {
    if (error instanceof SigilError && error.code === 'tpm.rc.handle') return undefined;
    throw error;
  }
}

/**
 * Provisioning: define the counter (owner authorization) and raise it to `initialRelease`. A TPM
 * whose counters already ran higher (a redefined counter starts above every earlier one) cannot
 * start at a lower release: that is refused, since policies for it would never unseal.
 */
export async function defineReleaseFloor(tpm: Tpm, initialRelease: number, ownerAuth?: Uint8Array): Promise<number> {
  checkRelease(initialRelease);
  if (await floorDefined(tpm)) throw new SigilError('device.already_provisioned', `NV index ${handleText(RELEASE_FLOOR_NV_INDEX)} (release floor) already exists`);
  const define = { ...releaseFloorNvPublic(), attributes: ATTRIBUTES };
  await tpm.client.run(nvDefineSpace(auth(TPM_RH.OWNER, ownerAuth), new Uint8Array(0), define));
  await tpm.client.run(nvIncrement(auth(RELEASE_FLOOR_NV_INDEX), RELEASE_FLOOR_NV_INDEX));
  const first = await readReleaseFloor(tpm);
  if (first > initialRelease) {
    throw new SigilError('device.release_floor_too_high', `this TPM's release counter starts at ${first}, above the initial release ${initialRelease}; provision with a release of at least ${first}`, {
      first,
      initialRelease,
    });
  }
  return advanceReleaseFloor(tpm, initialRelease);
}

export async function readReleaseFloor(tpm: Tpm): Promise<number> {
  const info = await floorDefined(tpm);
  if (!info) throw new SigilError('device.not_provisioned', `this TPM has no release floor (NV ${handleText(RELEASE_FLOOR_NV_INDEX)}): provision it first`);
  if (info.attributes !== (ATTRIBUTES | TPMA_NV.WRITTEN) || info.dataSize !== 8 || info.authPolicy.length !== 0) {
    throw new SigilError('device.release_floor_invalid', `NV ${handleText(RELEASE_FLOOR_NV_INDEX)} is not a Sigil release floor counter`, { attributes: info.attributes });
  }
  const value = await nvCounterRead(tpm, RELEASE_FLOOR_NV_INDEX);
  if (value > BigInt(MAX_RELEASE)) throw new SigilError('device.release_floor_invalid', `the release floor ${value} is beyond any release`);
  return Number(value);
}

/** Refuse a release below the floor (rollback). Returns the floor. */
export async function assertNotRolledBack(tpm: Tpm, release: number, what: string): Promise<number> {
  const floor = await readReleaseFloor(tpm);
  if (release < floor) {
    throw new SigilError('device.release_rolled_back', `the ${what} is for release ${release}, older than this device's lowest accepted release ${floor}`, { release, floor });
  }
  return floor;
}

/** Raise the floor to `release` (never lower it). Returns the new floor. */
export async function advanceReleaseFloor(tpm: Tpm, release: number): Promise<number> {
  checkRelease(release);
  let floor = await readReleaseFloor(tpm);
  if (release < floor) throw new SigilError('device.release_rolled_back', `release ${release} is older than this device's lowest accepted release ${floor}`, { release, floor });
  if (release - floor > MAX_FLOOR_STEP) {
    throw new SigilError('device.release_step_too_large', `raising the release floor from ${floor} to ${release} exceeds the ${MAX_FLOOR_STEP}-release limit per step`, { release, floor });
  }
  while (floor < release) {
    await tpm.client.run(nvIncrement(auth(RELEASE_FLOOR_NV_INDEX), RELEASE_FLOOR_NV_INDEX));
    floor = await readReleaseFloor(tpm);
  }
  return floor;
}
