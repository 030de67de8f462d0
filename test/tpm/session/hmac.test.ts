/**
 * HMAC sessions against swtpm: unbound/unsalted, bound (to another entity and to the object
 * itself), salted with RSA and ECC primaries, bound + salted. Each unseals a sealed object with
 * a userAuth: the right authValue gives the data, a wrong one TPM_RC_AUTH_FAIL.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SigilError } from '../../../src/core/errors.ts';
import { unseal } from '../../../src/tpm/commands/object.ts';
import { TPM_ALG } from '../../../src/tpm/constants.ts';
import { HmacSession, trimAuthValue, type SessionOptions } from '../../../src/tpm/session/hmac.ts';
import type { CreatePrimaryResult } from '../../../src/tpm/commands/object.ts';
import { bytes, createEccPrimary, createRsaPrimary, flush, seal, startFixture, withLoaded, type Fixture } from './helpers.ts';

let fx: Fixture;
let rsa: CreatePrimaryResult;
const secret = bytes('hmac-session secret payload');
const authValue = bytes('correct horse');
const wrongAuth = bytes('battery staple');

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

/** Unseal with `session`: right auth → data (twice: the nonces roll), wrong auth → AUTH_FAIL, then right again. */
async function unsealChecks(handle: number, session: HmacSession): Promise<void> {
  assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
  assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
  const error = await rejectsCode(fx.client.run(unseal({ handle, auth: wrongAuth, session })), 'tpm.rc.auth_fail');
  assert.match(error.message, /AUTH_FAIL/);
  // A failed command does not roll nonceTPM on either side, so the session stays usable.
  assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
}

async function withSession(options: SessionOptions, use: (session: HmacSession) => Promise<void>): Promise<void> {
  const session = await HmacSession.start(fx.client, options);
  try {
    assert.equal(session.handle >>> 24, 0x02, 'an HMAC session handle');
    await use(session);
  } finally {
    await session.flush(fx.client);
  }
}

test('an unbound, unsalted HMAC session authorizes Unseal with the authValue', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) => withSession({}, (session) => unsealChecks(handle, session)));
});

test('an unbound session with SHA-1 and with SHA-384 works too', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, async (handle) => {
    for (const hash of [TPM_ALG.SHA1, TPM_ALG.SHA384]) {
      await withSession({ hash }, async (session) => {
        assert.equal(session.nonceTpm.length, hash === TPM_ALG.SHA1 ? 20 : 48);
        assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
      });
    }
  });
});

test('a session bound to another entity (the primary) still mixes in the object authValue', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withSession({ bind: { handle: rsa.handle, authValue: new Uint8Array(0) } }, (session) => unsealChecks(handle, session)),
  );
});

test('a session bound to the sealed object itself omits the authValue from the HMAC key', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, async (handle, name) => {
    await withSession({ bind: { handle, name, authValue } }, async (session) => {
      assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
      assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
    });
    // Bound with the wrong authValue: the session key itself differs from the TPM's.
    await withSession({ bind: { handle, name, authValue: wrongAuth } }, async (session) => {
      await rejectsCode(fx.client.run(unseal({ handle, auth: wrongAuth, session })), 'tpm.rc.auth_fail');
    });
  });
});

test('a session bound to one object and used on another includes the other object authValue', async () => {
  const otherAuth = bytes('other object auth');
  const first = await seal(fx.client, rsa.handle, bytes('first'), { authValue: otherAuth });
  const second = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, first, (firstHandle, firstName) =>
    withLoaded(fx.client, rsa.handle, second, (handle) =>
      withSession({ bind: { handle: firstHandle, name: firstName, authValue: otherAuth } }, async (session) => {
        await unsealChecks(handle, session);
        // And on its own bound entity it still works, authValue omitted.
        assert.deepEqual(await fx.client.run(unseal({ handle: firstHandle, auth: otherAuth, session })), bytes('first'));
      }),
    ),
  );
});

test('a session salted with an RSA primary (OAEP, label SECRET) authorizes Unseal', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withSession({ salt: { handle: rsa.handle, publicArea: rsa.outPublic } }, (session) => unsealChecks(handle, session)),
  );
});

test('a session salted with an ECC P-256 primary (ECDH + KDFe) authorizes Unseal, also bound', async () => {
  const ecc = await createEccPrimary(fx.client);
  try {
    const sealed = await seal(fx.client, ecc.handle, secret, { authValue });
    await withLoaded(fx.client, ecc.handle, sealed, async (handle, name) => {
      const salt = { handle: ecc.handle, publicArea: ecc.outPublic };
      await withSession({ salt }, (session) => unsealChecks(handle, session));
      // Bound to the object and salted: the session key comes from authValue ‖ salt.
      await withSession({ salt, bind: { handle, name, authValue } }, async (session) => {
        assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
        assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
      });
      // Bound to the primary and salted with it: the object authValue still goes in.
      await withSession({ salt, bind: { handle: ecc.handle, authValue: new Uint8Array(0) } }, (session) => unsealChecks(handle, session));
    });
  } finally {
    await flush(fx.client, ecc.handle);
  }
});

test('trailing zero bytes of an authValue are ignored, as the TPM ignores them', async () => {
  assert.deepEqual(trimAuthValue(new Uint8Array([1, 2, 0, 0])), new Uint8Array([1, 2]));
  assert.deepEqual(trimAuthValue(new Uint8Array([0, 0])), new Uint8Array(0));
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue: new Uint8Array([7, 7, 0]) });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withSession({}, async (session) => {
      assert.deepEqual(await fx.client.run(unseal({ handle, auth: new Uint8Array([7, 7]), session })), secret);
      assert.deepEqual(await fx.client.run(unseal({ handle, auth: new Uint8Array([7, 7, 0, 0]), session })), secret);
    }),
  );
});

test('a tampered response HMAC is refused with tpm.response_hmac_invalid', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, (handle) =>
    withSession({}, async (session) => {
      assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
      fx.recorder.tamper = (response) => {
        response[response.length - 1] ^= 0x01; // the last byte of the response HMAC
        return response;
      };
      try {
        const error = await rejectsCode(fx.client.run(unseal({ handle, auth: authValue, session })), 'tpm.response_hmac_invalid');
        assert.match(error.message, /HMAC/);
      } finally {
        fx.recorder.tamper = undefined;
      }
      // A tampered response parameter fails the same check (rpHash covers the parameters).
      const sessionTwo = await HmacSession.start(fx.client);
      try {
        fx.recorder.tamper = (response) => {
          response[16] ^= 0x01; // inside the sealed data (after header, parameterSize, TPM2B size)
          return response;
        };
        await rejectsCode(fx.client.run(unseal({ handle, auth: authValue, session: sessionTwo })), 'tpm.response_hmac_invalid');
      } finally {
        fx.recorder.tamper = undefined;
        await sessionTwo.flush(fx.client);
      }
    }),
  );
});

test('continueSession=false closes the session after one command; flush is then a no-op', async () => {
  const sealed = await seal(fx.client, rsa.handle, secret, { authValue });
  await withLoaded(fx.client, rsa.handle, sealed, async (handle) => {
    const session = await HmacSession.start(fx.client, { continueSession: false });
    assert.deepEqual(await fx.client.run(unseal({ handle, auth: authValue, session })), secret);
    assert.equal(session.isOpen, false);
    await rejectsCode(fx.client.run(unseal({ handle, auth: authValue, session })), 'tpm.session_closed');
    await session.flush(fx.client);
  });
});
