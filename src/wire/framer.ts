import { MalformedError } from './errors.js';

/**
 * Splits a byte stream into uint32-length-prefixed messages (SFTP framing,
 * draft-ietf-secsh-filexfer-02 §3). The declared length is checked against `maxLength`
 * before any buffer is allocated, so a hostile length costs nothing. Whole messages inside a
 * chunk are handed out as views of that chunk (no copy, pg-protocol style); only a message
 * split across chunks is assembled, into a buffer of exactly its size.
 *
 * `onMessage` receives the body without its length prefix. Views keep the chunk alive;
 * nothing handed out is ever reused or overwritten by the framer.
 */
export class LengthPrefixedFramer {
  readonly maxLength: number;
  readonly #onMessage: (body: Buffer) => void;
  /** The first bytes of a length prefix split across chunks. */
  readonly #head = Buffer.alloc(4);
  #headLen = 0;
  /** A message being assembled (its length prefix included), and how much of it has arrived. */
  #pending: Buffer | null = null;
  #pendingLen = 0;

  constructor(maxLength: number, onMessage: (body: Buffer) => void) {
    this.maxLength = maxLength;
    this.#onMessage = onMessage;
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.#headLen + this.#pendingLen;
  }

  push(chunk: Buffer): void {
    let off = 0;
    const n = chunk.length;
    if (this.#headLen > 0) {
      const take = Math.min(4 - this.#headLen, n);
      chunk.copy(this.#head, this.#headLen, 0, take);
      this.#headLen += take;
      off = take;
      if (this.#headLen < 4) return;
      this.#headLen = 0;
      this.#startPending(this.#head.readUInt32BE(0));
      this.#head.copy(this.#pending!, 0);
      this.#pendingLen = 4;
    }
    if (this.#pending !== null) {
      const p = this.#pending;
      const take = Math.min(p.length - this.#pendingLen, n - off);
      chunk.copy(p, this.#pendingLen, off, off + take);
      this.#pendingLen += take;
      off += take;
      if (this.#pendingLen < p.length) return;
      this.#pending = null;
      this.#pendingLen = 0;
      this.#onMessage(p.subarray(4));
    }
    while (n - off >= 4) {
      const len = chunk.readUInt32BE(off);
      this.#check(len);
      if (n - off - 4 < len) {
        this.#startPending(len);
        chunk.copy(this.#pending!, 0, off, n);
        this.#pendingLen = n - off;
        return;
      }
      this.#onMessage(chunk.subarray(off + 4, off + 4 + len));
      off += 4 + len;
    }
    if (off < n) {
      chunk.copy(this.#head, 0, off, n);
      this.#headLen = n - off;
    }
  }

  #check(len: number): void {
    if (len > this.maxLength) {
      throw new MalformedError(`message length ${len} exceeds the limit of ${this.maxLength}`);
    }
  }

  #startPending(len: number): void {
    this.#check(len);
    this.#pending = Buffer.allocUnsafe(4 + len);
  }
}
