import { SigilError } from '../../core/errors.ts';
import { isQuirkId, type QuirkId } from '../../eventlog/quirks.ts';
import type { AkTrustedBy } from './ak-trust.ts';

/**
 * The appraisal policy for verified TPM evidence (quote + event log + IMA). Every field is
 * optional; each one present becomes one or more rules in the trace. Digests are lowercase hex.
 *
 *   {
 *     "akTrustedBy": ["ak-certificate", "ek-activation"],
 *     "pcrs": { "sha256": { "7": ["<hex>", "<hex>"] } },   reference values, any of
 *     "requireSafeClock": true,
 *     "requireEventLog": true,
 *     "requireSecureBoot": true,                             SecureBoot=1 measured in a verified PCR 7
 *     "requiredDbxHashes": ["<hex>"],                        revocations that must be in dbx
 *     "allowedEfiApplications": ["<hex>"],                   every PCR 4 application digest
 *     "allowedKernelCmdlines": ["<text>"],                   GRUB / systemd-stub command line text
 *     "allowedKernelCmdlineDigests": ["<hex>"],              UKI .cmdline / EFI-stub load options
 *     "allowedInitrdDigests": ["<hex>"],
 *     "allowedUkiSections": { ".linux": ["<hex>"], ".cmdline": ["<hex>"] },
 *     "requireSeparators": true,                             PCRs 0-7 each end in a normal separator
 *     "requireExitBootServices": true,
 *     "allowedQuirks": ["shim-authority-digest-short"],      unlisted quirks fail; absent: each warns
 *     "ima": { "required": true, "allowedFiles": { "/usr/bin/x": ["<hex>"] }, "unknownFiles": "fail",
 *              "requireSignatures": true, "requireBootAggregate": true, "forbidViolations": true }
 *   }
 */
export interface TpmImaPolicy {
  required?: boolean;
  allowedFiles?: Record<string, string[]>;
  unknownFiles?: 'fail' | 'warn' | 'ignore';
  requireSignatures?: boolean;
  requireBootAggregate?: boolean;
  forbidViolations?: boolean;
}

export interface TpmBundlePolicy {
  akTrustedBy?: AkTrustedBy[];
  pcrs?: Record<string, Record<string, string[]>>;
  requireSafeClock?: boolean;
  requireEventLog?: boolean;
  requireSecureBoot?: boolean;
  requiredDbxHashes?: string[];
  allowedEfiApplications?: string[];
  allowedKernelCmdlines?: string[];
  allowedKernelCmdlineDigests?: string[];
  allowedInitrdDigests?: string[];
  allowedUkiSections?: Record<string, string[]>;
  requireSeparators?: boolean;
  requireExitBootServices?: boolean;
  allowedQuirks?: QuirkId[];
  ima?: TpmImaPolicy;
}

const HEX = /^[0-9a-f]+$/;
const BOOLEANS = ['requireSafeClock', 'requireEventLog', 'requireSecureBoot', 'requireSeparators', 'requireExitBootServices'] as const;
const HEX_LISTS = ['requiredDbxHashes', 'allowedEfiApplications', 'allowedKernelCmdlineDigests', 'allowedInitrdDigests'] as const;
const KNOWN = new Set<string>([...BOOLEANS, ...HEX_LISTS, 'akTrustedBy', 'pcrs', 'allowedKernelCmdlines', 'allowedUkiSections', 'allowedQuirks', 'ima']);

function fail(why: string): never {
  throw new SigilError('policy.tpm_policy_invalid', `TPM policy: ${why}`);
}

function hexList(value: unknown, what: string): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((v) => typeof v === 'string' && HEX.test(v.toLowerCase()))) fail(`${what} must be hex digests`);
  return (list as string[]).map((v) => v.toLowerCase());
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${what} must be an object`);
  return value as Record<string, unknown>;
}

/** Validate a stored policy (fail early and closed on anything unknown). */
export function checkTpmBundlePolicy(input: unknown): TpmBundlePolicy {
  const p = object(input, 'the policy');
  for (const key of Object.keys(p)) if (!KNOWN.has(key)) fail(`unknown field "${key}"`);
  const out: TpmBundlePolicy = {};
  for (const key of BOOLEANS) {
    if (p[key] === undefined) continue;
    if (typeof p[key] !== 'boolean') fail(`"${key}" must be a boolean`);
    out[key] = p[key] as boolean;
  }
  for (const key of HEX_LISTS) if (p[key] !== undefined) out[key] = hexList(p[key], key);
  if (p.akTrustedBy !== undefined) {
    const list = Array.isArray(p.akTrustedBy) ? p.akTrustedBy : fail('"akTrustedBy" must be a list');
    if (!list.every((v) => v === 'pinned' || v === 'ak-certificate' || v === 'ek-activation')) fail('"akTrustedBy" entries are pinned, ak-certificate or ek-activation');
    out.akTrustedBy = list as AkTrustedBy[];
  }
  if (p.pcrs !== undefined) {
    out.pcrs = {};
    for (const [bank, indexes] of Object.entries(object(p.pcrs, '"pcrs"'))) {
      if (!['sha1', 'sha256', 'sha384', 'sha512'].includes(bank)) fail(`unknown PCR bank "${bank}"`);
      out.pcrs[bank] = {};
      for (const [index, values] of Object.entries(object(indexes, `bank ${bank}`))) {
        if (!/^(\d|1\d|2[0-3])$/.test(index)) fail(`"${index}" is not a PCR index 0..23`);
        out.pcrs[bank][index] = hexList(values, `${bank}:${index}`);
      }
    }
  }
  if (p.allowedKernelCmdlines !== undefined) {
    if (!Array.isArray(p.allowedKernelCmdlines) || !p.allowedKernelCmdlines.every((v) => typeof v === 'string')) fail('"allowedKernelCmdlines" must be strings');
    out.allowedKernelCmdlines = p.allowedKernelCmdlines as string[];
  }
  if (p.allowedUkiSections !== undefined) {
    out.allowedUkiSections = {};
    for (const [name, values] of Object.entries(object(p.allowedUkiSections, '"allowedUkiSections"'))) out.allowedUkiSections[name] = hexList(values, `section ${name}`);
  }
  if (p.allowedQuirks !== undefined) {
    if (!Array.isArray(p.allowedQuirks) || !p.allowedQuirks.every((q) => typeof q === 'string' && isQuirkId(q))) fail('"allowedQuirks" must name known quirks');
    out.allowedQuirks = p.allowedQuirks as QuirkId[];
  }
  if (p.ima !== undefined) out.ima = checkImaPolicy(object(p.ima, '"ima"'));
  return out;
}

function checkImaPolicy(p: Record<string, unknown>): TpmImaPolicy {
  const out: TpmImaPolicy = {};
  for (const key of Object.keys(p)) {
    if (!['required', 'allowedFiles', 'unknownFiles', 'requireSignatures', 'requireBootAggregate', 'forbidViolations'].includes(key)) fail(`unknown IMA field "${key}"`);
  }
  for (const key of ['required', 'requireSignatures', 'requireBootAggregate', 'forbidViolations'] as const) {
    if (p[key] === undefined) continue;
    if (typeof p[key] !== 'boolean') fail(`"ima.${key}" must be a boolean`);
    out[key] = p[key] as boolean;
  }
  if (p.unknownFiles !== undefined) {
    if (p.unknownFiles !== 'fail' && p.unknownFiles !== 'warn' && p.unknownFiles !== 'ignore') fail('"ima.unknownFiles" is fail, warn or ignore');
    out.unknownFiles = p.unknownFiles;
  }
  if (p.allowedFiles !== undefined) {
    out.allowedFiles = {};
    for (const [path, values] of Object.entries(object(p.allowedFiles, '"ima.allowedFiles"'))) out.allowedFiles[path] = hexList(values, `IMA file ${path}`);
  }
  return out;
}
