import { MalformedError } from './errors.js';

// ignoreBOM: a leading U+FEFF is kept, so two different byte strings never decode alike.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Reads SSH wire types (RFC 4251 §5) from one message. Every read checks what remains
 * first and throws MalformedError on any short read, so decoders read linearly and never
 * see `undefined`. `bytes()` returns a view into the message, not a copy: callers that keep
 * a value past the message's lifetime must copy it themselves.
 */
export class SshReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;

  constructor(buf: Uint8Array, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  #need(n: number, what: string): void {
    if (this.end - this.pos < n) {
      throw new MalformedError(`truncated ${what}: needs ${n} bytes, ${this.end - this.pos} left`);
    }
  }

  u8(): number {
    this.#need(1, 'byte');
    return this.buf[this.pos++]!;
  }

  bool(): boolean {
    return this.u8() !== 0;
  }

  u32(): number {
    this.#need(4, 'uint32');
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  }

  /** uint64 as a number; values above 2^53 − 1 are refused rather than rounded. */
  u64(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi > 0x1fffff) throw new MalformedError('uint64 above 2^53 - 1');
    return hi * 0x1_0000_0000 + lo;
  }

  u64n(): bigint {
    const hi = this.u32();
    const lo = this.u32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * A `string` field as raw bytes (a view). `max` bounds the declared length before the
   * view is taken, so a hostile length fails here with a clear message.
   */
  bytes(max = Infinity, what = 'string'): Uint8Array {
    const len = this.u32();
    if (len > max) throw new MalformedError(`${what} of ${len} bytes exceeds the limit of ${max}`);
    this.#need(len, what);
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }

  /** A `string` field decoded as UTF-8; invalid UTF-8 is malformed. */
  utf8(max = Infinity, what = 'string'): string {
    const b = this.bytes(max, what);
    try {
      return utf8.decode(b);
    } catch {
      throw new MalformedError(`${what} is not valid UTF-8`);
    }
  }

  /** A `string` field of US-ASCII/Latin-1 (algorithm names, method names). */
  ascii(max = Infinity, what = 'string'): string {
    const b = this.bytes(max, what);
    let s = '';
    for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
    return s;
  }

  /**
   * A name-list (RFC 4251 §5): comma-separated, no empty names. `maxBytes` caps the whole
   * field and `maxNames` the count, both checked before splitting, so a peer cannot make us
   * build a huge array.
   */
  nameList(maxBytes: number, maxNames: number, what = 'name-list'): string[] {
    const s = this.ascii(maxBytes, what);
    if (s.length === 0) return [];
    let count = 1;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c === 0x2c) count++;
      else if (c <= 0x20 || c >= 0x7f) throw new MalformedError(`${what} has a non-printable character`);
    }
    if (count > maxNames) throw new MalformedError(`${what} has ${count} names, the limit is ${maxNames}`);
    const names = s.split(',');
    for (const n of names) if (n.length === 0) throw new MalformedError(`${what} has an empty name`);
    return names;
  }

  /**
   * An mpint (RFC 4251 §5) as its unsigned big-endian magnitude, a view. Negative values and
   * non-minimal encodings are refused: nothing in SSH key exchange or keys is negative.
   */
  mpintBytes(maxBytes: number, what = 'mpint'): Uint8Array {
    const b = this.bytes(maxBytes + 1, what);
    if (b.length === 0) return b;
    if (b[0]! & 0x80) throw new MalformedError(`${what} is negative`);
    if (b[0] === 0) {
      if (b.length === 1 || (b[1]! & 0x80) === 0) throw new MalformedError(`${what} is not minimally encoded`);
      return b.subarray(1);
    }
    // Only a 0x00 sign byte may take the field one past maxBytes.
    if (b.length > maxBytes) throw new MalformedError(`${what} of ${b.length} bytes exceeds the limit of ${maxBytes}`);
    return b;
  }

  /** The rest of the message, as a view. */
  rest(): Uint8Array {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  /** Throws unless every byte was consumed: trailing data is a malformed message. */
  assertEnd(what = 'message'): void {
    if (this.pos !== this.end) throw new MalformedError(`${this.end - this.pos} trailing bytes after ${what}`);
  }
}
