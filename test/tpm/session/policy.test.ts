/**
 * Policy and trial sessions against swtpm: PolicyPCR sealing (and the clear error once the PCR
 * moves), PolicyAuthValue, PolicyPassword, PolicyCommandCode + PolicyOR branches, PolicySecret,
 * PolicySigned with a key the test holds, and trial digests for the other assertions.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { SigilError } from '../../../src/core/errors.ts';
import { loadExternal, unseal, type CreatePrimaryResult } from '../../../src/tpm/commands/object.ts';
import { nvDefineSpace, nvUndefineSpace, nvWrite } from '../../../src/tpm/commands/nv.ts';
import { pcrExtend, pcrRead } from '../../../src/tpm/commands/pcr.ts';
import { TPM_ALG, TPM_CC, TPM_EO, TPM_RH, TPMA_NV, TPMA_OBJECT } from '../../../src/tpm/constants.ts';
import { pcrDigest, policySignedMessage } from '../../../src/tpm/policy/approval.ts';
import { keyObjectToTpmPublic } from '../../../src/tpm/public-key.ts';
import { PolicySession, explainPolicyFailure } from '../../../src/tpm/session/policy.ts';
import type { PcrSelection } from '../../../src/tpm/structures/basic.ts';
import { bytes, contains, createRsaPrimary, flush, seal, startFixture, withLoaded, type Fixture } from './helpers.ts';

let fx: Fixture;
let rsa: CreatePrimaryResult;
const secret = bytes('policy-protected secret');
const authValue = bytes('policy object auth');
const PCR16: PcrSelection[] = [{ hash: TPM_ALG.SHA256, pcrs: [16] }];

before(async () => {
  fx = await startFixture();
  rsa = await createRsaPrimary(fx.client);
});

after(async () => {
  if (rsa) await flush(fx.client, rsa.handle);
  await fx?.close();
});

async function rejectsCode(promise: Promise<unknown>, code: string): Promise<SigilError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof SigilError, String(error));
  assert.equal(error.code, code, error.message);
  return error;
}

/** Start a session, run `body`, always flush it. */
async function withPolicy<T>(options: Parameters<typeof PolicySession.start>[1], body: (session: PolicySession) => Promise<T>): Promise<T> {
  const session = await PolicySession.start(fx.client, options);
  try {
    return await body(session);
  } finally {
    await session.flush(fx.client);
  }
}

/** The digest a trial session computes for `steps`. */
function trialDigest(steps: (trial: PolicySession) => Promise<unknown>): Promise<Uint8Array> {
  return withPolicy({ trial: true }, async (trial) => {
    await steps(trial);
    return trial.getDigest();
  });
}

test('PolicyPCR: sealed to PCR16, unsealed while it holds, refused with tpm.policy_pcr_mismatch once it moves', async () => {
  const policy = await trialDigest((t) => t.policyPCR(PCR16));
  assert.equal(policy.length, 32);
  const sealed = await seal(fx.client, rsa.handle, secret, { authPolicy: policy });
  const before = await fx.client.run(pcrRead(PCR16));
  const sealedPcrDigest = await pcrDigest(TPM_ALG.SHA256, before.digests);

  await withLoaded(fx.client, rsa.handle, sealed, async (handle) => {
    await withPolicy({}, async (session) => {
      assert.equal(session.handle >>> 24, 0x03, 'a policy session handle');
      await session.policyPCR(PCR16);
      assert.deepEqual(await session.getDigest(), policy);
      assert.deepEqual(await session.run(unseal({ handle, session })), secret);
      // The TPM reset the session after Unseal; so does our copy of its flags.
      assert.deepEqual(session.assertions, []);
      // With the expected PCR digest given, the TPM checks at PolicyPCR time.
      await session.policyPCR(PCR16, sealedPcrDigest);
      assert.deepEqual(await session.run(unseal({ handle, session })), secret);

      await fx.client.run(pcrExtend({ handle: 16 }, [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32).fill(0x5a) }]));

      await session.policyPCR(PCR16);
      const error = await rejectsCode(session.run(unseal({ handle, session })), 'tpm.policy_pcr_mismatch');
      assert.equal(error.message, 'PolicyPCR failed: PCR values differ from the ones the object was sealed to');
      assert.equal(error.details.tpmError, 'tpm.rc.policy_fail');
      assert.deepEqual(error.details.assertions, ['PolicyPCR']);

      await session.restart();
      const early = await rejectsCode(session.policyPCR(PCR16, sealedPcrDigest), 'tpm.policy_pcr_mismatch');
      assert.equal(early.details.tpmError, 'tpm.rc.value');
    });
    // PCRs that change between PolicyPCR and the command: TPM_RC_PCR_CHANGED, same error code.
    // (PCR16 is a debug PCR that does not bump the TPM's PCR update counter; PCR8 does.)
    const PCR8: PcrSelection[] = [{ hash: TPM_ALG.SHA256, pcrs: [8] }];
    await withPolicy({}, async (session) => {
      const now = await pcrDigest(TPM_ALG.SHA256, (await fx.client.run(pcrRead(PCR8))).digests);
      await session.policyPCR(PCR8, now);
      await fx.client.run(pcrExtend({ handle: 8 }, [{ hashAlg: TPM_ALG.SHA256, digest: new Uint8Array(32).fill(0x5b) }]));
      const error = await rejectsCode(session.run(unseal({ handle, session })), 'tpm.policy_pcr_mismatch');
      assert.equal(error.details.tpmError, 'tpm.rc.pcr_changed');
      assert.equal(error.message, 'PolicyPCR failed: PCR values changed after the policy session checked them');
    });
  });
});

test('explainPolicyFailure leaves errors alone unless PolicyPCR was part of the policy', () => {
  const policyFail = new SigilError('tpm.rc.policy_fail', 'TPM2_Unseal failed: TPM_RC_POLICY_FAIL');
  assert.equal(explainPolicyFailure(policyFail, ['PolicyAuthValue']), policyFail);
  const other = new SigilError('tpm.rc.auth_fail', 'x');
  assert.equal(explainPolicyFailure(other, ['PolicyPCR']), other);
  assert.equal((explainPolicyFailure(policyFail, ['PolicyPCR']) as SigilError).code, 'tpm.policy_pcr_mismatch');
});

test('a policy session can encrypt the Unseal response; the key mixes in the object authValue', async () => {
  const policy = await trialDigest((t) => t.policyPCR(PCR16));
  const sealed = await seal(fx.client, rsa.handle, secret, { authPolicy: policy, authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withPolicy({ encrypt: true, salt: { handle: rsa.handle, publicArea: rsa.outPublic } }, async (session) => {
      await session.policyPCR(PCR16);
      fx.recorder.clear();
      assert.deepEqual(await session.run(unseal({ handle, auth: authValue, session })), secret);
      assert.equal(fx.recorder.exchanges.some((e) => contains(e.response, secret)), false);
    }),
  );
});

test('PolicyAuthValue: the authValue joins the HMAC key; a wrong one is TPM_RC_AUTH_FAIL', async () => {
  const policy = await trialDigest((t) => t.policyAuthValue());
  const sealed = await seal(fx.client, rsa.handle, secret, { authPolicy: policy, authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withPolicy({}, async (session) => {
      await session.policyAuthValue();
      assert.equal(session.requiresAuthValue, true);
      fx.recorder.clear();
      assert.deepEqual(await session.run(unseal({ handle, auth: authValue, session })), secret);
      assert.equal(fx.recorder.exchanges.some((e) => contains(e.command, authValue)), false, 'an HMAC, not the password, goes out');
      assert.equal(session.requiresAuthValue, false, 'reset with the session after Unseal');
      await session.policyAuthValue();
      await rejectsCode(session.run(unseal({ handle, auth: bytes('wrong'), session })), 'tpm.rc.auth_fail');
      // The failed command left the policy state in place: the right value now succeeds.
      assert.deepEqual(await session.run(unseal({ handle, auth: authValue, session })), secret);
    }),
  );
});

test('PolicyPassword: the authValue travels in the HMAC field; a wrong one is TPM_RC_AUTH_FAIL', async () => {
  const policy = await trialDigest((t) => t.policyPassword());
  // PolicyPassword and PolicyAuthValue extend the digest identically (Part 3, 23.18 and 23.19).
  assert.deepEqual(policy, await trialDigest((t) => t.policyAuthValue()));
  const sealed = await seal(fx.client, rsa.handle, secret, { authPolicy: policy, authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withPolicy({}, async (session) => {
      await session.policyPassword();
      assert.equal(session.requiresPassword, true);
      fx.recorder.clear();
      assert.deepEqual(await session.run(unseal({ handle, auth: authValue, session })), secret);
      assert.equal(fx.recorder.exchanges.some((e) => contains(e.command, authValue)), true, 'the password is in the command');
      await session.policyPassword();
      await rejectsCode(session.run(unseal({ handle, auth: bytes('wrong'), session })), 'tpm.rc.auth_fail');
    }),
  );
});

test('PolicyCommandCode + PolicyOR: either branch unseals, a missing branch assertion does not', async () => {
  const branchA = await trialDigest(async (t) => {
    await t.policyCommandCode(TPM_CC.Unseal);
    await t.policyAuthValue();
  });
  const branchB = await trialDigest((t) => t.policySecret({ handle: TPM_RH.OWNER }));
  assert.notDeepEqual(branchA, branchB);
  const policy = await trialDigest((t) => t.policyOR([branchA, branchB]));
  const sealed = await seal(fx.client, rsa.handle, secret, { authPolicy: policy, authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withPolicy({}, async (session) => {
      await session.policyCommandCode(TPM_CC.Unseal);
      await session.policyAuthValue();
      await session.policyOR([branchA, branchB]);
      assert.deepEqual(await session.run(unseal({ handle, auth: authValue, session })), secret);

      const result = await session.policySecret({ handle: TPM_RH.OWNER }, { nonceTpm: session.nonceTpm });
      assert.equal(result.timeout.length, 0);
      await session.policyOR([branchA, branchB]);
      assert.deepEqual(await session.run(unseal({ handle, session })), secret);

      // PolicyOR refuses a session whose digest is in neither branch.
      await session.policyCommandCode(TPM_CC.Unseal);
      await rejectsCode(session.policyOR([branchA, branchB]), 'tpm.rc.value');
    }),
  );
});

test('PolicySigned: a key outside the TPM authorizes the session, bound to its nonceTPM', async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPublic = keyObjectToTpmPublic(publicKey, { objectAttributes: TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign, scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 } });
  const key = await fx.client.run(loadExternal(keyPublic, TPM_RH.NULL));
  try {
    const policyRef = bytes('unseal-approval');
    const signFor = (nonceTPM: Uint8Array) => ({
      sigAlg: TPM_ALG.RSASSA,
      hashAlg: TPM_ALG.SHA256,
      sig: new Uint8Array(sign('sha256', policySignedMessage({ nonceTPM, policyRef }), privateKey)),
    }) as const;
    const policy = await trialDigest((t) => t.policySigned(key.handle, { policyRef, auth: signFor(new Uint8Array(0)) }));
    const sealed = await seal(fx.client, rsa.handle, secret, { authPolicy: policy });
    await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
      withPolicy({}, async (session) => {
        await session.policySigned(key.handle, { nonceTpm: session.nonceTpm, policyRef, auth: signFor(session.nonceTpm) });
        assert.deepEqual(await session.run(unseal({ handle, session })), secret);
        // A signature over a stale nonce is refused.
        const stale = signFor(new Uint8Array(32));
        await rejectsCode(session.policySigned(key.handle, { nonceTpm: session.nonceTpm, policyRef, auth: stale }), 'tpm.rc.signature');
      }),
    );
  } finally {
    await flush(fx.client, key.handle);
  }
});

test('PolicyNV: trial digest, and a real session compares the index contents', async () => {
  const nvIndex = 0x01500020;
  const nvAuth = bytes('nv auth');
  await fx.client.run(
    nvDefineSpace({ handle: TPM_RH.OWNER }, nvAuth, {
      nvIndex,
      nameAlg: TPM_ALG.SHA256,
      attributes: TPMA_NV.OWNERWRITE | TPMA_NV.OWNERREAD | TPMA_NV.AUTHREAD | TPMA_NV.AUTHWRITE | TPMA_NV.NO_DA,
      authPolicy: new Uint8Array(0),
      dataSize: 8,
    }),
  );
  try {
    const value = new Uint8Array([0, 0, 0, 0, 0, 0, 0, 7]);
    await fx.client.run(nvWrite({ handle: TPM_RH.OWNER }, nvIndex, value));
    const eq = await trialDigest((t) => t.policyNV({ handle: nvIndex, auth: nvAuth }, nvIndex, value, 0, TPM_EO.EQ));
    const ge = await trialDigest((t) => t.policyNV({ handle: TPM_RH.OWNER }, nvIndex, value, 0, TPM_EO.UNSIGNED_GE));
    assert.equal(eq.length, 32);
    assert.notDeepEqual(eq, ge);
    await withPolicy({}, async (session) => {
      await session.policyNV({ handle: TPM_RH.OWNER }, nvIndex, value, 0, TPM_EO.EQ);
      assert.deepEqual(await session.getDigest(), eq);
      await session.restart();
      await rejectsCode(session.policyNV({ handle: nvIndex, auth: nvAuth }, nvIndex, new Uint8Array([9]), 7, TPM_EO.EQ), 'tpm.rc.policy');
    });
  } finally {
    await fx.client.run(nvUndefineSpace({ handle: TPM_RH.OWNER }, nvIndex));
  }
});

test('trial digests: each assertion gives its own non-empty 32-byte digest', async () => {
  const zero = new Uint8Array(32);
  const keySignName = rsa.name;
  const digests = {
    empty: await trialDigest(async () => {}),
    commandCode: await trialDigest((t) => t.policyCommandCode(TPM_CC.Unseal)),
    authValue: await trialDigest((t) => t.policyAuthValue()),
    pcr: await trialDigest((t) => t.policyPCR(PCR16)),
    or: await trialDigest((t) => t.policyOR([new Uint8Array(32).fill(1), new Uint8Array(32).fill(2)])),
    authorize: await trialDigest((t) => t.policyAuthorize(new Uint8Array(32).fill(3), bytes('ref'), keySignName)),
    authorizeNoRef: await trialDigest((t) => t.policyAuthorize(new Uint8Array(32).fill(3), new Uint8Array(0), keySignName)),
    secret: await trialDigest((t) => t.policySecret({ handle: TPM_RH.OWNER })),
    duplicationSelect: await trialDigest((t) => t.policyDuplicationSelect(rsa.name, keySignName, true)),
    duplicationSelectNoObject: await trialDigest((t) => t.policyDuplicationSelect(rsa.name, keySignName, false)),
  };
  assert.deepEqual(digests.empty, zero, 'a fresh trial session starts at 32 zero bytes');
  const values = Object.entries(digests).filter(([name]) => name !== 'empty');
  for (const [name, digest] of values) {
    assert.equal(digest.length, 32, name);
    assert.notDeepEqual(digest, zero, name);
  }
  const distinct = new Set(values.map(([, d]) => Buffer.from(d).toString('hex')));
  assert.equal(distinct.size, values.length, 'every policy has its own digest');
  // PolicyRestart returns a session to the zero digest.
  await withPolicy({ trial: true }, async (trial) => {
    await trial.policyAuthValue();
    await trial.restart();
    assert.deepEqual(await trial.getDigest(), zero);
  });
});

test('a trial session refuses to authorize a command', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withPolicy({ trial: true }, async (trial) => {
      await rejectsCode(fx.client.run(unseal({ handle, auth: authValue, session: trial })), 'tpm.session_invalid');
    }),
  );
});
