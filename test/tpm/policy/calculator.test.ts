/**
 * The offline policy calculator against the TPM (trial sessions on swtpm, PolicyGetDigest) and
 * against tpm2-tools 5.4 (tpm2_policy* in their own trial sessions, tpm2_createpolicy), for every
 * policy command the calculator knows.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { toHex } from '../../../src/core/hex.ts';
import { auth } from '../../../src/tpm/command.ts';
import { flushContext } from '../../../src/tpm/commands/context.ts';
import { nvDefineSpace, nvReadPublic, nvUndefineSpace, nvWrite } from '../../../src/tpm/commands/nv.ts';
import { loadExternal } from '../../../src/tpm/commands/object.ts';
import { pcrEvent, pcrRead } from '../../../src/tpm/commands/pcr.ts';
import * as policy from '../../../src/tpm/commands/policy.ts';
import { TPM_ALG, TPM_CC, TPM_EO, TPM_NT, TPM_RH, TPM_SE, TPMA_NV, nvTypeBits } from '../../../src/tpm/constants.ts';
import { nvName, objectName } from '../../../src/tpm/names.ts';
import { PolicyCalculator, pcrDigest, policySignedMessage } from '../../../src/tpm/policy/index.ts';
import { keyObjectToTpmPublic, tpmPublicToPem } from '../../../src/tpm/public-key.ts';
import type { PcrSelection } from '../../../src/tpm/structures/basic.ts';
import type { NvPublic } from '../../../src/tpm/structures/nv.ts';
import { EK_AUTH_POLICY_SHA256 } from '../../../src/tpm/templates.ts';
import { TpmFixture } from '../commands/tpm-fixture.ts';
import * as extra from './trial.ts';
import { OUTPUT, tpmPolicyDigest, toolsOutput, toolsPolicyDigest } from './trial.ts';

const SHA256 = TPM_ALG.SHA256;
const NV_INDEX = 0x01500016;
const NV_AUTHORIZE_INDEX = 0x01500017;
let fixture: TpmFixture;
let nvPublic: NvPublic;

// An external policy-signing key, as a vendor would hold it; only its public area reaches the TPM.
const signer = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signerPublic = keyObjectToTpmPublic(signer.publicKey);

before(async () => {
  fixture = await TpmFixture.start();
  // Move PCR 7 and 16 away from their reset values so the PCR digests are not trivial.
  await fixture.tpm.run(pcrEvent(auth(7), new TextEncoder().encode('secure boot state')));
  await fixture.tpm.run(pcrEvent(auth(16), new TextEncoder().encode('debug pcr')));
  // The MachineOS lock-out index: two bytes, 0x0001 while the device may unseal.
  const define: NvPublic = { nvIndex: NV_INDEX, nameAlg: SHA256, attributes: nvTypeBits(TPM_NT.ORDINARY) | TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE | TPMA_NV.NO_DA, authPolicy: new Uint8Array(0), dataSize: 2 };
  await fixture.tpm.run(nvDefineSpace(auth(TPM_RH.OWNER), new Uint8Array(0), define));
  await fixture.tpm.run(nvWrite(auth(NV_INDEX), NV_INDEX, new Uint8Array([0x00, 0x01])));
  nvPublic = (await fixture.tpm.run(nvReadPublic(NV_INDEX))).nvPublic;
  const authorizeIndex: NvPublic = { ...define, nvIndex: NV_AUTHORIZE_INDEX, dataSize: 34 };
  await fixture.tpm.run(nvDefineSpace(auth(TPM_RH.OWNER), new Uint8Array(0), authorizeIndex));
});

after(async () => {
  if (!fixture) return;
  try {
    await fixture.tpm.run(nvUndefineSpace(auth(TPM_RH.OWNER), NV_INDEX));
    await fixture.tpm.run(nvUndefineSpace(auth(TPM_RH.OWNER), NV_AUTHORIZE_INDEX));
  } finally {
    await fixture.stop();
  }
});

function same(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(toHex(actual), toHex(expected), what);
}

async function readPcrs(selection: PcrSelection[]): Promise<Uint8Array[]> {
  const values: Uint8Array[] = [];
  // PCR_Read answers at most 8 digests at a time: ask one bank and PCR at a time.
  for (const bank of selection) {
    for (const pcr of bank.pcrs) values.push(...(await fixture.tpm.run(pcrRead([{ hash: bank.hash, pcrs: [pcr] }]))).digests);
  }
  return values;
}

async function writeFiles(dir: string, files: Record<string, Uint8Array | string>): Promise<Record<string, string>> {
  const paths: Record<string, string> = {};
  for (const [name, data] of Object.entries(files)) {
    paths[name] = path.join(dir, name);
    await writeFile(paths[name], data);
  }
  return paths;
}

test('PolicyPCR sha256:7 matches the TPM and tpm2_createpolicy / tpm2_policypcr', async () => {
  const selection = [{ hash: SHA256, pcrs: [7] }];
  const values = await readPcrs(selection);
  assert.notEqual(toHex(values[0]), '00'.repeat(32), 'PCR 7 was extended');
  const offline = await new PolicyCalculator(SHA256).policyPCR(selection, values).digest();
  const pcrsDigest = await pcrDigest(SHA256, values);
  same(await new PolicyCalculator(SHA256).policyPCR(selection, pcrsDigest).digest(), offline, 'values and a ready pcrDigest agree');
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policyPcr(s, selection, pcrsDigest)))), offline, 'TPM trial');
  const created = await toolsOutput(fixture, (dir) => ({
    // tpm2_createpolicy leaves its trial session loaded: flush it.
    commands: [['tpm2_createpolicy', '--policy-pcr', '-l', 'sha256:7', '-L', path.join(dir, 'pcr.policy')], ['tpm2_flushcontext', '-l']],
    output: path.join(dir, 'pcr.policy'),
  }));
  same(created, offline, 'tpm2_createpolicy');
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policypcr', '-S', s, '-l', 'sha256:7']]), offline, 'tpm2_policypcr');
});

test('PolicyPCR over two banks and several PCRs, with SHA-1 and SHA-384 policy hashes too', async () => {
  const selection = [
    { hash: TPM_ALG.SHA1, pcrs: [0, 7] },
    { hash: SHA256, pcrs: [7, 16] },
  ];
  const values = await readPcrs(selection);
  for (const hash of [TPM_ALG.SHA1, SHA256, TPM_ALG.SHA384]) {
    const offline = await new PolicyCalculator(hash).policyPCR(selection, values).digest();
    const digestForTpm = await pcrDigest(hash, values);
    same(await tpmPolicyDigest(fixture.tpm, hash, async (s) => void (await fixture.tpm.run(policy.policyPcr(s, selection, digestForTpm)))), offline, `TPM trial, policy hash ${hash}`);
  }
  const offline256 = await new PolicyCalculator(SHA256).policyPCR(selection, values).digest();
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policypcr', '-S', s, '-l', 'sha1:0,7+sha256:7,16']]), offline256, 'tpm2_policypcr');
});

test('PolicyNV (operand 0x0001, EQ) matches the TPM and tpm2_policynv', async () => {
  assert.ok(nvPublic.attributes & TPMA_NV.WRITTEN, 'the index was written, which changes its name');
  const operand = new Uint8Array([0x00, 0x01]);
  const offline = await new PolicyCalculator(SHA256).policyNV(nvPublic, operand, 0, TPM_EO.EQ).digest();
  same(await new PolicyCalculator(SHA256).policyNV(await nvName(nvPublic), operand).digest(), offline, 'a name and a public area agree');
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policyNv(auth(NV_INDEX), NV_INDEX, s, operand, 0, TPM_EO.EQ)))), offline, 'TPM trial');
  const tools = await toolsPolicyDigest(fixture, async (s, dir) => {
    const files = await writeFiles(dir, { 'operand.bin': operand });
    return [['tpm2_policynv', '-S', s, '-i', files['operand.bin'], `0x${NV_INDEX.toString(16)}`, 'eq']];
  });
  same(tools, offline, 'tpm2_policynv');
  // Offset and operation are bound too.
  const other = await new PolicyCalculator(SHA256).policyNV(nvPublic, new Uint8Array([0x01]), 1, TPM_EO.UNSIGNED_GE).digest();
  same(
    await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policyNv(auth(NV_INDEX), NV_INDEX, s, new Uint8Array([0x01]), 1, TPM_EO.UNSIGNED_GE)))),
    other,
    'TPM trial with offset 1, UNSIGNED_GE',
  );
});

test('PolicyAuthorize matches the TPM and tpm2_policyauthorize, with and without a policyRef', async () => {
  const keyName = await objectName(signerPublic);
  const approved = new Uint8Array(randomBytes(32));
  for (const policyRef of [new Uint8Array(0), new TextEncoder().encode('machineos-release')]) {
    const offline = await new PolicyCalculator(SHA256).policyCommandCode(TPM_CC.Unseal).policyAuthorize(signerPublic, policyRef).digest();
    same(await new PolicyCalculator(SHA256).policyAuthorize(keyName, policyRef).digest(), offline, 'PolicyAuthorize resets what came before');
    const trial = await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => {
      await fixture.tpm.run(policy.policyCommandCode(s, TPM_CC.Unseal));
      await fixture.tpm.run(policy.policyAuthorize(s, approved, policyRef, keyName, policy.nullVerifiedTicket()));
    });
    same(trial, offline, 'TPM trial');
    const tools = await toolsPolicyDigest(fixture, async (s, dir) => {
      const files = await writeFiles(dir, { 'approved.policy': approved, 'key.name': keyName, 'ref.bin': policyRef });
      const ref = policyRef.length > 0 ? ['-q', files['ref.bin']] : [];
      return [['tpm2_policyauthorize', '-S', s, '-i', files['approved.policy'], '-n', files['key.name'], ...ref]];
    });
    same(tools, offline, 'tpm2_policyauthorize');
  }
});

test('PolicySigned matches the TPM (trial and a real session with a real signature) and tpm2_policysigned', async () => {
  const policyRef = new TextEncoder().encode('operator');
  const offline = await new PolicyCalculator(SHA256).policySigned(signerPublic, policyRef).digest();
  const unbound = new Uint8Array(nodeSign('sha256', policySignedMessage({ policyRef }), signer.privateKey));
  const signature = { sigAlg: TPM_ALG.RSASSA, hashAlg: SHA256, sig: unbound } as const;
  const loaded = await fixture.tpm.run(loadExternal(signerPublic, TPM_RH.OWNER));
  try {
    same(loaded.name, await objectName(signerPublic), 'the TPM names the key as names.ts does');
    same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policySigned(loaded.handle, s, { policyRef, auth: signature })))), offline, 'TPM trial');
    // A real policy session checks the signature, so this also proves policySignedMessage.
    same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policySigned(loaded.handle, s, { policyRef, auth: signature }))), TPM_SE.POLICY), offline, 'TPM policy session');
    await assert.rejects(
      tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policySigned(loaded.handle, s, { policyRef: new Uint8Array([1]), auth: signature }))), TPM_SE.POLICY),
      (error: { code?: string }) => error.code === 'tpm.rc.signature',
      'a signature over another policyRef is refused',
    );
  } finally {
    await fixture.tpm.run(flushContext(loaded.handle));
  }
  try {
    const tools = await toolsPolicyDigest(fixture, async (s, dir) => {
      const files = await writeFiles(dir, { 'key.pem': tpmPublicToPem(signerPublic), 'sig.bin': unbound, 'ref.bin': policyRef });
      return [
        ['tpm2_loadexternal', '-C', 'o', '-G', 'rsa', '-u', files['key.pem'], '-c', path.join(dir, 'key.ctx')],
        ['tpm2_policysigned', '-S', s, '-g', 'sha256', '-s', files['sig.bin'], '-f', 'rsassa', '-c', path.join(dir, 'key.ctx'), '-q', files['ref.bin']],
      ];
    });
    // tpm2_loadexternal writes the exponent 65537 out where the TPM convention (and Sigil) writes
    // 0, so its copy of the key has another public area and name: compute with that area.
    const toolsKey = { ...signerPublic, exponent: 65537 };
    same(tools, await new PolicyCalculator(SHA256).policySigned(toolsKey, policyRef).digest(), 'tpm2_policysigned');
  } finally {
    await fixture.tools(['tpm2_flushcontext', '-t']);
  }
});

test('PolicySecret(TPM_RH_ENDORSEMENT) is the EK policy; with a policyRef it matches the TPM and tpm2_policysecret', async () => {
  const ekPolicy = await new PolicyCalculator(SHA256).policySecret(TPM_RH.ENDORSEMENT).digest();
  assert.equal(toHex(ekPolicy), EK_AUTH_POLICY_SHA256);
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policySecret(auth(TPM_RH.ENDORSEMENT), s)))), ekPolicy, 'TPM trial');
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policySecret(auth(TPM_RH.ENDORSEMENT), s))), TPM_SE.POLICY), ekPolicy, 'TPM policy session');
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policysecret', '-S', s, '-c', 'e']]), ekPolicy, 'tpm2_policysecret');
  const policyRef = new TextEncoder().encode('owner approved');
  const withRef = await new PolicyCalculator(SHA256).policySecret(TPM_RH.OWNER, policyRef).digest();
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policySecret(auth(TPM_RH.OWNER), s, { policyRef })))), withRef, 'TPM trial, owner');
  const tools = await toolsPolicyDigest(fixture, async (s, dir) => {
    const files = await writeFiles(dir, { 'ref.bin': policyRef });
    return [['tpm2_policysecret', '-S', s, '-c', 'o', '-q', files['ref.bin']]];
  });
  same(tools, withRef, 'tpm2_policysecret -q');
});

test('PolicyOR matches the TPM and tpm2_policyor; branches may be calculators', async () => {
  const unseal = new PolicyCalculator(SHA256).policyCommandCode(TPM_CC.Unseal);
  const password = new PolicyCalculator(SHA256).policyPassword();
  const branches = [await unseal.digest(), await password.digest()];
  const offline = await new PolicyCalculator(SHA256).policyAuthValue().policyOR(branches).digest();
  same(await new PolicyCalculator(SHA256).policyOR([unseal, password]).digest(), offline, 'calculators as branches; PolicyOR resets what came before');
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policyOr(s, branches)))), offline, 'TPM trial');
  // In a real session the current digest must be one of the branches.
  const real = await tpmPolicyDigest(
    fixture.tpm,
    SHA256,
    async (s) => {
      await fixture.tpm.run(policy.policyCommandCode(s, TPM_CC.Unseal));
      await fixture.tpm.run(policy.policyOr(s, branches));
    },
    TPM_SE.POLICY,
  );
  same(real, offline, 'TPM policy session through the first branch');
  const tools = await toolsPolicyDigest(fixture, async (s, dir) => {
    const files = await writeFiles(dir, { 'a.policy': branches[0], 'b.policy': branches[1] });
    return [['tpm2_policyor', '-S', s, '-l', `sha256:${files['a.policy']},${files['b.policy']}`]];
  });
  same(tools, offline, 'tpm2_policyor');
});

test('PolicyCommandCode, PolicyAuthValue and PolicyPassword match the TPM and tpm2-tools', async () => {
  const commandCode = await new PolicyCalculator(SHA256).policyCommandCode(TPM_CC.Unseal).digest();
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policyCommandCode(s, TPM_CC.Unseal)))), commandCode, 'TPM PolicyCommandCode');
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policycommandcode', '-S', s, 'TPM2_CC_Unseal']]), commandCode, 'tpm2_policycommandcode');

  const authValue = await new PolicyCalculator(SHA256).policyAuthValue().digest();
  assert.equal(toHex(authValue), '8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e');
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policyAuthValue(s)))), authValue, 'TPM PolicyAuthValue');
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policyauthvalue', '-S', s]]), authValue, 'tpm2_policyauthvalue');

  const password = await new PolicyCalculator(SHA256).policyPassword().digest();
  same(password, authValue, 'PolicyPassword extends with TPM_CC_PolicyAuthValue');
  same(await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policyPassword(s)))), password, 'TPM PolicyPassword');
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policypassword', '-S', s]]), password, 'tpm2_policypassword');
});

test('PolicyDuplicationSelect, with and without the object, matches the TPM and tpm2_policyduplicationselect', async () => {
  const objectNameBytes = await objectName(signerPublic);
  const parentName = await objectName(keyObjectToTpmPublic(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
  for (const includeObject of [false, true]) {
    const offline = await new PolicyCalculator(SHA256).policyDuplicationSelect(objectNameBytes, parentName, includeObject).digest();
    const trial = await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => void (await fixture.tpm.run(policy.policyDuplicationSelect(s, objectNameBytes, parentName, includeObject))));
    same(trial, offline, `TPM trial, includeObject ${includeObject}`);
    const tools = await toolsPolicyDigest(fixture, async (s, dir) => {
      const files = await writeFiles(dir, { 'object.name': objectNameBytes, 'parent.name': parentName });
      // tpm2-tools 5.4 clears its include flag on every later option, so --include-object goes last.
      return [['tpm2_policyduplicationselect', '-S', s, '-n', files['object.name'], '-N', files['parent.name'], '-L', OUTPUT, ...(includeObject ? ['--include-object'] : [])]];
    });
    same(tools, offline, `tpm2_policyduplicationselect, includeObject ${includeObject}`);
  }
});

test('MachineOS shape: PolicyPCR(sha256:7) + PolicyNV(0x0001, EQ) approved under PolicyAuthorize', async () => {
  const selection = [{ hash: SHA256, pcrs: [7] }];
  const values = await readPcrs(selection);
  const operand = new Uint8Array([0x00, 0x01]);
  const approvedCalc = new PolicyCalculator(SHA256).policyPCR(selection, values).policyNV(nvPublic, operand, 0, TPM_EO.EQ);
  const approved = await approvedCalc.digest();
  const trace = await approvedCalc.trace();
  assert.deepEqual(trace.map((step) => step.command), ['PolicyPCR', 'PolicyNV']);
  const pcrsDigest = await pcrDigest(SHA256, values);
  const approvedTpm = await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => {
    await fixture.tpm.run(policy.policyPcr(s, selection, pcrsDigest));
    same(await fixture.tpm.run(policy.policyGetDigest(s)), trace[0].digest, 'after PolicyPCR');
    await fixture.tpm.run(policy.policyNv(auth(NV_INDEX), NV_INDEX, s, operand, 0, TPM_EO.EQ));
  });
  same(approvedTpm, approved, 'approved policy: TPM trial');
  const approvedTools = await toolsPolicyDigest(fixture, async (s, dir) => {
    const files = await writeFiles(dir, { 'operand.bin': operand });
    return [
      ['tpm2_policypcr', '-S', s, '-l', 'sha256:7'],
      ['tpm2_policynv', '-S', s, '-i', files['operand.bin'], `0x${NV_INDEX.toString(16)}`, 'eq'],
    ];
  });
  same(approvedTools, approved, 'approved policy: tpm2-tools');

  const keyName = await objectName(signerPublic);
  const authPolicy = await new PolicyCalculator(SHA256).policyAuthorize(signerPublic).digest();
  const authorizeTpm = await tpmPolicyDigest(fixture.tpm, SHA256, async (s) => {
    await fixture.tpm.run(policy.policyPcr(s, selection, pcrsDigest));
    await fixture.tpm.run(policy.policyNv(auth(NV_INDEX), NV_INDEX, s, operand, 0, TPM_EO.EQ));
    await fixture.tpm.run(policy.policyAuthorize(s, approved, new Uint8Array(0), keyName, policy.nullVerifiedTicket()));
  });
  same(authorizeTpm, authPolicy, 'authPolicy: TPM trial');
});

test('Extra policy commands match the TPM and tpm2-tools: Locality, CpHash, NameHash, NvWritten, CounterTimer, Template, AuthorizeNV, PhysicalPresence', async () => {
  const calc = () => new PolicyCalculator(SHA256);
  const run = (steps: (s: number) => Promise<void>) => tpmPolicyDigest(fixture.tpm, SHA256, steps);
  const cpHash = new Uint8Array(randomBytes(32));
  const nameHash = new Uint8Array(randomBytes(32));
  const templateHash = new Uint8Array(randomBytes(32));
  const clockOperand = new Uint8Array(8);
  new DataView(clockOperand.buffer).setBigUint64(0, 604800000n);

  const locality = await calc().policyLocality(0x08).digest();
  same(await run(async (s) => void (await fixture.tpm.run(extra.policyLocality(s, 0x08)))), locality, 'TPM PolicyLocality');
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policylocality', '-S', s, 'three']]), locality, 'tpm2_policylocality three');

  const cp = await calc().policyCpHash(cpHash).digest();
  same(await run(async (s) => void (await fixture.tpm.run(extra.policyCpHash(s, cpHash)))), cp, 'TPM PolicyCpHash');

  const nh = await calc().policyNameHash(nameHash).digest();
  same(await run(async (s) => void (await fixture.tpm.run(extra.policyNameHash(s, nameHash)))), nh, 'TPM PolicyNameHash');
  const nhTools = await toolsPolicyDigest(fixture, async (s, dir) => {
    const files = await writeFiles(dir, { 'name.hash': nameHash });
    return [['tpm2_policynamehash', '-S', s, '-n', files['name.hash']]];
  });
  same(nhTools, nh, 'tpm2_policynamehash');

  for (const writtenSet of [true, false]) {
    const written = await calc().policyNvWritten(writtenSet).digest();
    same(await run(async (s) => void (await fixture.tpm.run(extra.policyNvWritten(s, writtenSet)))), written, `TPM PolicyNvWritten ${writtenSet}`);
    same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policynvwritten', '-S', s, writtenSet ? 's' : 'c']]), written, `tpm2_policynvwritten ${writtenSet}`);
  }

  // clock sits at offset 8 of TPMS_TIME_INFO (after the u64 time).
  const counter = await calc().policyCounterTimer(clockOperand, 8, TPM_EO.UNSIGNED_LT).digest();
  same(await run(async (s) => void (await fixture.tpm.run(extra.policyCounterTimer(s, clockOperand, 8, TPM_EO.UNSIGNED_LT)))), counter, 'TPM PolicyCounterTimer');
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policycountertimer', '-S', s, '--ult', 'clock=604800000']]), counter, 'tpm2_policycountertimer');

  const template = await calc().policyTemplate(templateHash).digest();
  same(await run(async (s) => void (await fixture.tpm.run(extra.policyTemplate(s, templateHash)))), template, 'TPM PolicyTemplate');
  const templateTools = await toolsPolicyDigest(fixture, async (s, dir) => {
    const files = await writeFiles(dir, { 'template.hash': templateHash });
    return [['tpm2_policytemplate', '-S', s, '--template-hash', files['template.hash']]];
  });
  same(templateTools, template, 'tpm2_policytemplate');

  const authorizeIndex = (await fixture.tpm.run(nvReadPublic(NV_AUTHORIZE_INDEX))).nvPublic;
  const authorizeNv = await calc().policyCommandCode(TPM_CC.Unseal).policyAuthorizeNV(authorizeIndex).digest();
  same(
    await run(async (s) => {
      await fixture.tpm.run(policy.policyCommandCode(s, TPM_CC.Unseal));
      await fixture.tpm.run(extra.policyAuthorizeNv(auth(NV_AUTHORIZE_INDEX), NV_AUTHORIZE_INDEX, s));
    }),
    authorizeNv,
    'TPM PolicyAuthorizeNV',
  );
  same(await toolsPolicyDigest(fixture, (s) => [['tpm2_policyauthorizenv', '-S', s, `0x${NV_AUTHORIZE_INDEX.toString(16)}`]]), authorizeNv, 'tpm2_policyauthorizenv');

  const presence = await calc().policyPhysicalPresence().digest();
  same(await run(async (s) => void (await fixture.tpm.run(extra.policyPhysicalPresence(s)))), presence, 'TPM PolicyPhysicalPresence');
});
