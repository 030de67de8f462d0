#!/usr/bin/env node
/**
 * `sigil <group> <verb>`: thin commands over the library, one file per group.
 * Exit codes: 0 ok, 1 refused or invalid, 2 usage, 3 environment (DESIGN.md section 5).
 *
 * Groups load lazily: `sigil uki predict` imports only the uki group, so a command does not pay
 * for type-stripping and loading every other group's libraries (the broker, x509, ...).
 */
import { Command, CommanderError } from 'commander';
import { EXIT, reportError } from './output.ts';

type Register = (program: Command) => void;

const GROUPS: Record<string, () => Promise<Register>> = {
  tpm: async () => (await import('./tpm.ts')).registerTpm,
  eventlog: async () => (await import('./eventlog.ts')).registerEventlog,
  verify: async () => (await import('./verify.ts')).registerVerify,
  uki: async () => (await import('./uki.ts')).registerUki,
  measure: async () => (await import('./measure.ts')).registerMeasure,
  keyset: async () => (await import('./keyset.ts')).registerKeyset,
  device: async () => (await import('./device.ts')).registerDevice,
  policy: async () => (await import('./policy.ts')).registerPolicy,
  boot: async () => (await import('./boot.ts')).registerBoot,
  serve: async () => (await import('./serve.ts')).registerServe,
  attest: async () => (await import('./attest.ts')).registerAttest,
  audit: async () => (await import('./audit.ts')).registerAudit,
  verity: async () => (await import('./verity.ts')).registerVerity,
  image: async () => (await import('./image.ts')).registerImage,
  bundle: async () => (await import('./bundle.ts')).registerBundle,
  update: async () => (await import('./update.ts')).registerUpdate,
  demo: async () => (await import('./demo.ts')).registerDemo,
};

const program = new Command('sigil')
  .enablePositionalOptions()
  .description('Secrets, code and data only for machines that prove what they run')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

// The first argument that is not an option names the group; without one (or for --help), load all.
const requested = process.argv.slice(2).find((arg) => !arg.startsWith('-'));
const loaders = requested && GROUPS[requested] ? [GROUPS[requested]] : Object.values(GROUPS);

try {
  for (const load of loaders) (await load())(program);
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version end through here with code 0.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.exitCode = reportError(error, process.argv.includes('--json'));
  }
}
