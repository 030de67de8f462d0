import { randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../core/bytes.ts';
import { SigilError, asSigilError } from '../core/errors.ts';
import { toHex } from '../core/hex.ts';
import { create, load, unseal } from '../tpm/commands/object.ts';
import { TPM_ALG, TPM_CC, TPM_ECC_CURVE, TPMA_OBJECT } from '../tpm/constants.ts';
import type { AuthHandle } from '../tpm/handles.ts';
import { marshal, unmarshal } from '../tpm/marshal/codec.ts';
import { objectName } from '../tpm/names.ts';
import { HmacSession } from '../tpm/session/hmac.ts';
import { PolicySession } from '../tpm/session/policy.ts';
import { TPM2B_PRIVATE } from '../tpm/structures/basic.ts';
import { AES_128_CFB, SCHEME_NULL, TPM2B_PUBLIC, type EccPublic, type KeyedHashPublic, type TpmPublic } from '../tpm/structures/public.ts';
import { storageKey } from '../tpm/tpm-keys.ts';
import type { Tpm } from '../tpm/tpm.ts';
import { checkProductId } from '../device/identifiers.ts';
import { field, hexField, parseJsonObject } from '../device/json-input.ts';
import { useCommandDigests, wrappingKeyPolicy, USE_COMMANDS, type WrappingKeyPolicy } from './duplication-policy.ts';

/**
 * A movable wrapping key (see duplication-policy.ts for its policy) and the files that carry it.
 *
 * File (JSON, "sigil.wrapping-key.v1"), nothing secret in it (the private part is encrypted by the
 * parent):
 *   { "format", "productId", "signer": hex (vendor policy key name), "name": hex,
 *     "public": hex TPM2B_PUBLIC, "private": hex TPM2B_PRIVATE, "parentName": hex (the SRK it is under) }
 * Reading one recomputes the policy from signer and product and refuses any other key shape.
 */
export const WRAPPING_KEY_FORMAT = 'sigil.wrapping-key.v1';
const KEY_CODE = 'duplication.key_invalid';

/** Movable (fixedTPM/fixedParent clear) but never in the clear (encryptedDuplication), policy-only (no userWithAuth). */
export const WRAPPING_KEY_ATTRIBUTES =
  TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.adminWithPolicy | TPMA_OBJECT.encryptedDuplication;
const FORBIDDEN_ATTRIBUTES = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign;

export function wrappingKeyTemplate(authPolicy: Uint8Array): EccPublic {
  return {
    type: TPM_ALG.ECC,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: WRAPPING_KEY_ATTRIBUTES,
    authPolicy: authPolicy.slice(),
    symmetric: { ...AES_128_CFB },
    scheme: { ...SCHEME_NULL },
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: { ...SCHEME_NULL },
    unique: { x: new Uint8Array(0), y: new Uint8Array(0) },
  };
}

export interface WrappingKey {
  productId: string;
  signer: Uint8Array;
  publicArea: TpmPublic;
  name: Uint8Array;
  privateBlob: Uint8Array;
  parentName: Uint8Array;
  policy: WrappingKeyPolicy;
}

export interface WrappingKeyDocument {
  format: typeof WRAPPING_KEY_FORMAT;
  productId: string;
  signer: string;
  name: string;
  public: string;
  private: string;
  parentName: string;
}

export function wrappingKeyDocument(key: Omit<WrappingKey, 'policy'>): WrappingKeyDocument {
  return {
    format: WRAPPING_KEY_FORMAT,
    productId: key.productId,
    signer: toHex(key.signer),
    name: toHex(key.name),
    public: toHex(marshal(TPM2B_PUBLIC, key.publicArea)),
    private: toHex(key.privateBlob),
    parentName: toHex(key.parentName),
  };
}

/** The key's shape: exactly the wrapping-key template under exactly the policy for (signer, product). */
export async function checkWrappingKeyPublic(publicArea: TpmPublic, signer: Uint8Array, productId: string, code = KEY_CODE): Promise<WrappingKeyPolicy> {
  const policy = await wrappingKeyPolicy(signer, productId);
  const attributes = publicArea.objectAttributes;
  if (publicArea.type !== TPM_ALG.ECC || publicArea.nameAlg !== TPM_ALG.SHA256 || (attributes & WRAPPING_KEY_ATTRIBUTES) !== WRAPPING_KEY_ATTRIBUTES || attributes & FORBIDDEN_ATTRIBUTES) {
    throw new SigilError(code, 'the key is not a Sigil wrapping key (restricted ECC storage key, encryptedDuplication, policy-only)', { attributes });
  }
  if (!constantTimeEqual(publicArea.authPolicy, policy.authPolicy)) {
    throw new SigilError(code, "the key's policy is not PolicyOR(use, vendor-approved duplication) for this vendor and product: it might move without approval");
  }
  return policy;
}

export async function parseWrappingKey(input: unknown): Promise<WrappingKey> {
  try {
    const doc = parseJsonObject(input, KEY_CODE, 'wrapping key file');
    if (doc.format !== WRAPPING_KEY_FORMAT) throw new SigilError(KEY_CODE, `not a Sigil wrapping key (format ${WRAPPING_KEY_FORMAT})`);
    const productId = checkProductId(field(doc, 'productId', 'string', KEY_CODE), KEY_CODE);
    const signer = hexField(doc, 'signer', KEY_CODE, { size: 34 });
    const publicArea = unmarshal(TPM2B_PUBLIC, hexField(doc, 'public', KEY_CODE, { max: 1024 }), KEY_CODE);
    const name = hexField(doc, 'name', KEY_CODE, { size: 34 });
    if (!constantTimeEqual(await objectName(publicArea), name)) throw new SigilError(KEY_CODE, 'the key name does not match its public area');
    const policy = await checkWrappingKeyPublic(publicArea, signer, productId);
    const privateBlob = hexField(doc, 'private', KEY_CODE, { max: 2048 });
    unmarshal(TPM2B_PRIVATE, marshal(TPM2B_PRIVATE, privateBlob), KEY_CODE);
    return { productId, signer, publicArea, name, privateBlob, parentName: hexField(doc, 'parentName', KEY_CODE, { max: 66 }), policy };
  } catch (error) {
    if (error instanceof SigilError && !error.code.startsWith('duplication.')) {
      throw new SigilError(KEY_CODE, `the wrapping key file is malformed: ${error.message}`, { reason: error.code }, { cause: error });
    }
    throw asSigilError(error, KEY_CODE, 'the wrapping key file could not be read');
  }
}

export interface CreateWrappingKeyOptions {
  /** The vendor policy-signing key's TPM name (trust.policySigning.name): who approves moves. */
  signer: Uint8Array;
  productId: string;
  /** The key's authValue, required by its use branch (PolicyAuthValue). Empty by default. */
  authValue?: Uint8Array;
}

/** Create a wrapping key under this TPM's SRK (the authValue travels encrypted: a session salted to the SRK). */
export async function createWrappingKey(tpm: Tpm, options: CreateWrappingKeyOptions): Promise<WrappingKeyDocument> {
  const productId = checkProductId(options.productId);
  const policy = await wrappingKeyPolicy(options.signer, productId);
  const srk = await storageKey(tpm);
  try {
    const session = await HmacSession.start(tpm.client, { salt: { handle: srk.handle, publicArea: srk.publicArea }, decrypt: true });
    let created;
    try {
      created = await tpm.client.run(create({ handle: srk.handle, name: srk.name, session }, { inSensitive: { userAuth: options.authValue ?? new Uint8Array(0) }, inPublic: wrappingKeyTemplate(policy.authPolicy) }));
    } finally {
      await session.flush(tpm.client).catch(() => undefined);
    }
    return wrappingKeyDocument({ productId, signer: options.signer, publicArea: created.outPublic, name: await objectName(created.outPublic), privateBlob: created.outPrivate, parentName: srk.name });
  } finally {
    if (srk.transient) await tpm.flush(srk.handle).catch(() => undefined);
  }
}

export interface LoadedWrappingKey {
  handle: number;
  name: Uint8Array;
  key: WrappingKey;
}

/** Load a wrapping key under this TPM's SRK; run `use`, then flush it. */
export async function withWrappingKey<R>(tpm: Tpm, key: WrappingKey, use: (loaded: LoadedWrappingKey) => Promise<R>): Promise<R> {
  const srk = await storageKey(tpm);
  try {
    if (!constantTimeEqual(srk.name, key.parentName)) {
      throw new SigilError('duplication.wrong_parent', "the wrapping key lives under another TPM's storage key: import a duplicate of it here first", {
        expected: toHex(key.parentName),
        actual: toHex(srk.name),
      });
    }
    const loaded = await tpm.client.run(load({ handle: srk.handle, name: srk.name }, key.privateBlob, key.publicArea));
    return await tpm.using(loaded.handle, () => use({ handle: loaded.handle, name: loaded.name, key }));
  } finally {
    if (srk.transient) await tpm.flush(srk.handle).catch(() => undefined);
  }
}

/**
 * Authorize one use of the key (Load, Create or Import of a child): the use branch —
 * PolicyCommandCode(code) → PolicyOR(Load, Create, Import) → PolicyAuthValue — then the top PolicyOR.
 */
export async function useWrappingKey<R>(tpm: Tpm, loaded: LoadedWrappingKey, commandCode: number, authValue: Uint8Array | undefined, run: (parent: AuthHandle) => Promise<R>): Promise<R> {
  if (!USE_COMMANDS.includes(commandCode as (typeof USE_COMMANDS)[number])) {
    throw new SigilError('duplication.use_invalid', `a wrapping key's use branch allows Load, Create and Import only, not command 0x${commandCode.toString(16)}`);
  }
  const session = await PolicySession.start(tpm.client);
  try {
    await session.policyCommandCode(commandCode);
    await session.policyOR(await useCommandDigests());
    await session.policyAuthValue();
    await session.policyOR([loaded.key.policy.use, loaded.key.policy.duplication]);
    return await run({ handle: loaded.handle, name: loaded.name, auth: authValue ?? new Uint8Array(0), session });
  } finally {
    await session.flush(tpm.client).catch(() => undefined);
  }
}

export interface WrappedSecret {
  publicArea: KeyedHashPublic;
  privateBlob: Uint8Array;
}

/** A sealed-data child of the wrapping key: fixedParent (moves only with its parent), never alone. */
function childTemplate(): KeyedHashPublic {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: TPMA_OBJECT.fixedParent | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.encryptedDuplication,
    authPolicy: new Uint8Array(0),
    scheme: { ...SCHEME_NULL },
    unique: new Uint8Array(0),
  };
}

/** Seal a secret (≤ 128 bytes) under the wrapping key: it opens wherever the key is, and only there. */
export async function wrapSecret(tpm: Tpm, key: WrappingKey, secret: Uint8Array, authValue?: Uint8Array): Promise<WrappedSecret> {
  if (secret.length === 0 || secret.length > 128) throw new SigilError('duplication.secret_invalid', 'a wrapped secret is 1-128 bytes');
  return withWrappingKey(tpm, key, (loaded) =>
    useWrappingKey(tpm, loaded, TPM_CC.Create, authValue, async (parent) => {
      const created = await tpm.client.run(create(parent, { inSensitive: { data: secret }, inPublic: childTemplate() }));
      return { publicArea: created.outPublic as KeyedHashPublic, privateBlob: created.outPrivate };
    }),
  );
}

export async function unwrapSecret(tpm: Tpm, key: WrappingKey, wrapped: WrappedSecret, authValue?: Uint8Array): Promise<Uint8Array> {
  return withWrappingKey(tpm, key, async (loaded) => {
    const child = await useWrappingKey(tpm, loaded, TPM_CC.Load, authValue, (parent) => tpm.client.run(load(parent, wrapped.privateBlob, wrapped.publicArea)));
    return tpm.using(child.handle, async () => {
      const session = await HmacSession.start(tpm.client, { salt: { handle: loaded.handle, publicArea: loaded.key.publicArea }, encrypt: true });
      try {
        return await tpm.client.run(unseal({ handle: child.handle, name: child.name, session }));
      } finally {
        await session.flush(tpm.client).catch(() => undefined);
      }
    });
  });
}

/** A random authValue whose last byte is not zero (the TPM trims trailing zeros). */
export function randomAuthValue(): Uint8Array {
  const value = new Uint8Array(randomBytes(32));
  if (value[31] === 0) value[31] = 1;
  return value;
}
