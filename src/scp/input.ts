import type { Duplex } from 'node:stream';
import { MAX_LINE, ScpProtocolError } from './protocol.js';

/** The peer went away (EOF, close or error) in the middle of something. */
export class ScpGoneError extends Error {
  readonly code = 'ERR_SCP_GONE';
  constructor(message = 'connection closed by the client') {
    super(message);
    this.name = 'ScpGoneError';
  }
}

/**
 * What the client sends, pulled by one consumer: control lines with a length cap, single ack
 * bytes, and file data by exact count.
 *
 * Backpressure: chunks are queued as they arrive and the stream is paused once `maxQueued`
 * bytes wait, so while a backend write is pending nothing more is taken from the channel, its
 * window stops being adjusted and the client stops sending. File data is handed on as views of
 * the arriving chunks: never copied here.
 */
export class ScpInput {
  readonly #stream: Duplex;
  readonly #maxQueued: number;
  readonly #chunks: Buffer[] = [];
  /** Offset into #chunks[0]. */
  #off = 0;
  #queued = 0;
  #ended = false;
  #wake: (() => void) | null = null;

  constructor(stream: Duplex, maxQueued = 64 * 1024) {
    this.#stream = stream;
    this.#maxQueued = maxQueued;
    stream.on('data', (c: Buffer) => {
      if (c.length === 0) return;
      this.#chunks.push(c);
      this.#queued += c.length;
      if (this.#queued >= this.#maxQueued) stream.pause();
      this.#notify();
    });
    const end = () => {
      this.#ended = true;
      this.#notify();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  /** True once the client can send nothing more. */
  get ended(): boolean {
    return this.#ended && this.#queued === 0;
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** Waits for data; false at the end of input. */
  async #more(): Promise<boolean> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return false;
      if (this.#stream.isPaused()) this.#stream.resume();
      await new Promise<void>((r) => (this.#wake = r));
    }
    return true;
  }

  #take(n: number): Buffer {
    const head = this.#chunks[0]!;
    const b = head.subarray(this.#off, this.#off + n);
    this.#off += b.length;
    this.#queued -= b.length;
    if (this.#off === head.length) {
      this.#chunks.shift();
      this.#off = 0;
    }
    if (this.#queued < this.#maxQueued / 2 && this.#stream.isPaused() && !this.#ended) this.#stream.resume();
    return b;
  }

  /** One byte, or -1 at the end of input. */
  async readByte(): Promise<number> {
    if (!(await this.#more())) return -1;
    return this.#take(1)[0]!;
  }

  /**
   * One line without its '\n', as UTF-8; null at the end of input before any byte of a line.
   * Over `max` bytes without a '\n' is a protocol error, found before the excess is kept.
   */
  async readLine(max = MAX_LINE): Promise<string | null> {
    const parts: Buffer[] = [];
    let len = 0;
    for (;;) {
      if (!(await this.#more())) {
        if (len === 0) return null;
        throw new ScpGoneError('connection closed in the middle of a line');
      }
      const head = this.#chunks[0]!;
      const nl = head.indexOf(0x0a, this.#off);
      const avail = (nl < 0 ? head.length : nl) - this.#off;
      if (len + avail > max) throw new ScpProtocolError(`line longer than ${max} bytes`);
      parts.push(this.#take(avail));
      len += avail;
      if (nl >= 0) {
        this.#take(1);
        const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts, len);
        return decodeUtf8(bytes);
      }
    }
  }

  /**
   * Exactly `n` bytes, handed to `sink` piece by piece; each piece is awaited before the next is
   * taken. Throws ScpGoneError if the input ends first.
   */
  async readData(n: number, sink: (piece: Buffer) => void | Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.#more())) throw new ScpGoneError('connection closed in the middle of a file');
      const piece = this.#take(Math.min(left, this.#chunks[0]!.length - this.#off));
      left -= piece.length;
      await sink(piece);
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(b: Buffer): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new ScpProtocolError('record is not valid UTF-8');
  }
}
