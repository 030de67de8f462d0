import { Reader, Writer } from '../../core/bytes.ts';
import { SigilError } from '../../core/errors.ts';

/**
 * A codec reads and writes one TPM type. Structures are declared as tables of field codecs
 * (`struct`), from which both directions follow; only the unions whose selector lives in another
 * field (TPMT_PUBLIC, TPMT_SIGNATURE, TPMS_ATTEST, ...) are written by hand in structures/.
 */
export interface Codec<T> {
  readonly name: string;
  read(reader: Reader): T;
  write(writer: Writer, value: T): void;
}

export type CodecType<C> = C extends Codec<infer T> ? T : never;

function primitive<T>(name: string, read: (r: Reader) => T, write: (w: Writer, v: T) => void): Codec<T> {
  return { name, read, write };
}

export const u8 = primitive<number>('UINT8', (r) => r.u8(), (w, v) => void w.u8(v));
export const u16 = primitive<number>('UINT16', (r) => r.u16(), (w, v) => void w.u16(v));
export const u32 = primitive<number>('UINT32', (r) => r.u32(), (w, v) => void w.u32(v));
export const u64 = primitive<bigint>('UINT64', (r) => r.u64(), (w, v) => void w.u64(v));
export const bool = primitive<boolean>(
  'TPMI_YES_NO',
  (r) => {
    const v = r.u8();
    if (v > 1) r.fail(`TPMI_YES_NO value ${v}`, {}, 'tpm.response_malformed');
    return v === 1;
  },
  (w, v) => void w.u8(v ? 1 : 0),
);

/** TPM2B_*: u16 size then bytes; `max` is the size the spec allows (e.g. 64 for TPM2B_DIGEST). */
export function tpm2b(name: string, max = 0xffff): Codec<Uint8Array> {
  return primitive<Uint8Array>(
    name,
    (r) => r.sized16(max),
    (w, v) => {
      if (v.length > max) throw new SigilError('tpm.marshal_too_large', `${name} of ${v.length} bytes exceeds ${max}`, { name });
      w.sized16(v);
    },
  );
}

/** A TPM2B that wraps a structure (TPM2B_PUBLIC, TPM2B_SENSITIVE_CREATE, TPM2B_ECC_POINT...). */
export function sized<T>(name: string, inner: Codec<T>): Codec<T> {
  return primitive<T>(
    name,
    (r) => r.nested16((ir) => inner.read(ir)),
    (w, v) => void w.nested16((iw) => inner.write(iw, v)),
  );
}

/** A TPM2B that wraps a structure but may be empty (size 0 means "absent"). */
export function optionalSized<T>(name: string, inner: Codec<T>): Codec<T | undefined> {
  return primitive<T | undefined>(
    name,
    (r) => {
      const bytes = r.sized16();
      if (bytes.length === 0) return undefined;
      const ir = new Reader(bytes, { errorCode: 'tpm.response_malformed', what: name });
      const value = inner.read(ir);
      ir.end();
      return value;
    },
    (w, v) => {
      if (v === undefined) w.u16(0);
      else w.nested16((iw) => inner.write(iw, v));
    },
  );
}

/** TPML_*: u32 count then items; `max` bounds hostile counts. */
export function list<T>(name: string, item: Codec<T>, max: number): Codec<T[]> {
  return primitive<T[]>(
    name,
    (r) => r.list(r.u32(), max, (ir) => item.read(ir)),
    (w, v) => {
      if (v.length > max) throw new SigilError('tpm.marshal_too_large', `${name} has ${v.length} entries, at most ${max}`, { name });
      w.u32(v.length);
      for (const x of v) item.write(w, x);
    },
  );
}

export function struct<F extends Record<string, Codec<any>>>(name: string, fields: F): Codec<{ [K in keyof F]: CodecType<F[K]> }> {
  const entries = Object.entries(fields);
  return primitive(
    name,
    (r) => {
      const out: Record<string, unknown> = {};
      for (const [key, codec] of entries) out[key] = codec.read(r);
      return out as { [K in keyof F]: CodecType<F[K]> };
    },
    (w, v) => {
      for (const [key, codec] of entries) codec.write(w, (v as Record<string, unknown>)[key]);
    },
  );
}

export function marshal<T>(codec: Codec<T>, value: T): Uint8Array {
  const w = new Writer();
  codec.write(w, value);
  return w.finish();
}

/** Parse a whole buffer as one value; trailing bytes are an error. */
export function unmarshal<T>(codec: Codec<T>, bytes: Uint8Array, errorCode = 'tpm.unmarshal_failed'): T {
  const r = new Reader(bytes, { errorCode, what: codec.name });
  const value = codec.read(r);
  r.end();
  return value;
}
