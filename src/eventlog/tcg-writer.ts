import { concatBytes } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { digest } from '../core/hash.ts';
import { HASH_ALGS, TPM_ALG } from '../tpm/constants.ts';
import { EV } from './event-types.ts';
import { leU16, leU32 } from './le.ts';
import { writeSpecIdEvent, writeStartupLocality } from './spec-id.ts';
import type { EventDigest } from './tcg-log.ts';

/**
 * Writing TCG event logs (the layouts documented in tcg-log.ts), for tests, the round-trip oracle
 * against swtpm and tpm2_eventlog, and tools that build reference logs. An event either gives its
 * digests, or is measured: each bank's digest is H(measured ?? data).
 */
export interface EventToWrite {
  pcr: number;
  type: number;
  data: Uint8Array;
  /** What the digests cover when it is not the event data (an image, a file, a substring). */
  measured?: Uint8Array;
  digests?: EventDigest[];
}

export async function eventDigests(event: EventToWrite, algorithms: number[]): Promise<EventDigest[]> {
  if (event.digests) return event.digests;
  if (event.type === EV.NO_ACTION) return algorithms.map((alg) => ({ alg, digest: new Uint8Array(HASH_ALGS[alg].size) }));
  return Promise.all(algorithms.map(async (alg) => ({ alg, digest: await digest(HASH_ALGS[alg].name, event.measured ?? event.data) })));
}

/** A crypto-agile log: the Spec ID header, an optional StartupLocality event, then the events. */
export async function writeCryptoAgileLog(events: EventToWrite[], algorithms: number[], options: { startupLocality?: number } = {}): Promise<Uint8Array> {
  for (const alg of algorithms) if (!HASH_ALGS[alg]) throw new SigilError('eventlog.hash_unsupported', `cannot write a 0x${alg.toString(16)} bank`);
  const header = writeSpecIdEvent(algorithms.map((alg) => ({ alg, size: HASH_ALGS[alg].size })));
  const parts: Uint8Array[] = [legacyRecord(0, EV.NO_ACTION, new Uint8Array(20), header)];
  const all: EventToWrite[] = [...events];
  if (options.startupLocality !== undefined) all.unshift({ pcr: 0, type: EV.NO_ACTION, data: writeStartupLocality(options.startupLocality) });
  for (const event of all) {
    const digests = await eventDigests(event, algorithms);
    parts.push(leU32(event.pcr), leU32(event.type), leU32(digests.length));
    for (const d of digests) parts.push(leU16(d.alg), d.digest);
    parts.push(leU32(event.data.length), event.data);
  }
  return concatBytes(...parts);
}

/** A SHA-1 legacy log (TCG_PCClientPCREvent records only). */
export async function writeLegacyLog(events: EventToWrite[]): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (const event of events) {
    const [sha1] = await eventDigests(event, [TPM_ALG.SHA1]);
    parts.push(legacyRecord(event.pcr, event.type, sha1.digest, event.data));
  }
  return concatBytes(...parts);
}

function legacyRecord(pcr: number, type: number, sha1: Uint8Array, data: Uint8Array): Uint8Array {
  return concatBytes(leU32(pcr), leU32(type), sha1, leU32(data.length), data);
}
