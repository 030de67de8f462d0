import { SigilError } from './errors.ts';
import { nodeBuffer } from './node-builtins.ts';

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  // Long inputs: node's native comparison (memcmp). Short ones stay in JavaScript, since a small
  // typed array's .buffer would first have to be moved off V8's heap.
  if (nodeBuffer && a.length > 64) return nodeBuffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Comparison whose time does not depend on where the inputs differ (MACs, tokens). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a[i % (a.length || 1)] ?? 0) ^ (b[i % (b.length || 1)] ?? 0);
  return diff === 0 && a.length === b.length;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

export const utf8 = {
  encode: (text: string): Uint8Array => textEncoder.encode(text),
  decode: (bytes: Uint8Array): string => textDecoder.decode(bytes),
};

/**
 * Bounds-checked big-endian reader for untrusted bytes. Every read past the end throws a
 * SigilError with `errorCode` (so a TPM response parser reports `tpm.response_truncated`, an SNP
 * parser its own code), never a RangeError.
 */
export class Reader {
  readonly bytes: Uint8Array;
  offset: number;
  private readonly view: DataView;
  private readonly errorCode: string;
  private readonly what: string;
  private readonly owned: boolean;

  /**
   * `owned`: the bytes are a private copy that nothing else holds or changes (the parser made it),
   * so take() may hand out views of them instead of one copy per field.
   */
  constructor(bytes: Uint8Array, options: { errorCode?: string; what?: string; owned?: boolean } = {}) {
    this.bytes = bytes;
    this.offset = 0;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.errorCode = options.errorCode ?? 'core.truncated';
    this.what = options.what ?? 'input';
    this.owned = options.owned ?? false;
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  fail(message: string, details: Record<string, unknown> = {}, code = this.errorCode): never {
    throw new SigilError(code, `${this.what}: ${message}`, { offset: this.offset, ...details });
  }

  private need(n: number): void {
    if (n > this.remaining) this.fail(`needs ${n} more bytes, has ${this.remaining}`, { needed: n });
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.offset++];
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return v;
  }

  /** Little-endian reads (TCG event logs, UEFI structures), without copying bytes out. */
  u16le(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }

  u32le(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  u64le(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }

  /** Step over `n` bytes (reserved or unused fields) without copying them. */
  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }

  /**
   * The next `n` bytes as a view of the input, not a copy: only for values that are used at once
   * (formatted, compared, hashed) and not kept, since the source may change later.
   */
  borrow(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** A copy, so later mutation of the source cannot change parsed values (a view of owned bytes). */
  take(n: number): Uint8Array {
    this.need(n);
    const out = this.owned ? this.bytes.subarray(this.offset, this.offset + n) : this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** A TPM2B-style buffer: u16 size then that many bytes, with an optional maximum. */
  sized16(max = 0xffff): Uint8Array {
    const size = this.u16();
    if (size > max) this.fail(`size ${size} exceeds the maximum ${max}`, { size, max });
    return this.take(size);
  }

  /** Parse a u16-size-prefixed nested structure; it must use exactly its declared size. */
  nested16<T>(parse: (reader: Reader) => T): T {
    const inner = new Reader(this.sized16(), { errorCode: this.errorCode, what: this.what });
    const value = parse(inner);
    if (inner.remaining !== 0) inner.fail(`${inner.remaining} unused bytes in a sized structure`);
    return value;
  }

  /** A count-prefixed list; `max` stops a hostile count from looping for ever. */
  list<T>(count: number, max: number, parseItem: (reader: Reader) => T): T[] {
    if (count > max) this.fail(`list of ${count} exceeds the maximum ${max}`, { count, max });
    const items: T[] = [];
    for (let i = 0; i < count; i++) items.push(parseItem(this));
    return items;
  }

  end(): void {
    if (this.remaining !== 0) this.fail(`${this.remaining} trailing bytes`, { trailing: this.remaining });
  }
}

/** Growable big-endian writer. */
export class Writer {
  private buffer: Uint8Array;
  private view: DataView;
  length = 0;

  constructor(initialCapacity = 256) {
    this.buffer = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buffer.buffer);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < this.length + n) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.reserve(1);
    this.buffer[this.length++] = v;
    return this;
  }

  u16(v: number): this {
    this.reserve(2);
    this.view.setUint16(this.length, v);
    this.length += 2;
    return this;
  }

  u32(v: number): this {
    this.reserve(4);
    this.view.setUint32(this.length, v >>> 0);
    this.length += 4;
    return this;
  }

  u64(v: bigint): this {
    this.reserve(8);
    this.view.setBigUint64(this.length, v);
    this.length += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buffer.set(b, this.length);
    this.length += b.length;
    return this;
  }

  sized16(b: Uint8Array): this {
    if (b.length > 0xffff) throw new SigilError('core.too_large', 'a sized buffer exceeds 65535 bytes', { length: b.length });
    return this.u16(b.length).bytes(b);
  }

  /** Write a u16-size-prefixed nested structure. */
  nested16(write: (writer: Writer) => void): this {
    const inner = new Writer();
    write(inner);
    return this.sized16(inner.finish());
  }

  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}
