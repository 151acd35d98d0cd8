/**
 * A streaming download: ReadHandle over ranged GetObject requests.
 *
 * One ranged GET streams at a time. Its bytes flow into a queue of chunks as they arrive; when the
 * queue holds `readAhead` bytes the response is paused, and TCP flow control then holds the store
 * back, so a handle never holds much more than `readAhead` (1 MiB by default) plus one socket
 * read. Reads are served from the queue as views of the received chunks, never copied (`readv`;
 * `read` concatenates them for callers that want one buffer).
 *
 * Range sizes. A handle starts with a small window (256 KiB, or the read's length if larger) so a
 * random read does not pull megabytes it will throw away. Each sequential continuation doubles the
 * window up to `maxWindow` (16 MiB). Once reads are sequential, the next range is requested when
 * the current one has `readAhead` left to arrive, so its response is there when the current one
 * ends and a sequential download does not stall between ranges; it waits unread (TCP holds the
 * store back) until then. A read that is not contiguous with the queue drops it and reopens at the
 * new offset.
 *
 * Every GET carries If-Match with the ETag seen at open, so an object replaced mid-download fails
 * with a clear error instead of mixing two versions. A connection that breaks (reset, idle
 * timeout of a long-paused response) is reopened at the current position.
 */
import type { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { BackendError, type ReadHandle } from '../backend.js';
import type { ClientPool } from './clients.js';
import { isPreconditionFailed, isTransient, toBackendError } from './errors.js';

export interface ReadContext {
  pool: ClientPool;
  secrets: readonly string[];
  /** Bytes queued ahead of the reader before the response is paused. */
  readAhead: number;
  /** The largest range one GET asks for. */
  maxWindow: number;
}

const MIN_WINDOW = 256 * 1024;
const REOPENS_PER_READ = 3;

/** One ranged GET: its response, or why there is none, once it came. */
interface Range {
  readonly expected: number;
  received: number;
  body: Readable | undefined;
  error: unknown;
}

export class S3ReadHandle implements ReadHandle {
  readonly size: number;
  private readonly ctx: ReadContext;
  private readonly bucket: string;
  private readonly key: string;
  private readonly etag: string | undefined;
  private readonly label: string;

  /** File offset of the first queued byte; queued bytes are contiguous from here. */
  private qStart = 0;
  private readonly queue: Buffer[] = [];
  private qBytes = 0;
  /** The GETs of this generation in file order; the first streams into the queue once it has a body. */
  private readonly ranges: Range[] = [];
  /** File offset just past the last range requested. */
  private nextPos = 0;
  /** Whether the streaming body (ranges[0]'s) is paused because the queue is at `highWater`. */
  private paused = false;
  /** Bumped on every reset: responses and events of an older generation are discarded. */
  private gen = 0;
  private window = MIN_WINDOW;
  private lastEnd = -1;
  private sequential = false;
  private error: unknown;
  private waiter: (() => void) | undefined;
  private closed = false;
  /** Queue level at which the response is paused: readAhead, or more for a larger read. */
  private highWater: number;
  /** Reads run one at a time (the protocols already serialise a handle's requests). */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(ctx: ReadContext, bucket: string, key: string, size: number, etag: string | undefined) {
    this.ctx = ctx;
    this.bucket = bucket;
    this.key = key;
    this.size = size;
    this.etag = etag;
    this.label = `/${bucket}/${key}`;
    this.highWater = ctx.readAhead;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const views = await this.readv(offset, length);
    return views.length === 1 ? views[0]! : Buffer.concat(views);
  }

  readv(offset: number, length: number): Promise<Buffer[]> {
    const p = this.chain.then(() => this.doRead(offset, length));
    this.chain = p.catch(() => {});
    return p;
  }

  private async doRead(offset: number, length: number): Promise<Buffer[]> {
    if (this.closed) throw new BackendError('EINVAL', `${this.label}: read after close`);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new BackendError('EINVAL', `${this.label}: bad read offset or length`);
    }
    if (offset >= this.size || length === 0) return [];
    const want = Math.min(length, this.size - offset);

    this.sequential = offset === this.lastEnd;
    const qEnd = this.qStart + this.qBytes;
    if (offset >= this.qStart && offset <= qEnd) {
      this.drop(offset - this.qStart);
    } else {
      this.reset(offset, want);
    }

    this.highWater = Math.max(this.ctx.readAhead, want);
    let reopens = 0;
    while (this.qBytes < want) {
      if (this.error !== undefined) {
        const err = this.error;
        this.error = undefined;
        if (isPreconditionFailed(err)) {
          throw new BackendError('EIO', `${this.label}: the file changed while it was being read`, { cause: err });
        }
        if (!isTransient(err) || ++reopens > REOPENS_PER_READ || this.closed) {
          throw toBackendError(err, `read ${this.label}`, this.ctx.secrets);
        }
      }
      if (this.closed) throw new BackendError('EINVAL', `${this.label}: read after close`);
      if (this.ranges.length === 0) this.open(this.qStart + this.qBytes);
      this.resume();
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const out = this.take(want);
    this.lastEnd = offset + want;
    if (this.qBytes < this.highWater) this.resume();
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.reset(0, 0);
    this.wake();
  }

  // ---- the queue -----------------------------------------------------------------------------

  private drop(n: number): void {
    while (n > 0) {
      const head = this.queue[0]!;
      if (head.length <= n) {
        this.queue.shift();
        n -= head.length;
        this.qBytes -= head.length;
        this.qStart += head.length;
      } else {
        this.queue[0] = head.subarray(n);
        this.qBytes -= n;
        this.qStart += n;
        n = 0;
      }
    }
  }

  /** The first `n` queued bytes (n <= qBytes) as views of the chunks they arrived in. */
  private take(n: number): Buffer[] {
    const out: Buffer[] = [];
    const q = this.queue;
    this.qBytes -= n;
    this.qStart += n;
    while (n > 0) {
      const head = q[0]!;
      if (head.length <= n) {
        q.shift();
        out.push(head);
        n -= head.length;
      } else {
        out.push(head.subarray(0, n));
        q[0] = head.subarray(n);
        n = 0;
      }
    }
    return out;
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.ranges[0]?.body?.resume();
  }

  /** Drops every GET of this generation (the queue stays): their responses and events are ignored. */
  private abortRanges(): void {
    this.gen++;
    for (const r of this.ranges) r.body?.destroy();
    this.ranges.length = 0;
    this.paused = false;
  }

  /** A GET failed or came up short: the reader sees `err`, and reopens at its position if it may. */
  private fail(err: unknown): void {
    this.abortRanges();
    this.error = err;
    this.wake();
  }

  /** Forgets everything and positions the queue at `offset`. */
  private reset(offset: number, want: number): void {
    this.abortRanges();
    this.queue.length = 0;
    this.qBytes = 0;
    this.qStart = offset;
    this.error = undefined;
    this.window = Math.max(MIN_WINDOW, want);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  // ---- ranged GETs ---------------------------------------------------------------------------

  /** Requests the next range, from `pos`; its body streams once the ranges before it are done. */
  private open(pos: number): void {
    if (pos >= this.size || this.closed) return;
    const gen = this.gen;
    const end = Math.min(this.size, pos + this.window) - 1;
    const range: Range = { expected: end - pos + 1, received: 0, body: undefined, error: undefined };
    this.ranges.push(range);
    this.nextPos = end + 1;
    if (this.sequential) this.window = Math.min(this.window * 2, this.ctx.maxWindow);
    this.ctx.pool
      .send(this.bucket, () =>
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Range: `bytes=${pos}-${end}`,
          ...(this.etag ? { IfMatch: this.etag } : {}),
        }),
      )
      .then(
        (out) => {
          const body = out.Body as Readable | undefined;
          if (gen !== this.gen) {
            body?.destroy();
            return;
          }
          if (body) {
            range.body = body;
            // From the start: a response that waits its turn can still break (reset, timeout).
            body.on('error', (err: unknown) => {
              if (gen !== this.gen) return;
              if (this.ranges[0] === range) this.fail(err);
              else range.error = err;
            });
          } else {
            range.error = new Error('GetObject returned no body');
          }
          if (this.ranges[0] === range) this.start(range, gen);
        },
        (err: unknown) => {
          if (gen !== this.gen) return;
          range.error = err;
          if (this.ranges[0] === range) this.start(range, gen);
        },
      );
  }

  /** The range's turn (it is ranges[0]): stream its body, or report its error; nothing until its response came. */
  private start(range: Range, gen: number): void {
    if (range.error !== undefined) return this.fail(range.error);
    const body = range.body;
    if (body === undefined) return;
    body.on('data', (chunk: Buffer) => {
      if (gen !== this.gen) return;
      range.received += chunk.length;
      this.queue.push(chunk);
      this.qBytes += chunk.length;
      if (this.qBytes >= this.highWater && !this.paused) {
        this.paused = true;
        body.pause();
      }
      // Ask for the next range while this one still has `readAhead` to come: its response is
      // then there when this one ends (one GET waits at most, unread).
      if (this.sequential && this.ranges.length === 1 && range.expected - range.received <= this.ctx.readAhead) {
        this.open(this.nextPos);
      }
      this.wake();
    });
    body.on('end', () => {
      if (gen !== this.gen) return;
      if (range.received !== range.expected) {
        const msg = `short response: ${range.received} of ${range.expected} bytes`;
        return this.fail(Object.assign(new Error(msg), { code: 'ESHORT' }));
      }
      this.ranges.shift();
      this.paused = false;
      const next = this.ranges[0];
      if (next !== undefined) this.start(next, gen);
      // Keep the bytes coming: ask for the next range while the reader drains this one.
      else if (this.sequential) this.open(this.nextPos);
      this.wake();
    });
  }
}
