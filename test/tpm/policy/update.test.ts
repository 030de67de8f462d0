/**
 * The policy calculator without a TPM: published digests, argument checks, and the helpers a
 * signer uses. The TPM comparisons are in calculator.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isSigilError } from '../../../src/core/errors.ts';
import { fromHex, toHex } from '../../../src/core/hex.ts';
import { TPM_ALG, TPM_CC, TPM_RH } from '../../../src/tpm/constants.ts';
import { PolicyCalculator, approvedPolicyDigest, approvedPolicyMessage, pcrDigest, policySignedDigest, policySignedMessage, policyUpdate, resolveName } from '../../../src/tpm/policy/index.ts';

const sha256 = (...parts: Uint8Array[]) => new Uint8Array(createHash('sha256').update(Buffer.concat(parts)).digest());
const filled = (size: number, byte: number) => new Uint8Array(size).fill(byte);

test('published digests: the EK policy (PolicySecret(TPM_RH_ENDORSEMENT)) and PolicyAuthValue', async () => {
  // TCG EK Credential Profile, template L-1 authPolicy.
  assert.equal(toHex(await new PolicyCalculator(TPM_ALG.SHA256).policySecret(TPM_RH.ENDORSEMENT).digest()), '837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
  const authValue = await new PolicyCalculator().policyAuthValue().digest();
  assert.equal(toHex(authValue), '8fcd2169ab92694e0c633f1ab772842b8241bbc20288981fc7ac1eddc1fddb0e');
  assert.deepEqual(await new PolicyCalculator().policyPassword().digest(), authValue);
});

test('the update formulas hash buffers without size fields, command codes as big-endian u32', async () => {
  const zero = new Uint8Array(32);
  const code = await new PolicyCalculator().policyCommandCode(TPM_CC.Unseal).digest();
  assert.deepEqual(code, sha256(zero, fromHex('0000016c'), fromHex('0000015e')));
  const name = fromHex('000b' + '11'.repeat(32));
  const ref = new TextEncoder().encode('ref');
  const signed = await new PolicyCalculator().policySigned(name, ref).digest();
  assert.deepEqual(signed, sha256(sha256(zero, fromHex('00000160'), name), ref));
  // An empty policyRef still gets the second hash; PolicyAuthorizeNV has none.
  assert.deepEqual(await policyUpdate.policySecret(TPM_ALG.SHA256, zero, name, new Uint8Array(0)), sha256(sha256(zero, fromHex('00000151'), name)));
  assert.deepEqual(await new PolicyCalculator().policyAuthorizeNV(name).digest(), sha256(zero, fromHex('00000192'), name));
  const nv = await new PolicyCalculator().policyNV(name, fromHex('0001'), 2, 5).digest();
  assert.deepEqual(nv, sha256(zero, fromHex('00000149'), sha256(fromHex('0001'), fromHex('0002'), fromHex('0005')), name));
});

test('an empty calculator is the zero digest of its hash; trace lists each step', async () => {
  assert.deepEqual(await new PolicyCalculator(TPM_ALG.SHA1).digest(), new Uint8Array(20));
  assert.deepEqual(await new PolicyCalculator(TPM_ALG.SHA384).digest(), new Uint8Array(48));
  const calc = new PolicyCalculator().policyPCR([{ hash: TPM_ALG.SHA256, pcrs: [7] }], [filled(32, 7)]).policyCommandCode(TPM_CC.Unseal);
  const trace = await calc.trace();
  assert.deepEqual(trace.map((s) => s.command), ['PolicyPCR', 'PolicyCommandCode']);
  assert.deepEqual(trace[1].digest, await calc.digest());
  assert.equal(calc.size, 2);
  assert.throws(() => new PolicyCalculator(0x0099), (e: unknown) => isSigilError(e, 'tpm.hash_unsupported'));
});

test('PolicyPCR checks its values and keeps its own copies', async () => {
  const selection = [
    { hash: TPM_ALG.SHA1, pcrs: [0, 7] },
    { hash: TPM_ALG.SHA256, pcrs: [7] },
  ];
  const values = [filled(20, 1), filled(20, 2), filled(32, 3)];
  const calc = new PolicyCalculator().policyPCR(selection, values);
  const before = await calc.digest();
  values[0][0] = 0xff;
  selection[0].pcrs.push(8);
  assert.deepEqual(await calc.digest(), before, 'later changes to the arguments do not change the step');
  const digestGiven = await new PolicyCalculator().policyPCR([{ hash: TPM_ALG.SHA1, pcrs: [0, 7] }, { hash: TPM_ALG.SHA256, pcrs: [7] }], await pcrDigest(TPM_ALG.SHA256, [filled(20, 1), filled(20, 2), filled(32, 3)])).digest();
  assert.deepEqual(digestGiven, before);

  const invalid = (f: () => unknown) => assert.throws(f, (e: unknown) => isSigilError(e, 'tpm.policy_argument_invalid'));
  invalid(() => new PolicyCalculator().policyPCR([{ hash: TPM_ALG.SHA256, pcrs: [7] }], []));
  invalid(() => new PolicyCalculator().policyPCR([{ hash: TPM_ALG.SHA256, pcrs: [7] }], [filled(20, 0)]));
  invalid(() => new PolicyCalculator().policyPCR([{ hash: TPM_ALG.SHA256, pcrs: [7, 0] }], [filled(32, 0), filled(32, 0)]));
  invalid(() => new PolicyCalculator().policyPCR([{ hash: TPM_ALG.SHA256, pcrs: [7] }], filled(20, 0)));
});

test('PolicyOR takes 2 to 8 digests of the policy hash', async () => {
  const branch = filled(32, 1);
  const bad = (branches: (Uint8Array | PolicyCalculator)[]) => new PolicyCalculator().policyOR(branches).digest();
  for (const branches of [[branch], Array(9).fill(branch), [branch, filled(20, 1)]]) {
    await assert.rejects(bad(branches), (e: unknown) => isSigilError(e, 'tpm.policy_or_invalid'));
  }
  assert.throws(() => new PolicyCalculator().policyOR([new PolicyCalculator(TPM_ALG.SHA1), branch]), (e: unknown) => isSigilError(e, 'tpm.policy_or_invalid'));
  assert.deepEqual(await new PolicyCalculator().policyOR(Array(8).fill(branch)).digest(), sha256(new Uint8Array(32), fromHex('00000171'), ...Array(8).fill(branch)));
});

test('names: bytes as given, handles as their own 4-byte name', async () => {
  assert.deepEqual(await resolveName(TPM_RH.OWNER), fromHex('40000001'));
  const bytes = fromHex('000b' + 'ab'.repeat(32));
  assert.equal(await resolveName(bytes), bytes);
});

test('signer helpers: the approved-policy message and aHash, the PolicySigned message', async () => {
  const approved = filled(32, 0xaa);
  const ref = new TextEncoder().encode('release-7');
  assert.deepEqual(approvedPolicyMessage(approved, ref), new Uint8Array([...approved, ...ref]));
  assert.deepEqual(await approvedPolicyDigest(TPM_ALG.SHA256, approved, ref), sha256(approved, ref));
  assert.deepEqual(await approvedPolicyDigest(TPM_ALG.SHA256, approved), sha256(approved));

  const nonce = filled(16, 1);
  const cpHash = filled(32, 2);
  const message = policySignedMessage({ nonceTPM: nonce, expiration: -1, cpHashA: cpHash, policyRef: ref });
  assert.deepEqual(message, new Uint8Array([...nonce, 0xff, 0xff, 0xff, 0xff, ...cpHash, ...ref]));
  assert.deepEqual(policySignedMessage(), new Uint8Array(4));
  assert.deepEqual(await policySignedDigest(TPM_ALG.SHA256, { policyRef: ref }), sha256(new Uint8Array(4), ref));
  assert.throws(() => policySignedMessage({ expiration: 2 ** 31 }), (e: unknown) => isSigilError(e, 'tpm.policy_argument_invalid'));
});
