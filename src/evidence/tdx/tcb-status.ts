/**
 * TCB statuses as Intel's PCS and QVL name them (PCS API v4 "TCB Info", QVL TcbStatus).
 * TDRelaunchAdvised* come from the TDX 1.5 relaunch check (TEE_TCB_SVN2), not from PCS.
 */
export const TCB_STATUSES = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
  'TDRelaunchAdvised',
  'TDRelaunchAdvisedConfigurationNeeded',
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

/** Statuses a TCB Info level may carry. */
export const TCB_LEVEL_STATUSES: readonly TcbStatus[] = TCB_STATUSES.slice(0, 7);
/** Statuses a QE identity level or a TDX module identity level may carry. */
export const IDENTITY_LEVEL_STATUSES: readonly TcbStatus[] = ['UpToDate', 'OutOfDate', 'Revoked'];

export function isConfigurationNeeded(status: TcbStatus): boolean {
  return status === 'ConfigurationNeeded' || status === 'OutOfDateConfigurationNeeded' || status === 'ConfigurationAndSWHardeningNeeded' || status === 'TDRelaunchAdvisedConfigurationNeeded';
}

/**
 * Combine a platform TCB status with an identity's status (the TDX module's or the QE's), as
 * Intel's QVL convergeTcbStatusWithTdxModuleStatus / convergeTcbStatusWithQeTcbStatus do: an
 * out-of-date identity makes an otherwise fine platform OutOfDate, and a revoked one Revoked.
 */
export function convergeStatus(platform: TcbStatus, identity: TcbStatus): TcbStatus {
  if (identity === 'OutOfDate') {
    if (platform === 'UpToDate' || platform === 'SWHardeningNeeded') return 'OutOfDate';
    if (platform === 'ConfigurationNeeded' || platform === 'ConfigurationAndSWHardeningNeeded') return 'OutOfDateConfigurationNeeded';
  }
  if (identity === 'Revoked') return 'Revoked';
  return platform;
}
