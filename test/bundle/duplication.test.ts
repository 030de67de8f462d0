/**
 * Key duplication under policy on three swtpm machines: a wrapping key created on A, with a secret
 * sealed under it, moves to B's SRK with the vendor's approval naming B, and B opens the secret.
 * To C (any other parent) it does not move, whatever the software is told; without the vendor's
 * signature — no approval, another signer, a changed signature, the use branch, a password — the
 * TPM refuses TPM2_Duplicate. The policy calculator and the TPM agree on every digest.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { isSigilError } from '../../src/core/errors.ts';
import { approvedDuplicationPolicy, duplicationPolicyRef, parseDuplicationApproval, signDuplicationApproval, useCommandDigests, USE_COMMANDS, wrappingKeyPolicy } from '../../src/bundle/duplication-policy.ts';
import { approvalTicket, duplicateOnTpm, duplicateWrappingKey, importWrappingKey } from '../../src/bundle/duplication.ts';
import { parseWrappingKey, createWrappingKey, unwrapSecret, withWrappingKey, wrapSecret, randomAuthValue, type WrappingKey } from '../../src/bundle/wrapping-key.ts';
import { auth } from '../../src/tpm/command.ts';
import { duplicate } from '../../src/tpm/commands/duplication.ts';
import { loadExternal } from '../../src/tpm/commands/object.ts';
import { policySigningTpmPublic } from '../../src/device/trust.ts';
import { TPM_CC, TPM_RH } from '../../src/tpm/constants.ts';
import { PolicySession } from '../../src/tpm/session/policy.ts';
import { AES_128_CFB } from '../../src/tpm/structures/public.ts';
import { provisionStorageKey, type LoadedKey } from '../../src/tpm/tpm-keys.ts';
import type { Tpm } from '../../src/tpm/tpm.ts';
import { makeVendor, startMachine, PRODUCT, OTHER_PRODUCT, type Machine, type VendorFixture } from '../device/support.ts';

let vendor: VendorFixture;
const machines: Machine[] = [];
let a: Machine;
let b: Machine;
let c: Machine;
let srkB: LoadedKey;
let srkC: LoadedKey;
let key: WrappingKey;
const authValue = randomAuthValue();
const secret = new TextEncoder().encode('fleet data-encryption key, 32 by');

function refusedWith(code: string | RegExp) {
  return (error: unknown) => {
    const ok = isSigilError(error) && (typeof code === 'string' ? error.code === code : code.test(error.code));
    assert.ok(ok, `expected ${code}, got ${isSigilError(error) ? `${error.code}: ${error.message}` : String(error)}`);
    return true;
  };
}

before(async () => {
  vendor = await makeVendor();
  for (let i = 0; i < 3; i++) machines.push(await startMachine());
  [a, b, c] = machines;
  await provisionStorageKey(a.tpm);
  srkB = await provisionStorageKey(b.tpm);
  srkC = await provisionStorageKey(c.tpm);
  key = await parseWrappingKey(JSON.stringify(await createWrappingKey(a.tpm, { signer: vendor.trust.policySigning.name, productId: PRODUCT, authValue })));
});

after(async () => {
  for (const machine of machines) await machine.stop();
  await vendor?.remove();
});

const approve = (parent: LoadedKey, options: { productId?: string; policyKey?: ReturnType<typeof vendor.keyset.privateKey> } = {}) =>
  signDuplicationApproval({ policyKey: options.policyKey ?? vendor.keyset.privateKey('policy-signing'), productId: options.productId ?? PRODUCT, objectName: key.name, newParentPublic: parent.publicArea });

/** Run `body` with the key loaded on A and `parent` loaded there as a public-only external key. */
async function onA<R>(parent: LoadedKey, body: (loaded: Parameters<Parameters<typeof withWrappingKey>[2]>[0], parentHandle: { handle: number; name: Uint8Array }) => Promise<R>): Promise<R> {
  return withWrappingKey(a.tpm, key, async (loaded) => {
    const external = await a.tpm.client.run(loadExternal(parent.publicArea, TPM_RH.NULL));
    return a.tpm.using(external.handle, () => body(loaded, { handle: external.handle, name: external.name }));
  });
}

async function trialDigest(tpm: Tpm, steps: (session: PolicySession) => Promise<void>): Promise<Uint8Array> {
  const trial = await PolicySession.start(tpm.client, { trial: true });
  try {
    await steps(trial);
    return await trial.getDigest();
  } finally {
    await trial.flush(tpm.client);
  }
}

test('the calculator and the TPM agree on the use branch, the duplication branch, the key policy and an approved policy', async () => {
  const policy = await wrappingKeyPolicy(vendor.trust.policySigning.name, PRODUCT);
  const commandDigests = await Promise.all(USE_COMMANDS.map((code) => trialDigest(a.tpm, (s) => s.policyCommandCode(code))));
  assert.deepEqual(
    await trialDigest(a.tpm, async (s) => {
      await s.policyCommandCode(TPM_CC.Create);
      await s.policyOR(commandDigests);
      await s.policyAuthValue();
    }),
    policy.use,
  );
  const ref = await duplicationPolicyRef(PRODUCT);
  assert.deepEqual(await trialDigest(a.tpm, (s) => s.policyAuthorize(new Uint8Array(32), ref, vendor.trust.policySigning.name)), policy.duplication);
  assert.deepEqual(await trialDigest(a.tpm, (s) => s.policyOR([policy.use, policy.duplication])), policy.authPolicy);
  assert.deepEqual(key.publicArea.authPolicy, policy.authPolicy);
  assert.deepEqual(
    await trialDigest(a.tpm, async (s) => {
      await s.policyDuplicationSelect(key.name, srkB.name, true);
      await s.policyCommandCode(TPM_CC.Duplicate);
    }),
    await approvedDuplicationPolicy(key.name, srkB.name),
  );
});

test('to the named parent it works: A → B with the approval, and B opens the secret sealed on A', async () => {
  const wrapped = await wrapSecret(a.tpm, key, secret, authValue);
  assert.deepEqual(await unwrapSecret(a.tpm, key, wrapped, authValue), secret, 'A uses the key through its use branch');
  const approval = await approve(srkB);
  const duplicated = await duplicateWrappingKey(a.tpm, { trust: vendor.trust, key, approval: JSON.stringify(approval) });
  assert.equal(duplicated.newParentName, Buffer.from(srkB.name).toString('hex'));
  assert.equal(duplicated.encryptionKey.length, 32, 'an AES-128 inner wrapper (encryptedDuplication)');
  // Only B imports it: C (and A itself) are refused before the TPM and by the TPM.
  await assert.rejects(importWrappingKey(c.tpm, { trust: vendor.trust, duplicated: JSON.stringify(duplicated) }), refusedWith('duplication.wrong_parent'));
  const onB = await parseWrappingKey(JSON.stringify(await importWrappingKey(b.tpm, { trust: vendor.trust, duplicated: JSON.stringify(duplicated) })));
  assert.deepEqual(onB.name, key.name, 'the same key');
  assert.deepEqual(onB.parentName, srkB.name);
  assert.deepEqual(await unwrapSecret(b.tpm, onB, wrapped, authValue), secret, 'the child sealed on A opens on B');
  await assert.rejects(unwrapSecret(c.tpm, onB, wrapped, authValue), refusedWith('duplication.wrong_parent'));
});

test('to any other parent it fails: Sigil refuses an approval that names another key or parent, and the TPM refuses Duplicate to C', async () => {
  const approval = await parseDuplicationApproval(JSON.stringify(await approve(srkB)));
  // Software: the file says C but was signed for B.
  const relabelled = { ...approval, newParent: { publicArea: srkC.publicArea, name: srkC.name } };
  await assert.rejects(duplicateWrappingKey(a.tpm, { trust: vendor.trust, key, approval: relabelled }), refusedWith('duplication.approval_invalid'));
  // TPM: satisfy the policy for B, hand Duplicate C's handle.
  const ticket = await approvalTicket(a.tpm, vendor.trust, approval);
  await onA(srkC, (loaded, parentC) =>
    assert.rejects(duplicateOnTpm(a.tpm, { key: loaded, newParent: parentC, approval, ticket, signerName: key.signer }), refusedWith(/^tpm\.rc\.policy_fail/)),
  );
  // TPM: PolicyDuplicationSelect naming C does not reach the digest the vendor signed.
  await onA(srkC, (loaded, parentC) =>
    assert.rejects(
      duplicateOnTpm(a.tpm, { key: loaded, newParent: parentC, approval: { ...approval, newParent: { ...approval.newParent, name: srkC.name } }, ticket, signerName: key.signer }),
      refusedWith('tpm.rc.value'),
    ),
  );
  // An approval for another product's keys is refused too.
  const otherProduct = await parseDuplicationApproval(JSON.stringify(await approve(srkB, { productId: OTHER_PRODUCT })));
  await assert.rejects(duplicateWrappingKey(a.tpm, { trust: vendor.trust, key, approval: otherProduct }), refusedWith('device.product_mismatch'));
});

test('without the vendor signature it fails: no approval, another signer, a changed signature, the use branch, a password', async () => {
  const approval = await parseDuplicationApproval(JSON.stringify(await approve(srkB)));
  // Another key signed the same approval: Sigil refuses it, and its ticket does not satisfy the key's PolicyAuthorize.
  const intruder = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const forged = await parseDuplicationApproval(JSON.stringify(await approve(srkB, { policyKey: intruder })));
  await assert.rejects(duplicateWrappingKey(a.tpm, { trust: vendor.trust, key, approval: forged }), refusedWith('duplication.approval_signer_unknown'));
  const intruderTrust = { ...vendor.trust, policySigning: { ...vendor.trust.policySigning, tpmPublic: policySigningTpmPublic(intruder) } };
  const intruderTicket = await approvalTicket(a.tpm, intruderTrust, forged);
  await onA(srkB, (loaded, parentB) =>
    assert.rejects(duplicateOnTpm(a.tpm, { key: loaded, newParent: parentB, approval: forged, ticket: intruderTicket, signerName: forged.signer }), refusedWith('tpm.rc.value')),
  );
  // A changed signature: the TPM's VerifySignature refuses it.
  const s = approval.signature.s.slice();
  s[0] ^= 1;
  await assert.rejects(approvalTicket(a.tpm, vendor.trust, { ...approval, signature: { ...approval.signature, s } }), refusedWith('duplication.approval_signature_invalid'));
  await onA(srkB, async (loaded, parentB) => {
    // No approval at all: PolicyDuplicationSelect alone is not a branch of the key's policy.
    const bare = await PolicySession.start(a.tpm.client);
    try {
      await bare.policyDuplicationSelect(key.name, srkB.name, true);
      await bare.policyCommandCode(TPM_CC.Duplicate);
      await assert.rejects(bare.policyOR([key.policy.use, key.policy.duplication]), refusedWith('tpm.rc.value'));
    } finally {
      await bare.flush(a.tpm.client);
    }
    // The use branch names Load/Create/Import: Duplicate is not among them.
    const use = await PolicySession.start(a.tpm.client);
    try {
      await use.policyCommandCode(TPM_CC.Duplicate);
      await assert.rejects(use.policyOR(await useCommandDigests()), refusedWith('tpm.rc.value'));
    } finally {
      await use.flush(a.tpm.client);
    }
    // A use-branch session (Create) given to Duplicate: wrong command.
    const useCreate = await PolicySession.start(a.tpm.client);
    try {
      await useCreate.policyCommandCode(TPM_CC.Create);
      await useCreate.policyOR(await useCommandDigests());
      await useCreate.policyAuthValue();
      await useCreate.policyOR([key.policy.use, key.policy.duplication]);
      await assert.rejects(
        a.tpm.client.run(duplicate({ handle: loaded.handle, name: loaded.name, auth: authValue, session: useCreate }, parentB, AES_128_CFB)),
        refusedWith(/^tpm\.rc\.policy_cc/),
      );
    } finally {
      await useCreate.flush(a.tpm.client);
    }
    // A password never gives the DUP role.
    await assert.rejects(a.tpm.client.run(duplicate(auth({ handle: loaded.handle, name: loaded.name }, authValue), parentB, AES_128_CFB)), refusedWith(/^tpm\.rc\.auth_type/));
  });
  // With the real approval the same key does move (the refusals above were the policy's).
  const ticket = await approvalTicket(a.tpm, vendor.trust, approval);
  const moved = await onA(srkB, (loaded, parentB) => duplicateOnTpm(a.tpm, { key: loaded, newParent: parentB, approval, ticket, signerName: key.signer }));
  assert.ok(moved.duplicate.length > 0);
});
