/**
 * A streaming upload: WriteHandle over PutObject (small files) or a multipart upload.
 *
 * Memory. Every part has the same size (`partSize`, at least S3's 5 MiB minimum; stores such as
 * R2 also demand equal parts). The bytes of a part are copied once into slabs and held until S3
 * has accepted the part, so a failed part can be sent again. All held slabs of one upload (parts
 * awaiting S3's answer plus the part filling) stay within `budget`; past it write() waits for the
 * oldest part to land. That pending promise is the backpressure: the SFTP or SCP layer does not
 * read more from its channel, so the SSH window stays shut.
 *
 * Streaming. The first part is buffered whole: a file that fits one part becomes a single
 * PutObject. Once a multipart upload exists, each following part is sent *while it fills*: an
 * UploadPart with Content-Length `partSize` starts with the part's first byte, and its body is
 * fed views of the slabs as WRITEs arrive, so S3 takes the data at the client's pace instead of
 * waiting for a full part and then sending it in a burst (the client stalled meanwhile). Whether
 * a part is the last one is known only at close: a last part shorter than `partSize` cancels its
 * live request (S3 discards a body cut short) and is sent again from the slabs with its real
 * length. At most one part's bytes cross the wire twice per file.
 *
 * A part is sealed only when it is full *and* another byte arrives, so a file of exactly one part
 * is still a single PutObject and the last part of a multipart upload is never empty.
 *
 * Failure. A live request that fails is not fatal by itself: the part is sent again from its
 * slabs once complete (with retries for transient errors). A part that still fails poisons the
 * handle: the multipart upload is aborted at once, and the next write() or commit() rejects with
 * EIO naming the part. abort() cancels live requests, waits for parts in flight (an abort that
 * races a part upload can leave that part behind) and aborts whatever was started.
 */
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { BackendError, type WriteHandle } from '../backend.js';
import { escapePeer, type Logger } from '../log.js';
import type { ClientPool } from './clients.js';
import { isNotImplemented, isPreconditionFailed, isTransient, toBackendError } from './errors.js';
import { PartBuffer, SLAB_SIZE } from './slabs.js';
import type { SseParams } from './sse.js';

export interface UploadContext {
  pool: ClientPool;
  log: Logger;
  secrets: readonly string[];
  sse: SseParams;
  partSize: number;
  /** Bytes of slabs one upload may hold: parts awaiting S3 plus the part filling. */
  budget: number;
  maxParts: number;
  /** Sets x-amz-meta-mtime on an existing object (used when the mtime changes after the upload began). */
  setObjectMtime(bucket: string, key: string, mtime: number): Promise<void>;
}

type State = 'open' | 'committing' | 'committed' | 'aborted' | 'failed';

const RETRIES = 2;

/**
 * The body of a live UploadPart: views of a filling part's slabs, pushed as they are written and
 * as fast as the HTTP request takes them, ending after `total` bytes.
 */
class LiveBody extends Readable {
  private sent = 0;
  private wanted = false;
  private readonly part: PartBuffer;
  private readonly total: number;

  constructor(part: PartBuffer, total: number) {
    // The views already exist in the slabs; the stream's own buffer only queues references.
    super({ highWaterMark: SLAB_SIZE });
    this.part = part;
    this.total = total;
  }

  /** New bytes were appended to the part. */
  feed(): void {
    if (this.wanted) this.pushAvailable();
  }

  override _read(): void {
    this.wanted = true;
    this.pushAvailable();
  }

  private pushAvailable(): void {
    const end = Math.min(this.part.length, this.total);
    while (this.wanted && this.sent < end) {
      const views = this.part.range(this.sent, end);
      this.sent = end;
      for (const v of views) {
        if (!this.push(v)) this.wanted = false;
      }
    }
    if (this.sent === this.total && !this.readableEnded) {
      this.push(null);
      this.wanted = false;
    }
  }
}

/** A part from sealing (or its live start) until S3 has it. */
interface Part {
  readonly number: number;
  readonly buf: PartBuffer;
  /** The live request, when the part started streaming while it filled. */
  live?: {
    body: LiveBody;
    abort: AbortController;
    /** Resolves with the ETag, or with the error; never rejects. */
    result: Promise<{ etag: string | undefined } | { error: unknown }>;
  };
  /** Settles once the part is stored or the upload has failed; never rejects. */
  done?: Promise<void>;
}

export class S3WriteHandle implements WriteHandle {
  private written = 0;
  private state: State = 'open';
  private failure: BackendError | undefined;
  /** The part filling; `fill.live` is set when it streams while filling. */
  private fill: Part = { number: 1, buf: new PartBuffer() };
  private uploadId: string | undefined;
  private creating: Promise<void> | undefined;
  private nextPart = 2;
  private readonly parts: CompletedPart[] = [];
  /** Sealed parts not yet stored, oldest first. */
  private readonly sent: Part[] = [];
  /** Serialises write/commit: the protocols run one handle's requests in order, but be sure. */
  private queue: Promise<unknown> = Promise.resolve();
  private mtime: number | undefined;
  private mtimeAtCreate: number | undefined;
  private commitPromise: Promise<void> | undefined;
  private abortPromise: Promise<void> | undefined;
  private readonly maxSlabs: number;
  private readonly label: string;
  private readonly ctx: UploadContext;
  private readonly bucket: string;
  private readonly key: string;
  private readonly exclusive: boolean;

  constructor(ctx: UploadContext, bucket: string, key: string, exclusive: boolean, mtime: number | undefined) {
    this.ctx = ctx;
    this.bucket = bucket;
    this.key = key;
    this.exclusive = exclusive;
    this.mtime = mtime === undefined ? undefined : Math.floor(mtime);
    this.maxSlabs = Math.floor(ctx.budget / SLAB_SIZE);
    this.label = `/${bucket}/${key}`;
  }

  get bytesWritten(): number {
    return this.written;
  }

  get size(): number {
    return this.written;
  }

  /** Not yet: an abandoned upload is discarded. */
  async commitPartial(): Promise<boolean> {
    await this.abort();
    return false;
  }

  setMtime(mtime: number): void {
    this.mtime = Math.floor(mtime);
  }

  write(offset: number, data: Buffer): Promise<void> {
    const p = this.queue.then(() => this.doWrite(offset, data));
    this.queue = p.catch(() => {});
    return p;
  }

  commit(): Promise<void> {
    if (!this.commitPromise) {
      const p = this.queue.then(() => this.doCommit());
      this.queue = p.catch(() => {});
      this.commitPromise = p;
    }
    return this.commitPromise;
  }

  abort(): Promise<void> {
    if (this.state === 'committed') return Promise.resolve();
    if (this.state === 'committing' && this.commitPromise) {
      // A commit is under way: it either lands (nothing left to discard) or fails and aborts itself.
      return this.commitPromise.then(
        () => {},
        () => this.abortPromise,
      );
    }
    if (!this.abortPromise) {
      if (this.state !== 'failed') this.state = 'aborted';
      this.abortPromise = this.cleanup();
    }
    return this.abortPromise;
  }

  // ---- writing -------------------------------------------------------------------------------

  /** Throws when the upload has failed or was aborted. */
  private usable(): void {
    if (this.failure) throw this.failure;
    if (this.state === 'aborted') throw new BackendError('EIO', `upload of ${this.label} was aborted`);
  }

  private async doWrite(offset: number, data: Buffer): Promise<void> {
    this.usable();
    if (this.state !== 'open') throw new BackendError('EINVAL', `upload of ${this.label} is already closed`);
    if (offset !== this.written) {
      throw new BackendError(
        'EINVAL',
        `writes must be sequential: got offset ${offset}, expected ${this.written} (S3 objects cannot be written out of order)`,
      );
    }
    let pos = 0;
    while (pos < data.length) {
      if (this.fill.buf.length === this.ctx.partSize) {
        // A full part and more data behind it: it is not the last part.
        await this.seal(false);
        this.usable();
      }
      if (this.fill.buf.needsSlab) {
        // Wait for the oldest part to land while taking another slab would pass the budget.
        while (this.sent.length > 0 && this.heldSlabs() + 1 > this.maxSlabs) {
          await this.sent[0]!.done;
          this.usable();
        }
      }
      pos += this.fill.buf.append(data, pos, this.ctx.partSize - this.fill.buf.length);
      this.fill.live?.body.feed();
    }
    this.written += data.length;
  }

  private heldSlabs(): number {
    let n = this.fill.buf.slabs.length;
    for (const p of this.sent) n += p.buf.slabs.length;
    return n;
  }

  /**
   * Seals the filling part and sends it (or lets its live request finish); returns once it is on
   * its way, not when it is stored. A part that is not the last one means more data follows: the
   * next part starts streaming at once.
   */
  private async seal(last: boolean): Promise<void> {
    if (!last && this.fill.number >= this.ctx.maxParts) {
      const err = new BackendError(
        'EINVAL',
        `${this.label}: file too large: S3 allows ${this.ctx.maxParts} parts and the part size is ` +
          `${this.ctx.partSize} bytes, so an upload of unknown size ends at ${this.ctx.maxParts * this.ctx.partSize} bytes`,
      );
      this.fail(err);
      throw err;
    }
    if (!this.uploadId) {
      await this.createUpload();
      this.usable(); // aborted while the upload was being created
    }
    const part = this.fill;
    if (part.buf.length === 0) {
      // Only a live part that never got a byte (a write that failed in between): nothing to send.
      part.live?.abort.abort();
      part.buf.release();
    } else {
      part.done = this.finish(part).finally(() => {
        part.buf.release();
        const i = this.sent.indexOf(part);
        if (i >= 0) this.sent.splice(i, 1);
      });
      this.sent.push(part);
    }
    if (!last) {
      this.fill = { number: this.nextPart++, buf: new PartBuffer() };
      this.startLive(this.fill);
    }
  }

  private createUpload(): Promise<void> {
    if (!this.creating) {
      this.mtimeAtCreate = this.mtime;
      this.creating = (async () => {
        try {
          const out = await this.ctx.pool.send(this.bucket, () =>
            new CreateMultipartUploadCommand({
              Bucket: this.bucket,
              Key: this.key,
              ...this.ctx.sse,
              ...(this.mtime !== undefined ? { Metadata: { mtime: String(this.mtime) } } : {}),
            }),
          );
          if (!out.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
          this.uploadId = out.UploadId;
          if (this.ctx.log.debugEnabled) this.ctx.log.debug('multipart upload started', { bucket: escapePeer(this.bucket) });
        } catch (err) {
          const e = toBackendError(err, `upload ${this.label}`, this.ctx.secrets);
          this.fail(e);
          throw e;
        }
      })();
    }
    return this.creating;
  }

  /** Starts the live request of a part that has just begun to fill. */
  private startLive(part: Part): void {
    const body = new LiveBody(part.buf, this.ctx.partSize);
    const abort = new AbortController();
    let made = false;
    const result = this.ctx.pool
      .send(
        this.bucket,
        () => {
          // A live body cannot be replayed: a second attempt (wrong region) fails the live
          // request, and the part goes again from its slabs.
          if (made) throw new Error('live part body already consumed');
          made = true;
          return new UploadPartCommand({
            Bucket: this.bucket,
            Key: this.key,
            UploadId: this.uploadId,
            PartNumber: part.number,
            ContentLength: this.ctx.partSize,
            Body: body,
          });
        },
        abort.signal,
      )
      .then(
        (out) => ({ etag: out.ETag }),
        (error: unknown) => {
          body.destroy();
          return { error };
        },
      );
    part.live = { body, abort, result };
  }

  /** Gets a sealed part stored; never rejects: a failure is recorded and the upload aborted. */
  private async finish(part: Part): Promise<void> {
    try {
      let etag: string | undefined;
      const live = part.live;
      let retry = true;
      if (live && part.buf.length === this.ctx.partSize) {
        const r = await live.result;
        if ('etag' in r) {
          etag = r.etag;
          retry = false;
        } else if (this.state === 'aborted' || this.state === 'failed') {
          return; // cut short by abort(); nothing to report
        } else if (!isTransient(r.error)) {
          throw r.error;
        }
      } else if (live) {
        // A last part shorter than announced: cut its request short, send the real length.
        live.abort.abort();
        await live.result;
      }
      if (retry) {
        if (this.state === 'aborted' || this.state === 'failed') return;
        const out = await this.withRetry(() =>
          this.ctx.pool.send(this.bucket, () =>
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: this.key,
              UploadId: this.uploadId,
              PartNumber: part.number,
              ContentLength: part.buf.length,
              Body: part.buf.stream(),
            }),
          ),
        );
        etag = out.ETag;
      }
      if (this.state === 'aborted' || this.state === 'failed') return;
      this.parts.push({ PartNumber: part.number, ETag: etag });
    } catch (err) {
      const e = toBackendError(err, `upload ${this.label}`, this.ctx.secrets);
      this.fail(
        new BackendError(e.code === 'EACCES' ? 'EACCES' : 'EIO', `${e.message} (part ${part.number} failed; the upload was aborted)`, {
          cause: err,
        }),
      );
    }
  }

  /**
   * The SDK does not retry a request whose body is a stream (it cannot rewind it); we can, since
   * the part's slabs are still held, so stream-bodied requests get our own retries.
   */
  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= RETRIES || !isTransient(err) || this.state === 'aborted') throw err;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  /** Poisons the handle and aborts the multipart upload in the background. */
  private fail(err: BackendError): void {
    if (this.failure) return;
    this.failure = err;
    if (this.state === 'open' || this.state === 'committing') this.state = 'failed';
    this.ctx.log.warn('upload failed', { path: escapePeer(this.label), code: err.code, error: escapePeer(err.message, 400) });
    this.abortPromise ??= this.cleanup();
  }

  /** Waits until every sealed part is stored or given up. */
  private async drain(): Promise<void> {
    while (this.sent.length > 0) await this.sent[0]!.done;
  }

  // ---- commit and abort ----------------------------------------------------------------------

  private async doCommit(): Promise<void> {
    this.usable();
    if (this.state !== 'open') throw new BackendError('EINVAL', `upload of ${this.label} is already closed`);
    this.state = 'committing';
    try {
      if (!this.uploadId && !this.creating) {
        await this.putWhole();
      } else {
        await this.seal(true); // the last part, never empty (see the module comment)
        await this.drain();
        if (this.failure) throw this.failure;
        await this.complete();
      }
      this.state = 'committed';
    } catch (err) {
      const e = toBackendError(err, `upload ${this.label}`, this.ctx.secrets);
      this.fail(e);
      await this.abortPromise;
      throw this.failure ?? e;
    } finally {
      this.fill.buf.release();
    }
    if (this.uploadId && this.mtime !== undefined && this.mtime !== this.mtimeAtCreate) {
      // The mtime came after CreateMultipartUpload (FSETSTAT before CLOSE): store it now. The
      // object is in place already, so a failure here is logged rather than failing the upload.
      try {
        await this.ctx.setObjectMtime(this.bucket, this.key, this.mtime);
      } catch (err) {
        this.ctx.log.warn('could not store mtime after upload', {
          path: escapePeer(this.label),
          error: escapePeer(toBackendError(err, 'setstat', this.ctx.secrets).message, 400),
        });
      }
    }
  }

  private async putWhole(): Promise<void> {
    const fill = this.fill.buf;
    const send = (ifNoneMatch: boolean) =>
      this.withRetry(() =>
        this.ctx.pool.send(this.bucket, () =>
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.key,
            ContentLength: fill.length,
            // An empty Buffer, not an empty stream: some stores refuse a chunked empty body.
            Body: fill.length === 0 ? Buffer.alloc(0) : fill.stream(),
            ...this.ctx.sse,
            ...(this.mtime !== undefined ? { Metadata: { mtime: String(this.mtime) } } : {}),
            ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
          }),
        ),
      );
    await this.conditional(send);
  }

  private async complete(): Promise<void> {
    const parts = this.parts.slice().sort((a, b) => a.PartNumber! - b.PartNumber!);
    // Not a stream body: the SDK retries this request itself.
    const send = (ifNoneMatch: boolean) =>
      this.ctx.pool.send(this.bucket, () =>
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.key,
          UploadId: this.uploadId,
          MultipartUpload: { Parts: parts },
          ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
        }),
      );
    await this.conditional(send);
  }

  /**
   * An exclusive create checked the object was absent when the handle opened; If-None-Match: *
   * closes the race at commit. A store that does not implement the header gets the request again
   * without it (the check at open still stands).
   */
  private async conditional(send: (ifNoneMatch: boolean) => Promise<unknown>): Promise<void> {
    try {
      await send(this.exclusive);
    } catch (err) {
      if (this.exclusive && isPreconditionFailed(err)) {
        throw new BackendError('EEXIST', `${this.label}: file exists (created by someone else during the upload)`, {
          cause: err,
        });
      }
      if (this.exclusive && isNotImplemented(err)) {
        this.ctx.log.warn('store does not implement If-None-Match; exclusive create checked at open only');
        await send(false);
        return;
      }
      throw err;
    }
  }

  private async cleanup(): Promise<void> {
    if (this.creating) await this.creating.catch(() => {});
    // A live request of the filling part is cut short (S3 keeps nothing of a short body); sealed
    // parts land first: an abort that overtakes a part upload can leave the part stored.
    const live = this.fill.live;
    if (live) {
      live.abort.abort();
      await live.result;
    }
    for (const p of this.sent) p.live?.abort.abort();
    await this.drain();
    this.fill.buf.release();
    const uploadId = this.uploadId;
    if (!uploadId) return;
    this.uploadId = undefined;
    try {
      await this.ctx.pool.send(this.bucket, () =>
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: uploadId }),
      );
    } catch (err) {
      // Nothing more we can do; a lifecycle rule (AbortIncompleteMultipartUpload) is the backstop.
      this.ctx.log.warn('could not abort multipart upload', {
        path: escapePeer(this.label),
        error: escapePeer(toBackendError(err, 'abort', this.ctx.secrets).message, 400),
      });
    }
  }
}
