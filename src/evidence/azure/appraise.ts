import { SigilError } from '../../core/errors.ts';
import { appraiseSnp, type SnpAppraisalPolicy } from '../snp/appraise.ts';
import { appraiseTdx, type TdxPolicy } from '../tdx/appraise.ts';
import { isVerified, statusOf, TRUST_TIER, verified, type Appraisal, type TraceEntry, type TrustVector, type Verified } from '../verifier.ts';
import type { AzureSnpClaims, AzureTdxClaims } from './verify.ts';

/**
 * Appraisal of verified Azure CVM claims: the TEE's own appraisal (appraiseSnp / appraiseTdx on
 * the hardware claims) plus the rules only Azure evidence has — vTPM PCR reference values, the
 * HCL's vm-configuration and user-data. Crypto is done; this only compares. Secure defaults: a VM
 * without Secure Boot or without its vTPM enabled is refused unless the policy allows it.
 */
export interface AzureVmPolicy {
  /** Default true: vm-configuration "secure-boot" must be true. */
  requireSecureBoot?: boolean;
  /** Default true: vm-configuration "tpm-enabled" must be true. */
  requireTpmEnabled?: boolean;
  /** When false, a VM with the serial console enabled is refused; unset: not checked. */
  allowConsole?: boolean;
}

export interface AzureCommonPolicy {
  /** Reference values for the vTPM's SHA-256 PCRs: index → accepted hex value(s). */
  pcrs?: Record<string, string | string[]>;
  vm?: AzureVmPolicy;
  /** The expected HCL user-data (hex, zero-extended to 64 bytes). */
  userData?: string;
  /** Require that user-data was bound to the quote nonce (evidence v2). */
  requireUserDataBound?: boolean;
  /** Accepted AK thumbprints (RFC 7638, base64url), e.g. AKs enrolled for known VMs. */
  akThumbprints?: string[];
}

export interface AzureSnpPolicy extends AzureCommonPolicy {
  snp?: SnpAppraisalPolicy;
}

export interface AzureTdxPolicy extends AzureCommonPolicy {
  tdx?: TdxPolicy;
}

type Component = keyof TrustVector;
type Rule = TraceEntry & { component: Component };

function hex(value: string, what: string, bytes?: number): string {
  const clean = value.toLowerCase().replace(/^0x/, '');
  if (!/^([0-9a-f]{2})*$/.test(clean) || (bytes !== undefined && clean.length > bytes * 2)) {
    throw new SigilError('azure.policy_invalid', `${what} "${value}" is not ${bytes ? `at most ${bytes} bytes of ` : ''}hex`);
  }
  return bytes === undefined ? clean : clean.padEnd(bytes * 2, '0');
}

/** Validate a policy's Azure-specific parts (the TEE parts are validated by their appraisers). */
export function checkAzurePolicy<P extends AzureCommonPolicy>(value: unknown): P {
  if (value === undefined || value === null) return {} as P;
  if (typeof value !== 'object' || Array.isArray(value)) throw new SigilError('azure.policy_invalid', 'an Azure policy must be an object');
  const policy = value as AzureCommonPolicy;
  for (const [index, expected] of Object.entries(policy.pcrs ?? {})) {
    if (!/^\d{1,2}$/.test(index) || Number(index) > 23) throw new SigilError('azure.policy_invalid', `PCR index "${index}" is not 0-23`);
    for (const v of Array.isArray(expected) ? expected : [expected]) {
      if (typeof v !== 'string' || hex(v, `PCR ${index}`).length !== 64) throw new SigilError('azure.policy_invalid', `PCR ${index} reference "${String(v)}" is not a SHA-256 value`);
    }
  }
  if (policy.userData !== undefined) hex(policy.userData, 'userData', 64);
  return value as P;
}

function azureRules(claims: AzureSnpClaims | AzureTdxClaims, policy: AzureCommonPolicy): Rule[] {
  const rules: Rule[] = [];
  const add = (component: Component, rule: string, claim: string, expected: unknown, actual: unknown, result: TraceEntry['result'], message?: string) =>
    rules.push({ component, rule, claim, expected, actual, result, ...(message ? { message } : {}) });
  const sha256 = claims.tpm.pcrs.sha256 ?? {};
  const references = Object.entries(policy.pcrs ?? {});
  if (references.length === 0) add('executables', 'azure.pcr', 'tpm.pcrs.sha256', 'any', null, 'skip', 'no PCR reference values in the policy');
  for (const [index, expected] of references) {
    const allowed = (Array.isArray(expected) ? expected : [expected]).map((v) => hex(v, `PCR ${index}`));
    const actual = sha256[Number(index)];
    add('executables', 'azure.pcr', `tpm.pcrs.sha256[${index}]`, allowed, actual ?? null, actual !== undefined && allowed.includes(actual) ? 'pass' : 'fail');
  }
  const vm = claims.hcl.vmConfiguration;
  const want = policy.vm ?? {};
  if (want.requireSecureBoot !== false) add('configuration', 'azure.vm_secure_boot', 'hcl.vmConfiguration.secureBoot', true, vm.secureBoot ?? null, vm.secureBoot === true ? 'pass' : 'fail');
  else add('configuration', 'azure.vm_secure_boot', 'hcl.vmConfiguration.secureBoot', 'any', vm.secureBoot ?? null, 'skip', 'the policy allows VMs without Secure Boot');
  if (want.requireTpmEnabled !== false) add('configuration', 'azure.vm_tpm_enabled', 'hcl.vmConfiguration.tpmEnabled', true, vm.tpmEnabled ?? null, vm.tpmEnabled === true ? 'pass' : 'fail');
  if (want.allowConsole === false) add('configuration', 'azure.vm_console', 'hcl.vmConfiguration.consoleEnabled', false, vm.consoleEnabled ?? null, vm.consoleEnabled === false ? 'pass' : 'fail');
  if (policy.userData !== undefined) {
    const expected = hex(policy.userData, 'userData', 64);
    add('instance_identity', 'azure.user_data', 'hcl.userData', expected, claims.hcl.userData ?? null, claims.hcl.userData === expected ? 'pass' : 'fail');
  }
  if (policy.requireUserDataBound) add('instance_identity', 'azure.user_data_bound', 'hcl.userDataBound', true, claims.hcl.userDataBound, claims.hcl.userDataBound ? 'pass' : 'fail');
  if (policy.akThumbprints) {
    add('instance_identity', 'azure.ak_thumbprint', 'hcl.akThumbprint', policy.akThumbprints, claims.hcl.akThumbprint, policy.akThumbprints.includes(claims.hcl.akThumbprint) ? 'pass' : 'fail');
  }
  return rules;
}

function combine(inner: Appraisal, rules: Rule[]): Appraisal {
  const trace = [...inner.trace, ...rules.map(({ component: _component, ...entry }) => entry)];
  const vector: TrustVector = { ...inner.trustVector };
  const components = new Set(rules.filter((r) => r.result !== 'skip').map((r) => r.component));
  for (const component of components) {
    const tier = TRUST_TIER[statusOf(rules.filter((r) => r.component === component))];
    vector[component] = Math.max(vector[component] ?? 0, tier);
  }
  return { status: statusOf(trace), trustVector: vector, trace };
}

export function appraiseAzureSnp(evidence: Verified<AzureSnpClaims>, policy: AzureSnpPolicy = {}): Appraisal {
  if (!isVerified(evidence) || evidence.kind !== 'azure-snp') throw new SigilError('azure.not_verified', 'only verified Azure SNP evidence can be appraised');
  // The SNP claims inside were verified by verifyAzureSnp; re-wrapping them lets the SNP appraiser run.
  const inner = appraiseSnp(verified('snp', evidence.claims.snp, evidence.verifiedAt), policy.snp);
  return combine(inner, azureRules(evidence.claims, policy));
}

export function appraiseAzureTdx(evidence: Verified<AzureTdxClaims>, policy: AzureTdxPolicy = {}): Appraisal {
  if (!isVerified(evidence) || evidence.kind !== 'azure-tdx') throw new SigilError('azure.not_verified', 'only verified Azure TDX evidence can be appraised');
  const inner = appraiseTdx(verified('tdx', evidence.claims.tdx, evidence.verifiedAt), policy.tdx);
  return combine(inner, azureRules(evidence.claims, policy));
}
