import { Reader, Writer } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import type { Command } from './command.ts';
import { TPM_CC, TPM_ST } from './constants.ts';
import { handleIsOwnName, handleName, handleType, type AuthHandle } from './handles.ts';
import { commandName, decodeResponseCode, errorCodeFor } from './response-codes.ts';
import { PasswordSession } from './session/password.ts';
import type { Session } from './session/session.ts';
import type { TpmTransport } from './transport/transport.ts';

export interface RunOptions {
  /** Sessions beyond the authorization slots: parameter encryption or audit only. */
  extraSessions?: Session[];
}

/**
 * Executes Commands over a transport: marshals the command, runs each session's steps in the
 * order Part 1 gives, checks the response header and every response HMAC, decrypts, parses.
 * A TPM error becomes a SigilError whose code names the TPM_RC (`tpm.rc.policy_fail`).
 */
export class TpmClient {
  readonly transport: TpmTransport;
  /** Called when a session needs an object or NV name that the caller did not give. */
  private readonly nameCache = new Map<number, Uint8Array>();

  constructor(transport: TpmTransport) {
    this.transport = transport;
  }

  async run<R>(command: Command<R>, options: RunOptions = {}): Promise<R> {
    const authSessions: Session[] = [];
    for (let i = 0; i < command.authHandles; i++) {
      authSessions.push((command.handles[i] as AuthHandle).session ?? new PasswordSession());
    }
    const sessions = [...authSessions, ...(options.extraSessions ?? [])];
    const needNames = sessions.some((s) => s.needsNames);
    const handleNames = needNames ? await Promise.all(command.handles.map((h) => this.nameOf(h.handle, h.name))) : [];

    for (let i = 0; i < sessions.length; i++) {
      const handle = command.handles[i] as AuthHandle | undefined;
      const entity =
        i < command.authHandles && handle
          ? { handle: handle.handle, name: handleNames[i] ?? handleName(handle.handle), authValue: handle.auth ?? new Uint8Array(0) }
          : undefined;
      await sessions[i].prepare(entity);
    }

    let parameters = command.parameters;
    const decryptSession = sessions.find((s) => s.decrypt);
    if (decryptSession?.encryptParameter) {
      if (!command.encryptableCommand) {
        throw new SigilError('tpm.encrypt_unsupported', `${commandName(command.code)} has no first TPM2B parameter to encrypt`);
      }
      parameters = await encryptFirstParameter(parameters, decryptSession);
    }

    const w = new Writer(64 + parameters.length);
    w.u16(sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS).u32(0).u32(command.code);
    for (const h of command.handles) w.u32(h.handle);
    if (sessions.length > 0) {
      const context = { commandCode: command.code, handleNames, parameters };
      const first = command.authHandles > 0 ? { ...context, extraNonces: extraNonces(sessions) } : context;
      const auths = await Promise.all(sessions.map((s, i) => s.authorize(i === 0 ? first : context)));
      let authSize = 0;
      for (const a of auths) authSize += a.length;
      w.u32(authSize);
      for (const a of auths) w.bytes(a);
    }
    w.bytes(parameters);
    const bytes = w.finish();
    new DataView(bytes.buffer).setUint32(2, bytes.length);

    const response = await this.sendRetrying(bytes);
    return this.parseResponse(command, sessions, response);
  }

  private async parseResponse<R>(command: Command<R>, sessions: Session[], response: Uint8Array): Promise<R> {
    const name = `TPM2_${commandName(command.code)}`;
    const r = new Reader(response, { errorCode: 'tpm.response_truncated', what: `${name} response` });
    const tag = r.u16();
    const size = r.u32();
    const rc = r.u32();
    if (size !== response.length) r.fail(`header size ${size} but ${response.length} bytes arrived`, {}, 'tpm.response_malformed');
    if (rc !== 0) {
      const decoded = decodeResponseCode(rc);
      const where = decoded.position ? ` (${decoded.position})` : '';
      throw new SigilError(errorCodeFor(decoded), `${name} failed: TPM_RC_${decoded.name}${where}`, {
        rc: `0x${rc.toString(16)}`,
        command: name,
        ...(decoded.position ? { position: decoded.position } : {}),
      });
    }
    const expectedTag = sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS;
    if (tag !== expectedTag) r.fail(`tag 0x${tag.toString(16)}, expected 0x${expectedTag.toString(16)}`, {}, 'tpm.response_malformed');
    const handles: number[] = [];
    for (let i = 0; i < command.responseHandles; i++) handles.push(r.u32());

    let parameters: Uint8Array;
    if (sessions.length > 0) {
      parameters = r.take(r.u32());
      for (const session of sessions) {
        const auth = { nonce: r.sized16(64), attributes: r.u8(), hmac: r.sized16(64) };
        await session.verifyResponse({ commandCode: command.code, parameters }, auth);
      }
      r.end();
      const encryptSession = sessions.find((s) => s.encrypt);
      if (encryptSession?.decryptParameter && command.encryptableResponse) {
        parameters = await decryptFirstParameter(parameters, encryptSession, name);
      }
    } else {
      parameters = r.take(r.remaining);
    }
    const pr = new Reader(parameters, { errorCode: 'tpm.response_truncated', what: `${name} response` });
    const result = command.parse(pr, handles);
    if (pr.remaining !== 0) pr.fail(`${pr.remaining} trailing bytes`, {}, 'tpm.response_malformed');
    if (command.code === TPM_CC.FlushContext) this.forgetName(readFlushedHandle(command.parameters));
    return result;
  }

  /**
   * TPM_RC_RETRY, _YIELDED and _TESTING mean "not executed, send it again" (Part 2, 6.6.3): the
   * TPM changed no state, so resending the same bytes (same nonces and HMACs) is correct. libtpms
   * answers RETRY now and then, e.g. the first time an RSA key's private exponent is computed.
   */
  private async sendRetrying(bytes: Uint8Array): Promise<Uint8Array> {
    for (let attempt = 1; ; attempt++) {
      const response = await this.transport.send(bytes);
      const rc = response.length >= 10 ? new DataView(response.buffer, response.byteOffset, response.byteLength).getUint32(6) : 0;
      if ((rc !== 0x922 && rc !== 0x908 && rc !== 0x90a) || attempt >= 20) return response;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5 * attempt, 50)));
    }
  }

  /** Resolve a handle's name: given, cached, the handle itself, or asked of the TPM. */
  async nameOf(handle: number, given?: Uint8Array): Promise<Uint8Array> {
    if (given) return given;
    if (handleIsOwnName(handle)) return handleName(handle);
    const cached = this.nameCache.get(handle);
    if (cached) return cached;
    const { readPublicName, nvReadPublicName } = await import('./commands/names-lookup.ts');
    const name = handleType(handle) === 0x01 ? await nvReadPublicName(this, handle) : await readPublicName(this, handle);
    this.nameCache.set(handle, name);
    return name;
  }

  forgetName(handle: number): void {
    this.nameCache.delete(handle);
  }

  async close(): Promise<void> {
    await this.transport.close();
  }
}

/** nonceTPM of a decrypt session and of a different encrypt session, when neither is session 0 (Part 1, 19.6.5). */
function extraNonces(sessions: Session[]): Uint8Array[] {
  const nonces: Uint8Array[] = [];
  const decryptIndex = sessions.findIndex((s) => s.decrypt);
  const encryptIndex = sessions.findIndex((s) => s.encrypt);
  if (decryptIndex > 0 && sessions[decryptIndex].nonceTpm) nonces.push(sessions[decryptIndex].nonceTpm!);
  if (encryptIndex > 0 && encryptIndex !== decryptIndex && sessions[encryptIndex].nonceTpm) nonces.push(sessions[encryptIndex].nonceTpm!);
  return nonces;
}

function readFlushedHandle(parameters: Uint8Array): number {
  return new DataView(parameters.buffer, parameters.byteOffset, parameters.byteLength).getUint32(0);
}

async function encryptFirstParameter(parameters: Uint8Array, session: Session): Promise<Uint8Array> {
  const r = new Reader(parameters, { errorCode: 'tpm.marshal_failed', what: 'command parameters' });
  const data = r.sized16();
  const encrypted = await session.encryptParameter!(data);
  return new Writer(parameters.length).sized16(encrypted).bytes(parameters.subarray(2 + data.length)).finish();
}

async function decryptFirstParameter(parameters: Uint8Array, session: Session, name: string): Promise<Uint8Array> {
  const r = new Reader(parameters, { errorCode: 'tpm.response_truncated', what: `${name} response` });
  const data = r.sized16();
  const decrypted = await session.decryptParameter!(data);
  return new Writer(parameters.length).sized16(decrypted).bytes(parameters.subarray(2 + data.length)).finish();
}
