import { Reader } from '../core/bytes.ts';
import { SigilError, asSigilError } from '../core/errors.ts';
import { TPM_ALG } from '../tpm/constants.ts';
import { EV, eventTypeName } from './event-types.ts';
import { u16le, u32le } from './le.ts';
import { applyQuirk, quirkRequired, type AppliedQuirk, type QuirkOptions } from './quirks.ts';
import { noActionSignature, parseSpecIdEvent, SPEC_ID_EVENT03, type DigestSize, type SpecIdEvent } from './spec-id.ts';

/**
 * TCG PC Client event logs, both formats (TCG PC Client PFP 1.06, section 10), little-endian:
 *
 * TCG_PCClientPCREvent (SHA-1 legacy, 10.2.1), also the header event of a crypto-agile log:
 *   0  pcrIndex u32 | 4  eventType u32 | 8  digest[20] (SHA-1) | 28  eventDataSize u32 | 32  event[]
 *
 * TCG_PCR_EVENT2 (crypto-agile, 10.2.2):
 *   0  pcrIndex u32 | 4  eventType u32
 *   8  TPML_DIGEST_VALUES { count u32, digests[count] { hashAlg u16, digest[size] } }
 *      (the digest sizes come from the Spec ID event's table, so unknown algorithms still parse)
 *   .  eventSize u32 | event[eventSize]
 *
 * A crypto-agile log starts with a legacy-format EV_NO_ACTION event in PCR 0 whose data is the
 * "Spec ID Event03" structure; any other first event means a SHA-1 legacy log.
 */
export type TcgLogFormat = 'crypto-agile' | 'sha1-legacy';

export interface EventDigest {
  alg: number;
  digest: Uint8Array;
}

export interface TcgEvent {
  /** Position in the log (the crypto-agile header event is number 0). */
  sequence: number;
  /** Byte offset of the record in the log. */
  offset: number;
  pcr: number;
  type: number;
  typeName: string;
  digests: EventDigest[];
  data: Uint8Array;
}

export interface TcgEventLog {
  format: TcgLogFormat;
  specId?: SpecIdEvent;
  /** Digest algorithms and sizes: the Spec ID table, or SHA-1 for a legacy log. */
  algorithms: DigestSize[];
  /** Every record including the header event, in log order. */
  events: TcgEvent[];
  /** Quirks the parser applied (each enabled by the caller; see quirks.ts). */
  quirks: AppliedQuirk[];
}

/** PCR indexes in a PC Client log are 0-23 (PFP 3.3.4); a larger index is garbage. */
export const MAX_PCR_INDEX = 23;
/** A single event larger than this is not a measurement, it is a hostile length. */
export const MAX_EVENT_SIZE = 16 * 1024 * 1024;

const ERROR = 'eventlog.malformed';

export function parseTcgEventLog(bytes: Uint8Array, options: QuirkOptions = {}): TcgEventLog {
  try {
    return parse(bytes, options);
  } catch (error) {
    throw asSigilError(error, ERROR, 'the event log could not be parsed');
  }
}

function parse(input: Uint8Array, options: QuirkOptions): TcgEventLog {
  if (input.length === 0) throw new SigilError('eventlog.empty', 'the event log is empty');
  // One private copy of the whole log; every digest and event data is a view into it, so later
  // changes to the caller's buffer cannot reach parsed values, without a copy per field.
  const bytes = input.slice();
  const r = new Reader(bytes, { errorCode: 'eventlog.truncated', what: 'TCG event log' });
  const quirks: AppliedQuirk[] = [];
  const events: TcgEvent[] = [];
  const first = readLegacy(r, 0);
  let format: TcgLogFormat = 'sha1-legacy';
  let specId: SpecIdEvent | undefined;
  if (first.type === EV.NO_ACTION && first.pcr === 0 && noActionSignature(first.data) === SPEC_ID_EVENT03) {
    format = 'crypto-agile';
    specId = parseSpecIdEvent(first.data);
  }
  events.push(first);
  const algorithms = specId ? specId.algorithms : [{ alg: TPM_ALG.SHA1, size: 20 }];
  while (r.remaining > 0) {
    if (isZeroTail(r)) {
      if (!applyQuirk(options, quirks, 'trailing-zero-padding', `${r.remaining} zero bytes after event ${events.length - 1}`)) {
        throw quirkRequired('trailing-zero-padding', `the log ends in ${r.remaining} zero bytes after its last event`, { offset: r.offset, length: r.remaining });
      }
      break;
    }
    const event = format === 'crypto-agile' ? readAgile(r, events.length, algorithms) : readLegacy(r, events.length);
    events.push(event);
  }
  checkNoActionDigests(events, options, quirks);
  return { format, specId, algorithms, events, quirks };
}

function header(r: Reader): { offset: number; pcr: number; type: number } {
  const offset = r.offset;
  const pcr = u32le(r);
  if (pcr > MAX_PCR_INDEX) r.fail(`PCR index ${pcr} is out of range 0-${MAX_PCR_INDEX}`, { pcr }, 'eventlog.pcr_out_of_range');
  return { offset, pcr, type: u32le(r) };
}

function eventData(r: Reader): Uint8Array {
  const size = u32le(r);
  if (size > MAX_EVENT_SIZE || size > r.remaining) r.fail(`event data of ${size} bytes, ${r.remaining} left`, { size }, 'eventlog.truncated');
  return r.borrow(size);
}

function readLegacy(r: Reader, sequence: number): TcgEvent {
  const { offset, pcr, type } = header(r);
  const digest = r.borrow(20);
  const data = eventData(r);
  return { sequence, offset, pcr, type, typeName: eventTypeName(type), digests: [{ alg: TPM_ALG.SHA1, digest }], data };
}

function readAgile(r: Reader, sequence: number, algorithms: DigestSize[]): TcgEvent {
  const { offset, pcr, type } = header(r);
  const count = u32le(r);
  // Each bank appears once per event; a count other than the header's is a malformed event.
  if (count !== algorithms.length) {
    r.fail(`event ${sequence} carries ${count} digests, the header declares ${algorithms.length} algorithms`, { count }, 'eventlog.digest_count_mismatch');
  }
  const digests: EventDigest[] = [];
  for (let i = 0; i < count; i++) {
    const alg = u16le(r);
    const entry = algorithms.find((a) => a.alg === alg);
    if (!entry) r.fail(`event ${sequence} has a digest for algorithm 0x${alg.toString(16)} that the header does not list`, { alg }, 'eventlog.digest_algorithm_unknown');
    if (digests.some((d) => d.alg === alg)) r.fail(`event ${sequence} has two digests for algorithm 0x${alg.toString(16)}`, { alg }, 'eventlog.digest_algorithm_repeated');
    digests.push({ alg, digest: r.borrow(entry.size) });
  }
  const data = eventData(r);
  return { sequence, offset, pcr, type, typeName: eventTypeName(type), digests, data };
}

/** Only zero bytes remain, and more of them than an event header's worth of real content. */
function isZeroTail(r: Reader): boolean {
  for (let i = r.offset; i < r.bytes.length; i++) if (r.bytes[i] !== 0) return false;
  return true;
}

/** EV_NO_ACTION digests must be zero (PFP 10.4.5); they are never extended either way. */
function checkNoActionDigests(events: TcgEvent[], options: QuirkOptions, quirks: AppliedQuirk[]): void {
  const offending = events.filter((e) => e.type === EV.NO_ACTION && e.digests.some((d) => d.digest.some((b) => b !== 0)));
  if (offending.length === 0) return;
  const detail = `EV_NO_ACTION events ${offending.map((e) => e.sequence).join(', ')} carry non-zero digests`;
  if (!applyQuirk(options, quirks, 'no-action-nonzero-digest', detail)) throw quirkRequired('no-action-nonzero-digest', detail, { events: offending.map((e) => e.sequence) });
}
