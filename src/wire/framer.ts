import { MalformedError } from './errors.js';

/**
 * Splits a byte stream into uint32-length-prefixed messages (SFTP framing,
 * draft-ietf-secsh-filexfer-02 §3). The declared length is checked against `maxLength`
 * before any buffer grows, so a hostile length costs nothing. When a chunk holds whole
 * messages they are handed out as views of that chunk (no copy, pg-protocol style); only a
 * message split across chunks is assembled in one growable buffer.
 *
 * `onMessage` receives the body without its length prefix; the view is valid only during
 * the call.
 */
export class LengthPrefixedFramer {
  readonly maxLength: number;
  #pending: Buffer | null = null;
  #pendingLen = 0;
  readonly #onMessage: (body: Buffer) => void;

  constructor(maxLength: number, onMessage: (body: Buffer) => void) {
    this.maxLength = maxLength;
    this.#onMessage = onMessage;
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.#pendingLen;
  }

  push(chunk: Buffer): void {
    let data = chunk;
    const fromPending = this.#pendingLen > 0;
    if (fromPending) data = this.#append(chunk);
    let off = 0;
    while (data.length - off >= 4) {
      const len = data.readUInt32BE(off);
      if (len > this.maxLength) {
        throw new MalformedError(`message length ${len} exceeds the limit of ${this.maxLength}`);
      }
      if (data.length - off - 4 < len) break;
      this.#onMessage(data.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    const left = data.length - off;
    if (left === 0) {
      this.#pendingLen = 0;
    } else if (fromPending) {
      this.#pending!.copyWithin(0, off, data.length);
      this.#pendingLen = left;
    } else {
      this.#pendingLen = 0;
      this.#append(data.subarray(off));
    }
  }

  #append(chunk: Buffer): Buffer {
    const need = this.#pendingLen + chunk.length;
    if (this.#pending === null || this.#pending.length < need) {
      // Grow only to what the next message can legally need, never past it.
      const cap = this.maxLength + 4;
      let size = Math.max(this.#pending?.length ?? 0, 1024);
      while (size < need) size *= 2;
      if (size > cap && need <= cap) size = cap;
      if (need > size) size = need;
      const next = Buffer.allocUnsafe(size);
      if (this.#pending) this.#pending.copy(next, 0, 0, this.#pendingLen);
      this.#pending = next;
    }
    chunk.copy(this.#pending, this.#pendingLen);
    this.#pendingLen = need;
    return this.#pending.subarray(0, need) as Buffer;
  }
}
