import { SigilError } from '../../core/errors.ts';
import { statusOf, type Appraisal, type Verified } from '../verifier.ts';
import { appraiseTpmBundle } from './bundle-appraise.ts';
import { checkTpmBundlePolicy, type TpmBundlePolicy } from './bundle-policy.ts';
import type { TpmClaims } from './kind.ts';

/**
 * The broker's TPM appraisal: the TPM bundle policy (bundle-policy.ts) — PCR reference values and
 * the event-log claims (Secure Boot, EFI applications, kernel command line, initrd, UKI sections,
 * separators, ExitBootServices, accepted quirks) and IMA — over the verified claims. Reference
 * values name, per bank and PCR index, the digests that are acceptable (several, e.g. before and
 * after a firmware update). A policy that names no reference value for what ran (no PCR, no
 * event-log digest, no IMA file) fails closed, and so does a named PCR the quote did not cover.
 *
 *   { "pcrs": { "sha256": { "7": ["hex", …] } }, "requireSafeClock": true,
 *     "requireSecureBoot": true, "allowedEfiApplications": ["hex"], "allowedKernelCmdlines": ["text"], … }
 */
export type TpmAppraisalPolicy = TpmBundlePolicy;

function fail(why: string): never {
  throw new SigilError('policy.reference_values_invalid', `TPM reference values: ${why}`, { kind: 'tpm' });
}

export function checkTpmPolicy(referenceValues: unknown): TpmAppraisalPolicy {
  if (typeof referenceValues !== 'object' || referenceValues === null || Array.isArray(referenceValues)) fail('expected an object, e.g. {"pcrs": {"sha256": {"7": ["hex"]}}}');
  let policy: TpmBundlePolicy;
  try {
    policy = checkTpmBundlePolicy(referenceValues);
  } catch (error) {
    if (error instanceof SigilError) fail(error.message.replace(/^TPM policy: /, ''));
    throw error;
  }
  // An empty list of acceptable values would fail every quote: a mistake, not a policy.
  for (const [bank, indexes] of Object.entries(policy.pcrs ?? {})) {
    for (const [index, values] of Object.entries(indexes)) if (values.length === 0) fail(`${bank}:${index} needs one or more hex digests`);
  }
  for (const key of ['allowedEfiApplications', 'allowedKernelCmdlines', 'allowedKernelCmdlineDigests', 'allowedInitrdDigests'] as const) {
    if (policy[key]?.length === 0) fail(`"${key}" is empty: leave it out, or list what is allowed`);
  }
  return policy;
}

/** Whether the policy names anything that pins what ran: PCR values, event-log digests, IMA files. */
function namesReferenceValue(policy: TpmAppraisalPolicy): boolean {
  const pcrs = Object.values(policy.pcrs ?? {}).some((indexes) => Object.keys(indexes).length > 0);
  const log = [policy.allowedEfiApplications, policy.allowedKernelCmdlines, policy.allowedKernelCmdlineDigests, policy.allowedInitrdDigests].some((list) => (list?.length ?? 0) > 0);
  const uki = Object.keys(policy.allowedUkiSections ?? {}).length > 0;
  const ima = Object.keys(policy.ima?.allowedFiles ?? {}).length > 0;
  return pcrs || log || uki || ima;
}

export function appraiseTpm(evidence: Verified<TpmClaims>, policy: TpmAppraisalPolicy): Appraisal {
  const appraisal = appraiseTpmBundle(evidence, policy);
  if (namesReferenceValue(policy)) return appraisal;
  const trace = [
    {
      rule: 'tpm.reference-values',
      claim: 'pcrs | eventLog | ima',
      expected: 'at least one reference value (a PCR, an event-log digest or an IMA file)',
      actual: 'none',
      result: 'fail' as const,
      message: 'the policy names no reference value: nothing to appraise, so it fails closed',
    },
    ...appraisal.trace,
  ];
  return { ...appraisal, status: statusOf(trace), trustVector: { ...appraisal.trustVector, configuration: 96, executables: 96 }, trace };
}
