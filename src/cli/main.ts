#!/usr/bin/env node
/**
 * `sigil <group> <verb>`: thin commands over the library, one file per group.
 * Exit codes: 0 ok, 1 refused or invalid, 2 usage, 3 environment (DESIGN.md section 5).
 */
import { Command, CommanderError } from 'commander';
import { registerDemo } from './demo.ts';
import { registerBoot } from './boot.ts';
import { registerPolicy } from './policy.ts';
import { registerDevice } from './device.ts';
import { registerKeyset } from './keyset.ts';
import { registerEventlog } from './eventlog.ts';
import { registerMeasure } from './measure.ts';
import { EXIT, reportError } from './output.ts';
import { registerTpm } from './tpm.ts';
import { registerUki } from './uki.ts';
import { registerVerify } from './verify.ts';

const program = new Command('sigil')
  .enablePositionalOptions()
  .description('Secrets, code and data only for machines that prove what they run')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({ writeErr: (text) => process.stderr.write(text) });

registerTpm(program);
registerEventlog(program);
registerVerify(program);
registerUki(program);
registerMeasure(program);
registerKeyset(program);
registerDevice(program);
registerPolicy(program);
registerBoot(program);
registerDemo(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version end through here with code 0.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.exitCode = reportError(error, process.argv.includes('--json'));
  }
}
