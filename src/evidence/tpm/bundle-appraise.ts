import { statusOf, TRUST_TIER, type Appraisal, type TraceEntry, type TrustVector, type Verified } from '../verifier.ts';
import type { TpmBundlePolicy } from './bundle-policy.ts';
import type { TpmBundleClaims } from './bundle-claims.ts';

/**
 * appraise(): verified TPM claims + TpmBundlePolicy → status, AR4SI trust vector and a trace with
 * one entry per rule. No cryptography here: verify() already decided what the claims are. Each
 * rule feeds one trust-vector claim (instance_identity, configuration, executables, file_system);
 * a claim's tier is the worst of its rules (pass → affirming, warn → warning, fail → contraindicated).
 */
type Category = 'instance_identity' | 'configuration' | 'executables' | 'file_system';

interface Rule extends TraceEntry {
  category: Category;
}

/** PCRs measuring code (PC Client PFP 3.3.4 and the UAPI Linux TPM PCR registry); the rest configuration. */
const CODE_PCRS = new Set([0, 2, 4, 8, 9, 10, 11, 12, 13]);

export function appraiseTpmBundle(evidence: Verified<TpmBundleClaims>, policy: TpmBundlePolicy): Appraisal {
  const claims = evidence.claims;
  const rules: Rule[] = [];
  const add = (category: Category, rule: string, claim: string, expected: unknown, actual: unknown, result: TraceEntry['result'], message?: string) =>
    rules.push({ category, rule, claim, expected, actual, result, ...(message ? { message } : {}) });
  const boot = claims.eventLog?.bootState;
  const verifiedPcrs = new Set(claims.eventLog?.verifiedPcrs ?? []);

  if (policy.akTrustedBy) add('instance_identity', 'tpm.ak-trust', 'ak.trustedBy', policy.akTrustedBy, claims.ak.trustedBy, policy.akTrustedBy.includes(claims.ak.trustedBy) ? 'pass' : 'fail');
  for (const [bank, indexes] of Object.entries(policy.pcrs ?? {})) {
    for (const [index, values] of Object.entries(indexes)) {
      const actual = claims.pcrs[bank]?.[Number(index)];
      add(CODE_PCRS.has(Number(index)) ? 'executables' : 'configuration', `pcr.${bank}:${index}`, `pcrs.${bank}.${index}`, values, actual ?? 'not quoted', actual !== undefined && values.includes(actual) ? 'pass' : 'fail');
    }
  }
  if (policy.requireSafeClock) {
    const safe = claims.quotes.every((q) => q.safe);
    add('configuration', 'tpm.clock-safe', 'quotes[].safe', true, safe, safe ? 'pass' : 'fail');
  }
  if (policy.requireEventLog) add('configuration', 'eventlog.present', 'eventLog', 'a verified event log', claims.eventLog ? 'present' : 'absent', claims.eventLog ? 'pass' : 'fail');
  if (policy.requireSecureBoot) {
    const actual = boot?.secureBoot === undefined || !verifiedPcrs.has(7) ? 'not measured' : boot.secureBoot;
    add('configuration', 'boot.secure-boot', 'eventLog.bootState.secureBoot', true, actual, actual === true ? 'pass' : 'fail');
  }
  if (policy.requiredDbxHashes) {
    const dbx = new Set(boot?.secureBootVariables.dbx?.hashes.map((h) => h.value) ?? []);
    const missing = policy.requiredDbxHashes.filter((h) => !dbx.has(h));
    add('configuration', 'boot.dbx', 'eventLog.bootState.secureBootVariables.dbx', policy.requiredDbxHashes, missing.length ? { missing } : 'all present', missing.length ? 'fail' : 'pass');
  }
  if (policy.allowedEfiApplications) {
    const apps = verifiedPcrs.has(4) ? (boot?.efiApplications.map((a) => a.digest) ?? []) : undefined;
    const unknown = apps?.filter((d) => !policy.allowedEfiApplications!.includes(d)) ?? [];
    const result = apps === undefined || apps.length === 0 ? 'fail' : unknown.length ? 'fail' : 'pass';
    add('executables', 'boot.efi-applications', 'eventLog.bootState.efiApplications', policy.allowedEfiApplications, apps === undefined ? 'PCR 4 not verified' : unknown.length ? { unknown } : apps, result);
  }
  if (policy.allowedKernelCmdlines || policy.allowedKernelCmdlineDigests) {
    const cmdline = boot?.kernelCmdline;
    const ok = cmdline !== undefined && ((cmdline.text !== undefined && (policy.allowedKernelCmdlines ?? []).includes(cmdline.text)) || (cmdline.digest !== undefined && (policy.allowedKernelCmdlineDigests ?? []).includes(cmdline.digest)));
    add('executables', 'boot.kernel-cmdline', 'eventLog.bootState.kernelCmdline', [...(policy.allowedKernelCmdlines ?? []), ...(policy.allowedKernelCmdlineDigests ?? [])], cmdline ?? 'not measured', ok ? 'pass' : 'fail');
  }
  if (policy.allowedInitrdDigests) {
    const initrd = boot?.initrd;
    add('executables', 'boot.initrd', 'eventLog.bootState.initrd', policy.allowedInitrdDigests, initrd ?? 'not measured', initrd && policy.allowedInitrdDigests.includes(initrd.digest) ? 'pass' : 'fail');
  }
  for (const [name, allowed] of Object.entries(policy.allowedUkiSections ?? {})) {
    const sections = boot?.systemd?.ukiSections.filter((s) => s.name === name) ?? [];
    const ok = sections.length > 0 && sections.every((s) => allowed.includes(s.digest));
    add('executables', `boot.uki-section:${name}`, 'eventLog.bootState.systemd.ukiSections', allowed, sections.length ? sections.map((s) => s.digest) : 'not measured', ok ? 'pass' : 'fail');
  }
  if (policy.requireSeparators) {
    const bad = boot ? Object.entries(boot.separators).filter(([, v]) => v !== 'normal').map(([pcr, v]) => `${pcr}:${v}`) : ['no event log'];
    const missing = boot?.missingSeparators ?? [];
    add('configuration', 'boot.separators', 'eventLog.bootState.separators', 'a normal separator in each of PCRs 0-7', bad.length || missing.length ? { bad, missing } : 'all normal', bad.length || missing.length ? 'fail' : 'pass');
  }
  if (policy.requireExitBootServices) {
    const actual = boot?.exitBootServices ?? 'no event log';
    add('configuration', 'boot.exit-boot-services', 'eventLog.bootState.exitBootServices', 'success', actual, actual === 'success' ? 'pass' : 'fail');
  }
  const ids = [...new Set(claims.quirks.map((q) => q.id))];
  for (const id of ids) {
    const allowed = policy.allowedQuirks?.includes(id);
    add('configuration', `eventlog.quirk:${id}`, 'quirks', policy.allowedQuirks ?? 'no quirk listed as accepted', id, allowed ? 'pass' : policy.allowedQuirks ? 'fail' : 'warn');
  }
  if (policy.ima) appraiseIma(claims, policy, add);
  return finish(rules);
}

type Add = (category: Category, rule: string, claim: string, expected: unknown, actual: unknown, result: TraceEntry['result'], message?: string) => void;

function appraiseIma(claims: TpmBundleClaims, policy: TpmBundlePolicy, add: Add): void {
  const ima = claims.ima;
  const p = policy.ima!;
  if (p.required) add('file_system', 'ima.present', 'ima', 'a verified IMA log', ima ? 'present' : 'absent', ima ? 'pass' : 'fail');
  if (!ima) return;
  if (ima.verifiedEntries < ima.totalEntries) {
    add('file_system', 'ima.unverified-entries', 'ima.verifiedEntries', ima.totalEntries, ima.verifiedEntries, 'warn', 'entries after the quote are not covered by it and were not appraised');
  }
  const files = ima.files.filter((f) => !f.violation && f.path !== 'boot_aggregate');
  if (p.allowedFiles) {
    const wrong = files.filter((f) => p.allowedFiles![f.path ?? ''] && !p.allowedFiles![f.path ?? ''].includes(f.fileDigest?.digest ?? '')).map((f) => f.path);
    add('file_system', 'ima.allowed-files', 'ima.files', 'listed files have listed digests', wrong.length ? { wrong } : 'all match', wrong.length ? 'fail' : 'pass');
    const unknown = files.filter((f) => !p.allowedFiles![f.path ?? '']).map((f) => f.path);
    const mode = p.unknownFiles ?? 'ignore';
    if (mode !== 'ignore') add('file_system', 'ima.unknown-files', 'ima.files', 'only listed files', unknown.length ? { unknown } : 'none', unknown.length ? mode : 'pass');
  }
  if (p.requireSignatures) {
    const unsigned = files.filter((f) => !f.signature).map((f) => f.path);
    add('file_system', 'ima.signatures', 'ima.files[].signature', 'every file signed', unsigned.length ? { unsigned } : 'all signed', unsigned.length ? 'fail' : 'pass');
  }
  if (p.requireBootAggregate) {
    const m = ima.bootAggregate?.matches ?? 'absent';
    add('file_system', 'ima.boot-aggregate', 'ima.bootAggregate', 'matches the quoted PCRs 0-9 (or 0-7)', m, m === 'pcrs-0-9' || m === 'pcrs-0-7' ? 'pass' : 'fail');
  }
  if (p.forbidViolations) {
    const count = ima.files.filter((f) => f.violation).length;
    add('file_system', 'ima.violations', 'ima.files[].violation', 0, count, count ? 'fail' : 'pass');
  }
}

function finish(rules: Rule[]): Appraisal {
  const trace: TraceEntry[] = rules.map(({ category: _category, ...entry }) => entry);
  const tier = (category: Category): number | undefined => {
    const mine = rules.filter((r) => r.category === category);
    if (mine.length === 0) return undefined;
    if (mine.some((r) => r.result === 'fail')) return TRUST_TIER.contraindicated;
    if (mine.some((r) => r.result === 'warn')) return TRUST_TIER.warning;
    return TRUST_TIER.affirming;
  };
  // A trusted AK signed the quote: the TPM and its identity are affirmed unless a rule says otherwise.
  const trustVector: TrustVector = { instance_identity: tier('instance_identity') ?? TRUST_TIER.affirming, hardware: TRUST_TIER.affirming };
  for (const category of ['configuration', 'executables', 'file_system'] as const) {
    const t = tier(category);
    if (t !== undefined) trustVector[category] = t;
  }
  return { status: statusOf(trace), trustVector, trace };
}
