import { randomBytes } from 'node:crypto';
import { concatBytes, constantTimeEqual, Writer } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { hashAlg } from '../algorithms.ts';
import type { TpmClient } from '../client.ts';
import { flushContext } from '../commands/context.ts';
import { startAuthSession } from '../commands/session.ts';
import { TPM_ALG, TPM_SE, TPMA_SESSION } from '../constants.ts';
import { hashBytes, hmacBytes, kdfa } from '../crypto/kdf.ts';
import { AES_128_CFB, type SymmetricDefinition, type TpmPublic } from '../structures/public.ts';
import { decryptParameterData, encryptParameterData } from './parameter-encryption.ts';
import { encryptSalt } from './salt.ts';
import type { CommandContext, ResponseAuth, ResponseContext, Session, SessionEntity } from './session.ts';

/**
 * HMAC sessions (Part 1, 19.6) and the machinery policy sessions share with them: starting a
 * session (salt, bind, session key), rolling nonces, command and response HMACs, parameter
 * encryption. The arithmetic follows the reference implementation's SessionProcess.c.
 */

export interface SessionBind {
  handle: number;
  /** The entity's name; looked up with ReadPublic / NV_ReadPublic when absent. */
  name?: Uint8Array;
  authValue?: Uint8Array;
}

export interface SessionSalt {
  /** A loaded RSA (OAEP) or ECC decryption key, e.g. the SRK or EK. */
  handle: number;
  publicArea: TpmPublic;
}

export interface SessionOptions {
  /** The session's hash (authHash); SHA-256 by default. */
  hash?: number;
  bind?: SessionBind;
  salt?: SessionSalt;
  /** Parameter cipher; AES-128-CFB by default. XOR is accepted too. */
  symmetric?: SymmetricDefinition;
  /** Encrypt the first command parameter (TPMA_SESSION.decrypt). */
  decrypt?: boolean;
  /** Have the TPM encrypt the first response parameter (TPMA_SESSION.encrypt). */
  encrypt?: boolean;
  /** Keep the session after each command (default true). */
  continueSession?: boolean;
}

/** The TPM removes trailing zero octets from an authValue before using it (Part 1, 19.6.4.3). */
export function trimAuthValue(authValue: Uint8Array): Uint8Array {
  let end = authValue.length;
  while (end > 0 && authValue[end - 1] === 0) end--;
  return authValue.subarray(0, end);
}

const u32 = (n: number) => new Writer(4).u32(n).finish();

/** What StartAuthSession established, handed to the session classes' constructors. */
export interface StartedSession {
  handle: number;
  hash: number;
  symmetric: SymmetricDefinition;
  sessionKey: Uint8Array;
  nonceTpm: Uint8Array;
  /** Bound entity: its name and trimmed authValue (Part 1, 19.6.10). */
  bound?: { name: Uint8Array; authValue: Uint8Array };
  options: SessionOptions;
}

/** TPM2_StartAuthSession plus the caller's half: sessionKey = KDFa(hash, bindAuth ‖ salt, "ATH", nonceTPM, nonceCaller). */
export async function openSession(client: TpmClient, sessionType: number, options: SessionOptions): Promise<StartedSession> {
  const hash = options.hash ?? TPM_ALG.SHA256;
  const digestSize = hashAlg(hash).size;
  const symmetric = options.symmetric ?? AES_128_CFB;
  // Checked before StartAuthSession, so a refused option leaves no session behind on the TPM.
  if ((options.decrypt || options.encrypt) && symmetric.algorithm === TPM_ALG.NULL) {
    throw new SigilError('tpm.session_invalid', 'parameter encryption needs a symmetric algorithm other than NULL');
  }
  const nonceCaller = new Uint8Array(randomBytes(digestSize));
  const salted = options.salt ? encryptSalt(options.salt.publicArea) : undefined;
  const bindAuth = trimAuthValue(options.bind?.authValue ?? new Uint8Array(0));
  const bound = options.bind ? { name: await client.nameOf(options.bind.handle, options.bind.name), authValue: bindAuth } : undefined;
  const started = await client.run(
    startAuthSession({
      tpmKey: options.salt?.handle,
      bind: options.bind?.handle,
      nonceCaller,
      encryptedSalt: salted?.encryptedSalt,
      sessionType,
      symmetric,
      authHash: hash,
    }),
  );
  const keyInput = concatBytes(bindAuth, salted?.salt ?? new Uint8Array(0));
  // Neither bound nor salted: the session key is empty and HMACs are keyed by authValues alone.
  // A bind to an entity with an empty authValue still derives a key (reference SessionCreate).
  const sessionKey = !options.bind && !salted ? new Uint8Array(0) : kdfa(hash, keyInput, 'ATH', started.nonceTpm, nonceCaller, digestSize * 8);
  return { handle: started.handle, hash, symmetric, sessionKey, nonceTpm: started.nonceTpm, bound, options };
}

/**
 * The shared half of HMAC and policy sessions. Subclasses say when the entity's authValue joins
 * the HMAC key and whether the HMAC field carries a password instead (PolicyPassword).
 */
export abstract class KeyedSession implements Session {
  readonly handle: number;
  readonly hash: number;
  readonly symmetric: SymmetricDefinition;
  /** Mutable so one session can serve commands whose first parameters differ. */
  decrypt: boolean;
  encrypt: boolean;
  continueSession: boolean;
  readonly needsNames = true;
  protected readonly sessionKey: Uint8Array;
  private nonceCaller: Uint8Array = new Uint8Array(0);
  private currentNonceTpm: Uint8Array;
  private entity: SessionEntity | undefined;
  private open = true;

  protected constructor(started: StartedSession) {
    this.handle = started.handle;
    this.hash = started.hash;
    this.symmetric = started.symmetric;
    this.sessionKey = started.sessionKey;
    this.currentNonceTpm = started.nonceTpm;
    this.decrypt = started.options.decrypt ?? false;
    this.encrypt = started.options.encrypt ?? false;
    this.continueSession = started.options.continueSession ?? true;
  }

  /** The TPM's latest nonce (PolicySigned/PolicySecret bind to it). */
  get nonceTpm(): Uint8Array {
    return this.currentNonceTpm;
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Whether the entity's authValue is part of the HMAC key for this authorization. */
  protected abstract includeAuthValue(entity: SessionEntity): boolean;

  /** PolicyPassword: the HMAC field is the authValue in clear and the response HMAC is empty. */
  protected usesPassword(): boolean {
    return false;
  }

  /** Called after a verified response; `continued` is false when the TPM closed the session. */
  protected afterResponse(_continued: boolean): void {}

  protected assertOpen(): void {
    if (!this.open) throw new SigilError('tpm.session_closed', `session 0x${this.handle.toString(16)} is closed`);
  }

  prepare(entity: SessionEntity | undefined): void {
    this.assertOpen();
    this.entity = entity;
    this.nonceCaller = new Uint8Array(randomBytes(hashAlg(this.hash).size));
    // With no session key and no authValue the parameter key would be derived from the nonces
    // alone, which cross the wire: encryption in name only. Refuse rather than pretend.
    if ((this.decrypt || this.encrypt) && this.cipherKey().length === 0) {
      throw new SigilError(
        'tpm.session_unprotected',
        'parameter encryption needs a secret key: salt the session (or bind it to an entity with an authValue), or authorize an entity that has an authValue',
        { session: `0x${this.handle.toString(16)}` },
      );
    }
  }

  private attributes(): number {
    return (this.continueSession ? TPMA_SESSION.continueSession : 0) | (this.decrypt ? TPMA_SESSION.decrypt : 0) | (this.encrypt ? TPMA_SESSION.encrypt : 0);
  }

  private hmacKey(): Uint8Array {
    const entity = this.entity;
    if (!entity || !this.includeAuthValue(entity)) return this.sessionKey;
    return concatBytes(this.sessionKey, trimAuthValue(entity.authValue));
  }

  /** Parameter encryption always mixes in an authorized entity's authValue, bound or not. */
  private cipherKey(): Uint8Array {
    return this.entity ? concatBytes(this.sessionKey, trimAuthValue(this.entity.authValue)) : this.sessionKey;
  }

  encryptParameter(data: Uint8Array): Uint8Array {
    const cipher = { hash: this.hash, symmetric: this.symmetric, key: this.cipherKey(), nonceNewer: this.nonceCaller, nonceOlder: this.currentNonceTpm };
    return encryptParameterData(cipher, data);
  }

  /** cpHash = H(commandCode ‖ names ‖ parameters); HMAC over cpHash ‖ nonceCaller ‖ nonceTPM ‖ extra nonces ‖ attributes. */
  authorize(context: CommandContext): Uint8Array {
    const attributes = this.attributes();
    let hmac: Uint8Array;
    if (this.usesPassword() && this.entity) {
      hmac = trimAuthValue(this.entity.authValue);
    } else {
      const cpHash = hashBytes(this.hash, u32(context.commandCode), ...context.handleNames, context.parameters);
      hmac = hmacBytes(this.hash, this.hmacKey(), cpHash, this.nonceCaller, this.currentNonceTpm, ...(context.extraNonces ?? []), new Uint8Array([attributes]));
    }
    return new Writer(16 + this.nonceCaller.length + hmac.length).u32(this.handle).sized16(this.nonceCaller).u8(attributes).sized16(hmac).finish();
  }

  /** rpHash = H(TPM_RC_SUCCESS ‖ commandCode ‖ parameters); HMAC over rpHash ‖ nonceTPM ‖ nonceCaller ‖ attributes. */
  verifyResponse(context: ResponseContext, auth: ResponseAuth): void {
    if (this.usesPassword() && this.entity) {
      if (auth.hmac.length !== 0) throw new SigilError('tpm.response_hmac_invalid', 'a PolicyPassword response must carry an empty HMAC');
    } else {
      const rpHash = hashBytes(this.hash, u32(0), u32(context.commandCode), context.parameters);
      const expected = hmacBytes(this.hash, this.hmacKey(), rpHash, auth.nonce, this.nonceCaller, new Uint8Array([auth.attributes]));
      if (!constantTimeEqual(expected, auth.hmac)) {
        throw new SigilError('tpm.response_hmac_invalid', 'the TPM response HMAC does not verify: the response was altered or does not come from this session', {
          session: `0x${this.handle.toString(16)}`,
        });
      }
    }
    this.currentNonceTpm = auth.nonce;
    const continued = (auth.attributes & TPMA_SESSION.continueSession) !== 0;
    if (!continued) this.open = false;
    this.afterResponse(continued);
  }

  decryptParameter(data: Uint8Array): Uint8Array {
    // verifyResponse already rolled nonceTPM: the response is protected with the new one.
    const cipher = { hash: this.hash, symmetric: this.symmetric, key: this.cipherKey(), nonceNewer: this.currentNonceTpm, nonceOlder: this.nonceCaller };
    return decryptParameterData(cipher, data);
  }

  /** FlushContext; a no-op once the TPM has closed the session. */
  async flush(client: TpmClient): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await client.run(flushContext(this.handle));
  }
}

/** An HMAC authorization session; also usable purely for parameter encryption (as an extra session). */
export class HmacSession extends KeyedSession {
  private readonly bound: StartedSession['bound'];

  private constructor(started: StartedSession) {
    super(started);
    this.bound = started.bound;
  }

  static async start(client: TpmClient, options: SessionOptions = {}): Promise<HmacSession> {
    return new HmacSession(await openSession(client, TPM_SE.HMAC, options));
  }

  /**
   * Omitted only when authorizing the very entity the session is bound to (Part 1, 19.6.10; the
   * reference IsSessionBindEntity compares the name, and for objects and NV indexes the authValue too).
   */
  protected includeAuthValue(entity: SessionEntity): boolean {
    const bound = this.bound;
    if (!bound) return true;
    const sameName = constantTimeEqual(bound.name, entity.name);
    if (entity.name.length === 4) return !sameName; // permanent handles and PCRs: the handle is the bind value
    return !(sameName && constantTimeEqual(bound.authValue, trimAuthValue(entity.authValue)));
  }
}
