/**
 * Parameter encryption against swtpm, checked on the wire through a RecordingTransport: a secret
 * sealed with Create (decrypt session encrypts inSensitive) and read back with Unseal (encrypt
 * session) must never appear in any recorded command or response. The control case without
 * encryption shows that the same inspection does find it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { unseal, type CreatePrimaryResult } from '../../../src/tpm/commands/object.ts';
import { TPM_ALG, TPM_CC } from '../../../src/tpm/constants.ts';
import { HmacSession, type SessionOptions } from '../../../src/tpm/session/hmac.ts';
import type { Session } from '../../../src/tpm/session/session.ts';
import { bytes, contains, createRsaPrimary, flush, seal, startFixture, withLoaded, type Fixture } from './helpers.ts';

let fx: Fixture;
let rsa: CreatePrimaryResult;
const secret = bytes('TOP-SECRET: disk key 0123456789abcdef');
const authValue = bytes('object password');

before(async () => {
  fx = await startFixture();
  rsa = await createRsaPrimary(fx.client);
});

after(async () => {
  if (rsa) await flush(fx.client, rsa.handle);
  await fx?.close();
});

/** The RSA primary as the salt key: without a salt or an authValue, parameter keys would be public. */
function rsaSalt() {
  return { handle: rsa.handle, publicArea: rsa.outPublic };
}

/** Whether the secret shows up in any command or response since the last clear(). */
function secretOnWire(): { inCommand: boolean; inResponse: boolean } {
  return {
    inCommand: fx.recorder.exchanges.some((e) => contains(e.command, secret)),
    inResponse: fx.recorder.exchanges.some((e) => contains(e.response, secret)),
  };
}

async function withSessions<T>(list: SessionOptions[], use: (sessions: HmacSession[]) => Promise<T>): Promise<T> {
  const sessions: HmacSession[] = [];
  try {
    for (const options of list) sessions.push(await HmacSession.start(fx.client, options));
    return await use(sessions);
  } finally {
    for (const s of sessions) await s.flush(fx.client);
  }
}

test('control: without parameter encryption the secret crosses the wire in clear', async () => {
  fx.recorder.clear();
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  const unsealed = await withLoaded(fx.client, rsa.handle, sealed, (handle) => fx.client.run(unseal({ handle, auth: authValue })));
  assert.deepEqual(unsealed, secret);
  assert.deepEqual(secretOnWire(), { inCommand: true, inResponse: true });
});

test('AES-128-CFB: Create with a decrypt session and Unseal with an encrypt session keep the secret off the wire', async () => {
  await withSessions([{ decrypt: true, salt: rsaSalt() }], async ([session]) => {
    fx.recorder.clear();
    const sealed = await seal(fx.client, rsa.handle, secret, { authValue, parentSession: session });
    session.decrypt = false;
    session.encrypt = true;
    const unsealed = await withLoaded(fx.client, rsa.handle, sealed, (handle) => fx.client.run(unseal({ handle, auth: authValue, session })));
    assert.deepEqual(unsealed, secret);
    assert.deepEqual(secretOnWire(), { inCommand: false, inResponse: false });
  });
});

test('salted sessions with SHA-256, SHA-384 and AES-256 encrypt both ways', async () => {
  const salt = rsaSalt();
  for (const options of [{ salt }, { salt, hash: TPM_ALG.SHA384 }, { salt, symmetric: { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB } }]) {
    await withSessions([{ ...options, decrypt: true, encrypt: true }], async ([session]) => {
      fx.recorder.clear();
      const sealed = await seal(fx.client, rsa.handle, secret, { authValue, parentSession: session });
      session.decrypt = false; // Unseal has no command parameter to encrypt
      const unsealed = await withLoaded(fx.client, rsa.handle, sealed, (handle) => fx.client.run(unseal({ handle, auth: authValue, session })));
      assert.deepEqual(unsealed, secret);
      assert.deepEqual(secretOnWire(), { inCommand: false, inResponse: false });
    });
  }
});

test('XOR obfuscation keeps the secret off the wire as well', async () => {
  const xor = { algorithm: TPM_ALG.XOR, keyBits: TPM_ALG.SHA256 };
  await withSessions([{ symmetric: xor, decrypt: true, salt: rsaSalt() }], async ([session]) => {
    fx.recorder.clear();
    const sealed = await seal(fx.client, rsa.handle, secret, { authValue, parentSession: session });
    session.decrypt = false;
    session.encrypt = true;
    const unsealed = await withLoaded(fx.client, rsa.handle, sealed, (handle) => fx.client.run(unseal({ handle, auth: authValue, session })));
    assert.deepEqual(unsealed, secret);
    assert.deepEqual(secretOnWire(), { inCommand: false, inResponse: false });
  });
});

test('a session bound to the object still mixes its authValue into the parameter key', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle, name) =>
    withSessions([{ bind: { handle, name, authValue }, encrypt: true }], async ([session]) => {
      fx.recorder.clear();
      assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
      assert.deepEqual(secretOnWire(), { inCommand: false, inResponse: false });
    }),
  );
});

test('separate encrypt-only sessions: their nonceTPM joins the first authorization HMAC', async () => {
  // Session 0 authorizes (HMAC, no encryption); session 1 decrypts, session 2 encrypts. Sessions
  // that authorize nothing have only their session key to encrypt with, so they are salted.
  const salt = rsaSalt();
  await withSessions([{}, { decrypt: true, salt }, { encrypt: true, salt }], async ([auth, decrypt, encrypt]) => {
    fx.recorder.clear();
    const extraSessions: Session[] = [decrypt, encrypt];
    const sealed = await seal(fx.client, rsa.handle, secret, { authValue, parentSession: auth, runOptions: { extraSessions } });
    // One extra session that does nothing but encrypt the response, sitting after the auth session.
    const unsealed = await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
      fx.client.run(unseal({ handle, auth: authValue, session: auth }), { extraSessions: [encrypt] }),
    );
    assert.deepEqual(unsealed, secret);
    assert.deepEqual(secretOnWire(), { inCommand: false, inResponse: false });
  });
});

test('a password authorization with an encrypt-only HMAC session beside it', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withSessions([{ encrypt: true, salt: rsaSalt() }], async ([encrypt]) => {
      fx.recorder.clear();
      assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue }), { extraSessions: [encrypt] }), secret);
      assert.deepEqual(secretOnWire(), { inCommand: false, inResponse: false });
    }),
  );
});

test('encryption keyed by nothing secret (unsalted, unbound, empty authValue) is refused before sending', async () => {
  await withSessions([{ encrypt: true }], async ([encrypt]) => {
    const sealed = await seal(fx.client, rsa.handle, secret);
    await withLoaded(fx.client, rsa.handle, sealed, async (handle) => {
      fx.recorder.clear();
      for (const run of [
        () => fx.client.run(unseal({ handle, session: encrypt })),
        () => fx.client.run(unseal({ handle }), { extraSessions: [encrypt] }),
      ]) {
        const error = await run().then(
          () => assert.fail('expected a refusal'),
          (e: unknown) => e as { code?: string },
        );
        assert.equal(error.code, 'tpm.session_unprotected');
      }
      const commandCodes = fx.recorder.exchanges.map((e) => Buffer.from(e.command).readUInt32BE(6));
      assert.equal(commandCodes.includes(TPM_CC.Unseal), false, 'Unseal never went to the TPM');
    });
    // With the object's authValue in the key (the session authorizes it) the same session is fine.
    const withAuth = await seal(fx.client, rsa.handle, secret, { authValue });
    await withLoaded(fx.client, rsa.handle, withAuth, async (handle) => {
      assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session: encrypt })), secret);
    });
  });
});
