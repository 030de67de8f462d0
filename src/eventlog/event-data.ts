import { bytesEqual, Reader } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { digest, digestSync, hasDigestSync } from '../core/hash.ts';
import { toHex } from '../core/hex.ts';
import { HASH_ALGS } from '../tpm/constants.ts';
import { u32le } from './le.ts';
import type { TcgEvent } from './tcg-log.ts';

/**
 * Binding event data to the measured digest. Replay proves the digests, not the data next to
 * them: a boot-state value read from event data counts only when the event's digest (in the bank
 * the verifier trusts) is the hash the measuring component defines for that data. Events whose
 * digest covers something else (an image, a file) contribute their digest, never their data.
 */
export function eventDigest(event: TcgEvent, alg: number): Uint8Array {
  const found = event.digests.find((d) => d.alg === alg);
  if (!found) throw new SigilError('eventlog.bank_missing', `event ${event.sequence} has no ${HASH_ALGS[alg]?.label ?? alg} digest`, { sequence: event.sequence, alg });
  return found.digest;
}

export async function digestMatches(event: TcgEvent, alg: number, payload: Uint8Array): Promise<boolean> {
  const name = HASH_ALGS[alg].name;
  return bytesEqual(eventDigest(event, alg), hasDigestSync ? digestSync(name, payload) : await digest(name, payload));
}

export function dataMismatch(event: TcgEvent, what: string): SigilError {
  return new SigilError('eventlog.event_data_mismatch', `event ${event.sequence} (${event.typeName}, PCR ${event.pcr}): the ${what} does not match the measured digest`, {
    sequence: event.sequence,
    pcr: event.pcr,
    type: event.typeName,
  });
}

/** Require digest == H(payload); the error names the event. */
export async function requireBound(event: TcgEvent, alg: number, payload: Uint8Array, what: string): Promise<void> {
  if (!(await digestMatches(event, alg, payload))) throw dataMismatch(event, what);
}

export function digestHex(event: TcgEvent, alg: number): string {
  return toHex(eventDigest(event, alg));
}

/**
 * TCG_PCClientTaggedEvent (PFP 1.06, 10.2.2.x, the EV_EVENT_TAG data):
 *   0  taggedEventID u32 | 4  taggedEventDataSize u32 | 8  taggedEventData[taggedEventDataSize]
 */
export interface TaggedEvent {
  id: number;
  data: Uint8Array;
}

export function parseTaggedEvent(bytes: Uint8Array): TaggedEvent {
  const r = new Reader(bytes, { errorCode: 'eventlog.tagged_event_invalid', what: 'TCG_PCClientTaggedEvent' });
  const id = u32le(r);
  const size = u32le(r);
  const data = r.take(size);
  r.end();
  return { id, data };
}
