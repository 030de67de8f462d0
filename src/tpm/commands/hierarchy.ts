import { defineCommand } from '../command.ts';
import { TPM_CC } from '../constants.ts';
import type { AuthHandle } from '../handles.ts';
import { bool } from '../marshal/codec.ts';
import { TPM2B_AUTH } from '../structures/basic.ts';

/**
 * HierarchyChangeAuth, Clear, ClearControl (Part 3, section 24) and the dictionary-attack
 * commands DictionaryAttackLockReset, DictionaryAttackParameters (section 25).
 */

/**
 * TPM2_HierarchyChangeAuth: authHandle @USER (TPM_RH_LOCKOUT, _ENDORSEMENT, _OWNER or _PLATFORM);
 * newAuth TPM2B_AUTH. The password session authorizes with the old value; an empty newAuth
 * removes the password.
 */
export function hierarchyChangeAuth(authHandle: AuthHandle, newAuth: Uint8Array) {
  return defineCommand({
    code: TPM_CC.HierarchyChangeAuth,
    authHandles: [authHandle],
    parameters: (w) => TPM2B_AUTH.write(w, newAuth),
    encryptableCommand: true,
  });
}

/**
 * TPM2_Clear: authHandle @USER (TPM_RH_LOCKOUT or TPM_RH_PLATFORM). Flushes owner and endorsement
 * objects, changes the storage and endorsement seeds, resets owner/endorsement/lockout auth and
 * the DA parameters. Refused (TPM_RC_DISABLED) while ClearControl has disabled it.
 */
export function clear(authHandle: AuthHandle) {
  return defineCommand({ code: TPM_CC.Clear, authHandles: [authHandle] });
}

/** TPM2_ClearControl: auth @USER (lockout or platform); disable TPMI_YES_NO. */
export function clearControl(authHandle: AuthHandle, disable: boolean) {
  return defineCommand({ code: TPM_CC.ClearControl, authHandles: [authHandle], parameters: (w) => bool.write(w, disable) });
}

/** TPM2_DictionaryAttackLockReset: lockHandle @USER (TPM_RH_LOCKOUT). Zeroes the failure counter. */
export function dictionaryAttackLockReset(lockHandle: AuthHandle) {
  return defineCommand({ code: TPM_CC.DictionaryAttackLockReset, authHandles: [lockHandle] });
}

export interface DictionaryAttackSettings {
  /** Authorization failures before lockout (TPM_PT_MAX_AUTH_FAIL). */
  maxTries: number;
  /** Seconds per failure decrement (TPM_PT_LOCKOUT_INTERVAL); 0 disables DA protection. */
  recoveryTime: number;
  /** Seconds after a failed lockoutAuth before another try (TPM_PT_LOCKOUT_RECOVERY). */
  lockoutRecovery: number;
}

/**
 * TPM2_DictionaryAttackParameters: lockHandle @USER (TPM_RH_LOCKOUT); newMaxTries UINT32,
 * newRecoveryTime UINT32, lockoutRecovery UINT32.
 */
export function dictionaryAttackParameters(lockHandle: AuthHandle, settings: DictionaryAttackSettings) {
  return defineCommand({
    code: TPM_CC.DictionaryAttackParameters,
    authHandles: [lockHandle],
    parameters: (w) => w.u32(settings.maxTries).u32(settings.recoveryTime).u32(settings.lockoutRecovery),
  });
}
