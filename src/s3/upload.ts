/**
 * A streaming upload: WriteHandle over PutObject (small files) or a multipart upload.
 *
 * Memory. Every part has the same size (`partSize`, at least S3's 5 MiB minimum; stores such as
 * R2 also demand equal parts). At most one part is on the wire while the next one fills, and the
 * two together may hold at most `budget` bytes of slabs. With the defaults (5 MiB parts, 8 MiB
 * budget) the filling part may reach 3 MiB while its predecessor uploads; then write() stays
 * pending until S3 accepts the part in flight. That pending promise is the backpressure: the SFTP
 * or SCP layer does not read more from its channel, so the SSH window stays shut.
 *
 * A part is sealed only when it is full *and* another byte arrives, so a file of exactly one part
 * is still a single PutObject and the last part of a multipart upload is never empty.
 *
 * Failure. A part that fails (after one retry for transient errors) poisons the handle: the
 * multipart upload is aborted at once, and the next write() or commit() rejects with EIO naming
 * the part. abort() aborts whatever was started, and waits for a part in flight first, because an
 * abort that races a part upload can leave that part behind.
 */
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
  /** Bytes of slabs one upload may hold: the part in flight plus the part filling. */
  budget: number;
  maxParts: number;
  /** Sets x-amz-meta-mtime on an existing object (used when the mtime changes after the upload began). */
  setObjectMtime(bucket: string, key: string, mtime: number): Promise<void>;
}

type State = 'open' | 'committing' | 'committed' | 'aborted' | 'failed';

const RETRIES = 2;

export class S3WriteHandle implements WriteHandle {
  private written = 0;
  private state: State = 'open';
  private failure: BackendError | undefined;
  private fill = new PartBuffer();
  private uploadId: string | undefined;
  private creating: Promise<void> | undefined;
  private nextPart = 1;
  private readonly parts: CompletedPart[] = [];
  private inflight: Promise<void> | undefined;
  private inflightBytes = 0;
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
      if (this.fill.length === this.ctx.partSize) {
        // A full part and more data behind it: it is not the last part, send it.
        await this.sendFill(false);
        this.usable();
      }
      if (this.fill.needsSlab) {
        // Wait for the part in flight while taking another slab would pass the budget.
        while (this.inflight && this.heldSlabs() + 1 > this.maxSlabs) {
          await this.inflight;
          this.usable();
        }
      }
      pos += this.fill.append(data, pos, this.ctx.partSize - this.fill.length);
    }
    this.written += data.length;
  }

  private heldSlabs(): number {
    return Math.ceil(this.inflightBytes / SLAB_SIZE) + this.fill.slabs.length;
  }

  /**
   * Starts the upload of the filled part; returns once it is on its way (not when it is done).
   * A part that is not the last one means more data follows, which needs a part after it.
   */
  private async sendFill(last: boolean): Promise<void> {
    while (this.inflight) {
      await this.inflight;
      this.usable();
    }
    if (last ? this.nextPart > this.ctx.maxParts : this.nextPart >= this.ctx.maxParts) {
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
    this.fill = new PartBuffer();
    const number = this.nextPart++;
    this.inflightBytes = part.slabs.length * SLAB_SIZE;
    this.inflight = this.uploadPart(part, number).finally(() => {
      part.release();
      this.inflightBytes = 0;
      this.inflight = undefined;
    });
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

  /** Uploads one part; never rejects: a failure is recorded and the upload aborted. */
  private async uploadPart(part: PartBuffer, number: number): Promise<void> {
    try {
      const out = await this.withRetry(() =>
        this.ctx.pool.send(this.bucket, () =>
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: this.key,
            UploadId: this.uploadId,
            PartNumber: number,
            ContentLength: part.length,
            Body: part.stream(),
          }),
        ),
      );
      if (this.state === 'aborted' || this.state === 'failed') return;
      this.parts.push({ PartNumber: number, ETag: out.ETag });
    } catch (err) {
      const e = toBackendError(err, `upload ${this.label}`, this.ctx.secrets);
      this.fail(
        new BackendError(e.code === 'EACCES' ? 'EACCES' : 'EIO', `${e.message} (part ${number} failed; the upload was aborted)`, {
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

  // ---- commit and abort ----------------------------------------------------------------------

  private async doCommit(): Promise<void> {
    this.usable();
    if (this.state !== 'open') throw new BackendError('EINVAL', `upload of ${this.label} is already closed`);
    this.state = 'committing';
    try {
      if (!this.uploadId && !this.creating) {
        await this.putWhole();
      } else {
        await this.sendFill(true); // the last part, never empty (see the module comment)
        while (this.inflight) await this.inflight;
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
      this.fill.release();
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
    const fill = this.fill;
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
    // Let a part in flight land first: an abort that overtakes it can leave the part stored.
    while (this.inflight) await this.inflight;
    this.fill.release();
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
