import { Writer } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';
import { TPM_RH, TPMA_SESSION } from '../constants.ts';
import type { ResponseAuth, Session, SessionEntity } from './session.ts';

/**
 * TPM_RS_PW (Part 1, 19.8.4): the authValue in clear in the command. Used when no session is
 * given for an authorized handle. The password is the entity's `auth`.
 */
export class PasswordSession implements Session {
  readonly handle = TPM_RH.PW;
  readonly decrypt = false;
  readonly encrypt = false;
  readonly needsNames = false;
  private password: Uint8Array = new Uint8Array(0);

  prepare(entity: SessionEntity | undefined): void {
    this.password = entity?.authValue ?? new Uint8Array(0);
  }

  authorize(): Uint8Array {
    return new Writer(16).u32(this.handle).u16(0).u8(TPMA_SESSION.continueSession).sized16(this.password).finish();
  }

  verifyResponse(_context: unknown, auth: ResponseAuth): void {
    if (auth.nonce.length !== 0 || auth.hmac.length !== 0) {
      throw new SigilError('tpm.response_auth_invalid', 'a password session response must carry an empty nonce and HMAC');
    }
  }
}

export function passwordSession(): Session {
  return new PasswordSession();
}
