import { SigilError } from '../core/errors.ts';

/**
 * The quirk registry: every deviation from the TCG PC Client PFP specification that Sigil knows
 * how to read past, with the firmware that shows it, what Sigil does about it, and the fixture or
 * test that needs it. Nothing here is applied silently:
 *
 * - A quirk applies only when the caller enables it (`{ quirks: ['trailing-zero-padding'] }`).
 * - When a log needs a quirk that is not enabled, parsing or replay fails with
 *   `eventlog.quirk_required` naming the quirk, so the operator decides.
 * - Every quirk applied is listed in the result (`log.quirks`, `replay.quirks`, the verified TPM
 *   claims), where appraisal can refuse it (`allowedQuirks`).
 */
export type QuirkId =
  | 'trailing-zero-padding'
  | 'no-action-nonzero-digest'
  | 'exit-boot-services-unlogged'
  | 'shim-authority-digest-short'
  | 'boot-variable-whole-event-digest'
  | 'ima-sha1-padded-template-hash';

export interface QuirkDefinition {
  id: QuirkId;
  /** Which firmware (or kernel) produces logs like this. */
  firmware: string;
  /** What is wrong with the log, and what Sigil does when the quirk is enabled. */
  effect: string;
  /** The fixture or test that needs it. */
  fixture: string;
}

export const QUIRKS: readonly QuirkDefinition[] = [
  {
    id: 'trailing-zero-padding',
    firmware:
      'Logs copied out of a fixed-size firmware area (the ACPI TPM2/TCPA table log area, LAML bytes long, or a CCEL area) ' +
      'instead of up to the last event, e.g. by tools that read the whole region',
    effect: 'The log continues with zero bytes after its last event. Sigil stops at the zero tail instead of reading it as events.',
    fixture: 'test/eventlog/quirks.test.ts (a fixture log with 4 KiB of zeros appended); no real fixture in ../shared/fixtures/tpm needs it',
  },
  {
    id: 'no-action-nonzero-digest',
    firmware: 'Firmware that fills EV_NO_ACTION digests with the hash of the event data, against PFP 10.4.5',
    effect: 'EV_NO_ACTION events carry non-zero digests. They are never extended either way; Sigil accepts the log and reports it.',
    fixture: 'test/eventlog/quirks.test.ts (a written log); no real fixture needs it',
  },
  {
    id: 'shim-authority-digest-short',
    firmware:
      'shim 15.x as shipped on GCE images (Debian 10, COS 85): its EV_EFI_VARIABLE_AUTHORITY events log a UEFI_VARIABLE_DATA ' +
      'padded past its end (struct padding in shim\'s VarLogSize) and hash all of the logged data except its last byte',
    effect:
      'Replay is unaffected (digests are what they are). For the boot state, the authority is accepted when the digest equals ' +
      'the hash of the event data without its last byte, and the padding after the structure is ignored.',
    fixture: 'tpm/gotpmtools_gce_cos85_eventlog.bin (events 24, 41), tpm/goeventlog_debian10_gce_sha1_legacy.bin (event 23)',
  },
  {
    id: 'boot-variable-whole-event-digest',
    firmware:
      'Physical PC firmware (the Arch Linux workstation fixture) that measures EV_EFI_VARIABLE_BOOT as the hash of the whole ' +
      'UEFI_VARIABLE_DATA, where PFP 1.06 10.4.4 (and EDK2) hash only VariableData (the whole structure is EV_EFI_VARIABLE_BOOT2)',
    effect: 'Boot#### and BootOrder values are accepted when the digest covers the whole event data instead of the variable data.',
    fixture: 'tpm/goeventlog_arch_linux_workstation.bin (events 18-21, PCR 1: BootOrder, Boot0000, Boot0003, Boot0002)',
  },
  {
    id: 'exit-boot-services-unlogged',
    firmware:
      'Any UEFI firmware read by a Linux kernel older than 5.3, which did not copy the EFI Final Events Table: events the ' +
      'firmware measured after the kernel read the log (ExitBootServices in PCR 5) are missing from binary_bios_measurements. ' +
      'Same workaround as google/go-eventlog tcg/eventlog_workarounds.go',
    effect:
      'When replayed PCR 5 differs from the quoted value, Sigil tries appending the EV_EFI_ACTION events "Exit Boot Services ' +
      'Invocation" + "Exit Boot Services Returned with Success" (or with Failure, or both) and accepts the first that matches.',
    fixture: 'test/eventlog/quirks.test.ts (a fixture log with its ExitBootServices events removed)',
  },
  {
    id: 'ima-sha1-padded-template-hash',
    firmware:
      'Linux kernels before 5.8 (commit 1ea973df6e21 and the 5.8 integrity pull): IMA extended the SHA-1 template hash, ' +
      'zero-padded to the bank size, into every non-SHA-1 PCR bank (and 0xff.. for violations)',
    effect: 'IMA replay of non-SHA-1 banks extends the zero-padded SHA-1 template hash instead of the bank hash of the template data.',
    fixture: 'test/eventlog/ima.test.ts (swtpm replay of a log extended the pre-5.8 way)',
  },
];

export interface QuirkOptions {
  /** Quirks the caller accepts; anything else the log needs is an error naming it. */
  quirks?: readonly QuirkId[];
}

export interface AppliedQuirk {
  id: QuirkId;
  detail: string;
}

export function quirkDefinition(id: QuirkId): QuirkDefinition {
  const found = QUIRKS.find((q) => q.id === id);
  if (!found) throw new SigilError('eventlog.quirk_unknown', `unknown quirk "${id}"`, { id });
  return found;
}

export function isQuirkId(value: string): value is QuirkId {
  return QUIRKS.some((q) => q.id === value);
}

/** Record and allow the quirk when enabled; false when the caller did not enable it. */
export function applyQuirk(options: QuirkOptions, applied: AppliedQuirk[], id: QuirkId, detail: string): boolean {
  if (!options.quirks?.includes(id)) return false;
  if (!applied.some((q) => q.id === id && q.detail === detail)) applied.push({ id, detail });
  return true;
}

/** The error for a log that needs a quirk the caller did not enable. */
export function quirkRequired(id: QuirkId, message: string, details: Record<string, unknown> = {}): SigilError {
  return new SigilError('eventlog.quirk_required', `${message} (a known firmware quirk: enable "${id}" to accept it)`, { quirk: id, ...details });
}
