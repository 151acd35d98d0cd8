/**
 * A streaming download: ReadHandle over ranged GetObject requests.
 *
 * One ranged GET is open at a time. Its bytes flow into a queue of chunks as they arrive; when the
 * queue holds `readAhead` bytes the response is paused, and TCP flow control then holds the store
 * back, so a handle never holds much more than `readAhead` (1 MiB by default) plus one socket
 * read. Reads are served from the queue as views of the received chunks, never copied (`readv`;
 * `read` concatenates them for callers that want one buffer).
 *
 * Range sizes. A handle starts with a small window (256 KiB, or the read's length if larger) so a
 * random read does not pull megabytes it will throw away. Each sequential continuation doubles the
 * window up to `maxWindow` (16 MiB), and once reads are sequential the next range is requested as
 * soon as the previous one has fully arrived, so a sequential download does not stall between
 * ranges. A read that is not contiguous with the queue drops it and reopens at the new offset.
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
  private body: Readable | undefined;
  private paused = false;
  private opening = false;
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
      if (!this.body && !this.opening) this.open(this.qStart + this.qBytes);
      if (this.paused) {
        this.paused = false;
        this.body?.resume();
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const out = this.take(want);
    this.lastEnd = offset + want;
    if (this.paused && this.qBytes < this.highWater) {
      this.paused = false;
      this.body?.resume();
    }
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

  /** Forgets everything and positions the queue at `offset`. */
  private reset(offset: number, want: number): void {
    this.gen++;
    if (this.body) {
      this.body.destroy();
      this.body = undefined;
    }
    this.paused = false;
    this.opening = false;
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

  private open(pos: number): void {
    if (pos >= this.size || this.closed) return;
    const gen = this.gen;
    const end = Math.min(this.size, pos + this.window) - 1;
    const expected = end - pos + 1;
    if (this.sequential) this.window = Math.min(this.window * 2, this.ctx.maxWindow);
    this.opening = true;
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
          this.opening = false;
          if (!body) {
            this.error = new Error('GetObject returned no body');
            this.wake();
            return;
          }
          this.attach(body, gen, expected);
        },
        (err: unknown) => {
          if (gen !== this.gen) return;
          this.opening = false;
          this.error = err;
          this.wake();
        },
      );
  }

  private attach(body: Readable, gen: number, expected: number): void {
    this.body = body;
    let received = 0;
    body.on('data', (chunk: Buffer) => {
      if (gen !== this.gen) return;
      received += chunk.length;
      this.queue.push(chunk);
      this.qBytes += chunk.length;
      if (this.qBytes >= this.highWater && !this.paused) {
        this.paused = true;
        body.pause();
      }
      this.wake();
    });
    body.on('end', () => {
      if (gen !== this.gen) return;
      this.body = undefined;
      if (received !== expected) {
        this.error = Object.assign(new Error(`short response: ${received} of ${expected} bytes`), { code: 'ESHORT' });
      } else if (this.sequential) {
        // Keep the bytes coming: ask for the next range while the reader drains this one.
        this.open(this.qStart + this.qBytes);
      }
      this.wake();
    });
    body.on('error', (err) => {
      if (gen !== this.gen) return;
      this.body = undefined;
      this.error = err;
      this.wake();
    });
  }
}
