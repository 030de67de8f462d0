import { Reader, bytesEqual } from '../../core/bytes.ts';
import { SigilError, asSigilError } from '../../core/errors.ts';
import { digest, digestSync, hasDigestSync } from '../../core/hash.ts';
import { u16le, u32le, u64leAt } from './le.ts';

/**
 * Minimal CCEL (Confidential Computing Event Log) reader and RTMR replay. The CCEL is a TCG PC
 * Client crypto-agile log (TCG PC Client Platform Firmware Profile, 10.2) whose "PCR index" is
 * the TDX measurement register index: 0 = MRTD, 1..4 = RTMR0..3 (UEFI spec 2.10, 38.4.1 "CC
 * measurement register index"). TDX firmware logs SHA-384 digests only.
 *
 *   first record, TCG_PCR_EVENT (SHA-1 format):  u32 pcrIndex, u32 eventType (3 = EV_NO_ACTION),
 *        20-byte digest, u32 eventSize, TCG_EfiSpecIDEvent ("Spec ID Event03\0", platform class u32,
 *        spec version minor/major/errata u8, uintn size u8, u32 algorithm count, {u16 alg, u16 size}…,
 *        u8 vendor info size, vendor info)
 *   then TCG_PCR_EVENT2: u32 pcrIndex, u32 eventType, u32 digest count, {u16 alg, digest}…,
 *        u32 eventSize, event
 *
 * The log area is zero- or 0xFF-filled after the last record. This replay lives here because no
 * shared event-log parser existed when the TDX verifier was written.
 */
export interface CcelEvent {
  /** 1..4 = RTMR0..3; 0 = MRTD. */
  mrIndex: number;
  eventType: number;
  /** The SHA-384 digest extended into the register. */
  digest: Uint8Array;
  data: Uint8Array;
}

export interface CcelLog {
  events: CcelEvent[];
  /** Digest algorithms the Spec ID event declares: TPM_ALG_ID → size. */
  algorithms: Map<number, number>;
}

const EV_NO_ACTION = 0x00000003;
const TPM_ALG_SHA384 = 0x000c;
const MAX_EVENT = 16 << 20;

export function parseCcel(bytes: Uint8Array): CcelLog {
  try {
    return parse(bytes);
  } catch (error) {
    throw asSigilError(error, 'tdx.ccel_malformed', 'the CCEL event log could not be parsed');
  }
}

function parse(bytes: Uint8Array): CcelLog {
  const reader: Reader = new Reader(bytes, { errorCode: 'tdx.ccel_malformed', what: 'CCEL' });
  u32le(reader);
  if (u32le(reader) !== EV_NO_ACTION) reader.fail('the first event is not the EV_NO_ACTION Spec ID event');
  reader.take(20);
  const spec = new Reader(reader.take(u32le(reader)), { errorCode: 'tdx.ccel_malformed', what: 'CCEL Spec ID event' });
  if (!bytesEqual(spec.take(16), new TextEncoder().encode('Spec ID Event03\0'))) spec.fail('not a crypto-agile (Spec ID Event03) log');
  spec.take(8);
  const algorithms = new Map<number, number>();
  const count = u32le(spec);
  if (count === 0 || count > 16) spec.fail(`${count} digest algorithms`);
  for (let i = 0; i < count; i++) algorithms.set(u16le(spec), u16le(spec));
  if (algorithms.get(TPM_ALG_SHA384) !== 48) {
    throw new SigilError('tdx.ccel_unsupported', 'the CCEL does not log SHA-384 digests', { algorithms: [...algorithms.keys()] });
  }
  const events: CcelEvent[] = [];
  while (reader.remaining >= 8) {
    const head = bytes.subarray(reader.offset, reader.offset + 8);
    if (head.every((b) => b === 0xff) || head.every((b) => b === 0)) break;
    const mrIndex = u32le(reader);
    const eventType = u32le(reader);
    const digests = u32le(reader);
    if (digests > algorithms.size) reader.fail(`an event carries ${digests} digests, the log declares ${algorithms.size} algorithms`);
    let sha384: Uint8Array | undefined;
    for (let i = 0; i < digests; i++) {
      const alg = u16le(reader);
      const size = algorithms.get(alg);
      if (size === undefined) reader.fail(`an event uses undeclared algorithm 0x${alg.toString(16)}`);
      const value = reader.take(size);
      if (alg === TPM_ALG_SHA384) sha384 = value;
    }
    const size = u32le(reader);
    if (size > MAX_EVENT) reader.fail(`event size ${size} is implausible`);
    const data = reader.take(size);
    if (mrIndex > 4) reader.fail(`measurement register index ${mrIndex} is not MRTD or RTMR0-3`, { mrIndex });
    if (!sha384) reader.fail('an event has no SHA-384 digest');
    events.push({ mrIndex, eventType, digest: sha384, data });
  }
  return { events, algorithms };
}

/** RTMR[i] = SHA-384(RTMR[i] || digest), from zero, for every event but EV_NO_ACTION. */
export async function replayRtmrs(log: CcelLog): Promise<[Uint8Array, Uint8Array, Uint8Array, Uint8Array]> {
  const rtmrs: [Uint8Array, Uint8Array, Uint8Array, Uint8Array] = [new Uint8Array(48), new Uint8Array(48), new Uint8Array(48), new Uint8Array(48)];
  for (const event of log.events) {
    if (event.eventType === EV_NO_ACTION || event.mrIndex === 0) continue;
    const index = event.mrIndex - 1;
    rtmrs[index] = hasDigestSync ? digestSync('SHA-384', rtmrs[index], event.digest) : await digest('SHA-384', rtmrs[index], event.digest);
  }
  return rtmrs;
}

/**
 * The ACPI "CCEL" table that tells the guest where the log is (ACPI 6.5, 5.2.34 "Confidential
 * Computing Event Log Table"): standard 36-byte header ("CCEL", length, revision, checksum, OEM
 * IDs), then u8 CC type (1 = SEV, 2 = TDX), u8 CC subtype, u16 reserved, u64 log area minimum
 * length (LAML), u64 log area start address (LASA).
 */
export interface CcelAcpiTable {
  ccType: number;
  ccSubType: number;
  logAreaMinimumLength: bigint;
  logAreaStartAddress: bigint;
}

export function parseCcelAcpiTable(bytes: Uint8Array): CcelAcpiTable {
  const reader: Reader = new Reader(bytes, { errorCode: 'tdx.ccel_malformed', what: 'CCEL ACPI table' });
  if (!bytesEqual(reader.take(4), new TextEncoder().encode('CCEL'))) reader.fail('the table signature is not "CCEL"');
  const length = u32le(reader);
  if (length !== bytes.length || length < 56) reader.fail(`the table says ${length} bytes, has ${bytes.length}`);
  reader.take(28);
  const ccType = reader.u8();
  const ccSubType = reader.u8();
  reader.take(2);
  const laml = reader.take(8);
  const lasa = reader.take(8);
  return { ccType, ccSubType, logAreaMinimumLength: u64leAt(laml, 0), logAreaStartAddress: u64leAt(lasa, 0) };
}
