import { Reader, concatBytes, utf8 } from '../core/bytes.ts';
import { SigilError } from '../core/errors.ts';
import { HASH_ALGS } from '../tpm/constants.ts';
import { leU16, leU32, u16le, u32le } from './le.ts';

/**
 * The EV_NO_ACTION events with a signature (TCG PC Client PFP 1.06, 10.4.5):
 *
 * TCG_EfiSpecIDEventStruct ("Spec ID Event03", 10.4.5.1), the first event of a crypto-agile log:
 *   0  signature[16]  "Spec ID Event03\0"
 *  16  platformClass  u32
 *  20  specVersionMinor u8, specVersionMajor u8, specErrata u8, uintnSize u8
 *  24  numberOfAlgorithms u32
 *  28  digestSizes[n] { algorithmId u16, digestSize u16 }
 *   .  vendorInfoSize u8, vendorInfo[vendorInfoSize]
 *
 * TCG_EfiStartupLocalityEvent ("StartupLocality\0", 10.4.5.3): signature[16], StartupLocality u8.
 * It tells the verifier that PCR 0 started at 00..0<locality> (3, or 4 for an H-CRTM) instead of 0.
 */
export const SPEC_ID_EVENT03 = 'Spec ID Event03';
export const SPEC_ID_EVENT00 = 'Spec ID Event00';
export const STARTUP_LOCALITY = 'StartupLocality';

/** More digest algorithms than this in one header is garbage, not a platform. */
export const MAX_ALGORITHMS = 16;

export interface DigestSize {
  alg: number;
  size: number;
}

export interface SpecIdEvent {
  signature: string;
  platformClass: number;
  specVersionMinor: number;
  specVersionMajor: number;
  specErrata: number;
  uintnSize: number;
  algorithms: DigestSize[];
  vendorInfo: Uint8Array;
}

/** The 16-byte signature an EV_NO_ACTION event starts with, without its NUL padding. */
export function noActionSignature(data: Uint8Array): string | undefined {
  if (data.length < 16) return undefined;
  let end = 16;
  while (end > 0 && data[end - 1] === 0) end--;
  for (let i = 0; i < end; i++) if (data[i] < 0x20 || data[i] > 0x7e) return undefined;
  return String.fromCharCode(...data.subarray(0, end));
}

export function parseSpecIdEvent(data: Uint8Array): SpecIdEvent {
  const r = new Reader(data, { errorCode: 'eventlog.spec_id_invalid', what: 'Spec ID event' });
  const signature = noActionSignature(r.take(16));
  if (signature !== SPEC_ID_EVENT03) {
    throw new SigilError('eventlog.spec_id_invalid', `the first event is not "${SPEC_ID_EVENT03}"`, { signature });
  }
  const platformClass = u32le(r);
  const specVersionMinor = r.u8();
  const specVersionMajor = r.u8();
  const specErrata = r.u8();
  const uintnSize = r.u8();
  const count = u32le(r);
  if (count === 0 || count > MAX_ALGORITHMS) {
    throw new SigilError('eventlog.spec_id_invalid', `the Spec ID event lists ${count} digest algorithms`, { count });
  }
  const algorithms: DigestSize[] = [];
  for (let i = 0; i < count; i++) {
    const alg = u16le(r);
    const size = u16le(r);
    const known = HASH_ALGS[alg];
    if (known && known.size !== size) {
      throw new SigilError('eventlog.spec_id_invalid', `the Spec ID event gives ${known.label} a digest size of ${size}`, { alg, size });
    }
    if (size === 0 || size > 64) throw new SigilError('eventlog.spec_id_invalid', `digest size ${size} for algorithm 0x${alg.toString(16)}`, { alg, size });
    if (algorithms.some((a) => a.alg === alg)) throw new SigilError('eventlog.spec_id_invalid', `algorithm 0x${alg.toString(16)} listed twice`, { alg });
    algorithms.push({ alg, size });
  }
  const vendorInfo = r.take(r.u8());
  r.end();
  return { signature, platformClass, specVersionMinor, specVersionMajor, specErrata, uintnSize, algorithms, vendorInfo };
}

export function writeSpecIdEvent(algorithms: DigestSize[], options: { platformClass?: number; uintnSize?: number } = {}): Uint8Array {
  const signature = new Uint8Array(16);
  signature.set(utf8.encode(SPEC_ID_EVENT03));
  return concatBytes(
    signature,
    leU32(options.platformClass ?? 0),
    new Uint8Array([0, 2, 0, options.uintnSize ?? 2]),
    leU32(algorithms.length),
    ...algorithms.flatMap((a) => [leU16(a.alg), leU16(a.size)]),
    new Uint8Array([0]),
  );
}

/** The locality of a StartupLocality event, or undefined when `data` is another EV_NO_ACTION. */
export function startupLocality(data: Uint8Array): number | undefined {
  if (noActionSignature(data) !== STARTUP_LOCALITY) return undefined;
  if (data.length !== 17) throw new SigilError('eventlog.startup_locality_invalid', `a StartupLocality event has ${data.length} bytes, not 17`);
  return data[16];
}

export function writeStartupLocality(locality: number): Uint8Array {
  const out = new Uint8Array(17);
  out.set(utf8.encode(STARTUP_LOCALITY));
  out[16] = locality;
  return out;
}
