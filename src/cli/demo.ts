import { readFile } from 'node:fs/promises';
import { stepRecorder, type DemoStep } from '../core/steps.ts';
import type { Command } from 'commander';
import { SigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { parseCertificates, verifyEkCertificate } from '../evidence/tpm/ek-certificate.ts';
import { parseQuote, verifyQuote } from '../evidence/tpm/quote.ts';
import { TPM_ALG } from '../tpm/constants.ts';
import { makeCredential } from '../tpm/credential.ts';
import { startSwtpm } from '../tpm/swtpm-process.ts';
import { Tpm } from '../tpm/tpm.ts';
import { activateCredential, quote } from '../tpm/tpm-attest.ts';
import { createAttestationKey, endorsementKey, readEkCertificate, storageKey } from '../tpm/tpm-keys.ts';
import { seal, selectionFromSpec, unseal } from '../tpm/tpm-seal.ts';
import { printJson } from './output.ts';

/**
 * `sigil demo`: Sigil end to end on throw-away swtpm "machines", in three sections, each step
 * checking its own result:
 *   tpm     EK certificate → AK by credential activation → seal under PolicyPCR → quote and
 *           verify → extend the PCR → the unseal is refused;
 *   device  provision two machines, sign a boot policy, boot-unseal, lock-out, reboot;
 *   bundle  seal a bundle to two machines, open on each, revoke one, re-key, the revoked one fails;
 *   broker  enrol, attest, receive a secret, revoke, be refused (issue 4).
 */
export type { DemoStep };

type Section = (onStep: (step: DemoStep) => void) => Promise<DemoStep[]>;

const SECTIONS: Record<string, Section> = {
  tpm: (onStep) => runTpmDemo(onStep),
  device: async (onStep) => (await import('../device/demo-steps.ts')).runDeviceDemo({ onStep }),
  bundle: async (onStep) => (await import('../bundle/demo-steps.ts')).runBundleDemo({ onStep }),
  broker: async (onStep) => (await import('../broker/demo-steps.ts')).runBrokerDemo({ onStep }),
};
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('walk Sigil end to end on private, throw-away swtpm instances')
    .option('--only <section>', `one section: ${Object.keys(SECTIONS).join(', ')}`)
    .option('--json', 'print the steps as JSON')
    .action(async (options: { only?: string; json?: boolean }) => {
      if (options.only && !SECTIONS[options.only]) throw new SigilError('cli.usage_demo_section', `--only takes one of ${Object.keys(SECTIONS).join(', ')}`);
      const names = options.only ? [options.only] : Object.keys(SECTIONS);
      const sections: Record<string, DemoStep[]> = {};
      for (const name of names) {
        if (!options.json) console.log(`— ${name}`);
        sections[name] = await SECTIONS[name]((step) => {
          if (!options.json) console.log(`✔ ${step.step.padEnd(40)} ${step.detail} (${step.ms} ms)`);
        });
      }
      if (options.json) printJson({ demo: 'ok', sections });
      else console.log('demo complete: every swtpm stopped, nothing left running');
    });
}

/** The TPM section: one swtpm manufactured with EK certificates by swtpm_setup. */
async function runTpmDemo(onStep: (step: DemoStep) => void): Promise<DemoStep[]> {
  const { steps, record } = stepRecorder(onStep);
  const swtpm = await startSwtpm({ ekCert: true, pcrBanks: ['sha1', 'sha256'] });
  const tpm = new Tpm(swtpm.transport());
  try {
    record('start a private swtpm', `${swtpm.uri}, EK certificates made by swtpm_setup`);

    const pcrs = await tpm.readPcrs(TPM_ALG.SHA256, [0, 7, 16]);
    record('read PCRs', `sha256:16 = ${toHex(pcrs.get(16)!).slice(0, 16)}…`);

    const ek = await endorsementKey(tpm, 'rsa');
    const ekCert = await readEkCertificate(tpm, 'rsa');
    if (!ekCert) throw new SigilError('demo.ek_cert_missing', 'swtpm_setup stored no EK certificate');
    const ca = [...parseCertificates(await readFile(swtpm.localCa!.rootCert, 'utf8')), ...parseCertificates(await readFile(swtpm.localCa!.intermediateCert, 'utf8'))];
    const info = await verifyEkCertificate(ekCert, { roots: ca.filter((c) => c.subject === c.issuer), intermediates: ca.filter((c) => c.subject !== c.issuer), ekPublic: ek.publicArea });
    record('validate the EK certificate', `issuer "${info.issuer}"`);

    const srk = await storageKey(tpm);
    const ak = await createAttestationKey(tpm, srk, 'ecc');
    await tpm.flush(srk.handle);
    const challenge = await tpm.random(32);
    const credential = await makeCredential({ ekPublic: ek.publicArea, objectName: ak.name, credential: challenge });
    const answer = await activateCredential(tpm, ak, ek, credential);
    await tpm.flush(ek.handle);
    if (toHex(answer) !== toHex(challenge)) throw new SigilError('demo.activation_mismatch', 'the activated credential differs from the challenge');
    record('activate a credential for the AK', `AK ${toHex(ak.name).slice(0, 16)}… proven to live beside the EK`);

    const selection = selectionFromSpec('sha256:7,16');
    const sealed = await seal(tpm, { secret: new TextEncoder().encode('disk passphrase: correct horse'), selection });
    const opened = new TextDecoder().decode(await unseal(tpm, sealed));
    record('seal and unseal under PolicyPCR', `sha256:7,16 → "${opened.slice(0, 16)}…" (salted, encrypted sessions)`);

    const nonce = await tpm.random(20);
    const evidence = await tpm.using(ak.handle, () => quote(tpm, ak, nonce, selectionFromSpec('sha256:0,7,16')));
    const verified = await verifyQuote(parseQuote(evidence.attestBytes, evidence.signatureBytes), { akPublic: ak.publicArea, nonce, pcrValues: evidence.pcrValues });
    record('quote and verify', `signature, nonce and PCR digest check out (${Object.keys(verified.pcrs.sha256).length} PCRs)`);

    await tpm.extendEvent(16, new TextEncoder().encode('sigil demo: lock-out'));
    try {
      await unseal(tpm, sealed);
      throw new SigilError('demo.unseal_not_refused', 'the unseal after the extend should have been refused');
    } catch (error) {
      if (!(error instanceof SigilError) || error.code !== 'tpm.policy_pcr_mismatch') throw error;
      record('extend PCR 16, unseal again', `refused: ${error.message} [${error.code}]`);
    }
  } finally {
    await tpm.close();
    await swtpm.stop();
  }
  return steps;
}
