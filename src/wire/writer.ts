/**
 * Builds SSH wire types (RFC 4251 §5) into one growable buffer. `reserve` leaves room at
 * the front for a header that the caller fills in later (packet length and padding length
 * for SSH, length and type for SFTP), so a message is assembled once, in place.
 */
export class SshWriter {
  buf: Buffer;
  pos: number;

  constructor(initial = 256, reserve = 0) {
    this.buf = Buffer.allocUnsafe(Math.max(initial, reserve + 16));
    this.pos = reserve;
  }

  #ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length;
    while (size < need) size = Math.ceil(size * 1.5) + 16;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): this {
    this.#ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  u32(v: number): this {
    this.#ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  u64(v: number | bigint): this {
    this.#ensure(8);
    this.buf.writeBigUInt64BE(BigInt(v), this.pos);
    this.pos += 8;
    return this;
  }

  /** Raw bytes, no length prefix. */
  raw(b: Uint8Array): this {
    this.#ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** A `string` field: uint32 length then the bytes (a JS string is written as UTF-8). */
  string(v: Uint8Array | string): this {
    if (typeof v === 'string') {
      const len = Buffer.byteLength(v, 'utf8');
      this.#ensure(4 + len);
      this.buf.writeUInt32BE(len, this.pos);
      this.buf.write(v, this.pos + 4, len, 'utf8');
      this.pos += 4 + len;
      return this;
    }
    this.#ensure(4 + v.length);
    this.buf.writeUInt32BE(v.length, this.pos);
    this.buf.set(v, this.pos + 4);
    this.pos += 4 + v.length;
    return this;
  }

  nameList(names: readonly string[]): this {
    return this.string(names.join(','));
  }

  /** An mpint from an unsigned big-endian magnitude: leading zeros stripped, 0x00 added when the top bit is set. */
  mpint(magnitude: Uint8Array): this {
    let i = 0;
    while (i < magnitude.length && magnitude[i] === 0) i++;
    const m = magnitude.subarray(i);
    const pad = m.length > 0 && (m[0]! & 0x80) !== 0 ? 1 : 0;
    this.#ensure(4 + pad + m.length);
    this.buf.writeUInt32BE(m.length + pad, this.pos);
    this.pos += 4;
    if (pad) this.buf[this.pos++] = 0;
    this.buf.set(m, this.pos);
    this.pos += m.length;
    return this;
  }

  /** An mpint from a non-negative bigint. */
  mpintBig(v: bigint): this {
    if (v < 0n) throw new RangeError('mpintBig takes non-negative values');
    if (v === 0n) return this.u32(0);
    let hex = v.toString(16);
    if (hex.length & 1) hex = '0' + hex;
    return this.mpint(Buffer.from(hex, 'hex'));
  }

  /** The bytes written so far (a view into the internal buffer). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

/** Encodes one `string` field on its own, for hashes and signed blobs. */
export function encodeString(v: Uint8Array | string): Buffer {
  return new SshWriter(typeof v === 'string' ? v.length * 3 + 4 : v.length + 4).string(v).bytes();
}
