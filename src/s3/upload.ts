/**
 * A streaming upload: WriteHandle over PutObject (small files) or multipart uploads.
 *
 * Memory. Every raw part has the same size (`partSize`, at least S3's 5 MiB minimum; stores such
 * as R2 also demand equal parts). The bytes of a part are copied once into slabs and held until
 * S3 has accepted the part, so a failed part can be sent again. All held slabs of one upload
 * (parts awaiting S3's answer plus the part filling) stay within `budget`; past it write() waits
 * for the oldest part to land. That pending promise is the backpressure: the SFTP or SCP layer
 * does not read more from its channel, so the SSH window stays shut.
 *
 * Streaming. The first part is buffered whole: a file that fits one part becomes a single
 * PutObject. Once it is multipart, each following part is sent *while it fills*: an UploadPart
 * with Content-Length `partSize` starts with the part's first byte, and its body is fed views of
 * the slabs as WRITEs arrive. Whether a part is the last one is known only at close: a last part
 * shorter than `partSize` cancels its live request (S3 discards a body cut short) and is sent
 * again from the slabs with its real length. At most one part's bytes cross the wire twice.
 *
 * A part is sealed only when it is full *and* another byte arrives, so a file of exactly one part
 * is still a single PutObject and the last part of a multipart upload is never empty.
 *
 * Size. Where each raw part goes is planned by layout.ts: the final object's multipart upload
 * first, then, when its part numbers run short, temporary segment objects (next to the file,
 * named `<key>.s3gw-tmp-<token>-<n>`) that are completed, copied into the final upload as one
 * part each (UploadPartCopy) and deleted at once. Memory does not change with the file's size.
 *
 * Resume. A handle may continue an existing object (WriteOptions.mode): its bytes become the
 * first parts of a new multipart upload by UploadPartCopy (a head under S3's 5 MiB part minimum
 * is read back into the first part instead), and new data follows. Until commit, readers see the
 * old object.
 *
 * Failure. A live request that fails is not fatal by itself: the part is sent again from its
 * slabs once complete (with retries for transient errors). A part, copy or segment that still
 * fails poisons the handle: every multipart upload is aborted at once, temporaries are deleted,
 * and the next write() or commit() rejects with EIO naming the part. abort() cancels live
 * requests, waits for requests in flight and removes whatever was started.
 */
import { pipeline, Readable, Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { BackendError, type WriteHandle, type WriteOptions } from '../backend.js';
import { sweepStaleUploads } from './stale.js';
import { escapePeer, type Logger } from '../log.js';
import type { ClientPool } from './clients.js';
import { crc32Base64, crc32Combine, isChecksumRefused, UploadChecksum } from './checksum.js';
import { isNotImplemented, isPreconditionFailed, isTransient, toBackendError } from './errors.js';
import { Layout, LayoutError, MAX_COPY_PART, type LayoutNode } from './layout.js';
import { copySource, MAX_KEY_BYTES } from './paths.js';
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
  /** The largest object an upload may make. */
  maxObjectSize: number;
  /** What commitPartial() does: keep what arrived when that destroys nothing, or discard. */
  partialUploads: 'keep' | 'discard';
  /** The whole-file checksum stored with each object (checksum.ts). */
  checksum: 'crc32' | 'none';
  /** What this store was found to refuse, shared by every upload to it (storeQuirks). */
  quirks: StoreQuirks;
  /** Sets x-amz-meta-mtime on an existing object (used when the mtime changes after the upload began). */
  setObjectMtime(bucket: string, key: string, mtime: number): Promise<void>;
  /** Whether an object is at `key` (a denied HEAD counts as yes: we cannot tell). */
  objectExists(bucket: string, key: string): Promise<boolean>;
  /** Pending uploads of a key silent this long are a dead gateway's (stale.ts); 0: no sweep. */
  staleUploadMs: number;
}

/** What one upload writes. */
export interface UploadTarget {
  bucket: string;
  key: string;
  /** Create only: If-None-Match at commit. */
  exclusive: boolean;
  mtime: number | undefined;
  mode: NonNullable<WriteOptions['mode']>;
  /** The object a 'continue' or 'append' upload may continue, with its stored CRC32 if any. */
  existing?: Existing;
  /** The file's size, when known in advance (SCP). */
  expectedSize?: number;
  /**
   * Commit stops short of the last step (PutObject, CompleteMultipartUpload): the backend
   * finishes it later with finishParked(), at a key it then knows (filepart.ts).
   */
  park?: boolean;
}

export interface Existing {
  size: number;
  etag: string | undefined;
  crc32?: number;
}

/**
 * What a store refuses, learned from its answers and kept for the process: stores differ
 * (docs/PROTOCOL.md §8), and a refusal costs a request each time it is rediscovered.
 */
export interface StoreQuirks {
  /** Additional checksums on PutObject / CreateMultipartUpload / UploadPart. */
  checksumRefused: boolean;
  /** UploadPartCopy into an upload with a checksum algorithm (MinIO: "checksum missing"). */
  copyRefused: boolean;
}

const QUIRKS = new Map<string, StoreQuirks>();

/** The quirks of the store at `endpoint` ('' for AWS). */
export function storeQuirks(endpoint: string): StoreQuirks {
  let q = QUIRKS.get(endpoint);
  if (!q) QUIRKS.set(endpoint, (q = { checksumRefused: false, copyRefused: false }));
  return q;
}

type State = 'open' | 'committing' | 'parked' | 'committed' | 'aborted' | 'failed';

const RETRIES = 2;
/** S3's smallest part but the last: a resumed head below it is read back, not copied. */
const MIN_PART = 5 * 1024 * 1024;
/** The mark in a temporary segment's key: `<key>.s3gw-tmp-<token>-<n>`. */
export const TEMP_MARK = '.s3gw-tmp-';
/**
 * The smallest chunk of a streamed part body but the last: S3's aws-chunked minimum is 8 KiB. Short
 * pieces are copied to reach it, so it is kept small: a WRITE that crosses a slab edge leaves a
 * short view, and topping it up copies at most this much.
 */
const MIN_CHUNK = 16 * 1024;
/** Temporaries older than this are left over from a crash (a live one lives seconds). */
const STALE_MS = 60 * 60 * 1000;

/**
 * The body of a live UploadPart: views of a filling part's slabs, pushed as they are written and
 * as fast as the HTTP request takes them, ending after `total` bytes.
 */
export class LiveBody extends Readable {
  private sent = 0;
  private wanted = false;
  private ended = false;
  /** Views shorter than MIN_CHUNK waiting to be joined into one chunk. */
  private small: Buffer[] = [];
  private smallLength = 0;
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
      for (const v of views) this.chunk(v);
    }
    if (this.sent === this.total && !this.ended) {
      if (this.smallLength > 0) this.emit1(Buffer.concat(this.small, this.smallLength));
      this.ended = true;
      this.push(null);
      this.wanted = false;
    }
  }

  /**
   * Each pushed buffer becomes one aws-chunked chunk when the part carries a CRC32 trailer, and
   * S3 refuses chunks under 8 KiB but the last: short views (small WRITEs, the ends of slabs) are
   * joined until MIN_CHUNK. Views at least that long go out as they are, uncopied.
   */
  private chunk(v: Buffer): void {
    if (this.smallLength === 0 && v.length >= MIN_CHUNK) {
      this.emit1(v);
      return;
    }
    const need = MIN_CHUNK - this.smallLength;
    if (this.smallLength > 0 && v.length - need >= MIN_CHUNK) {
      // Top the short pieces up from this view and send the rest of it uncopied: at most
      // MIN_CHUNK bytes are copied per short piece.
      this.small.push(v.subarray(0, need));
      const joined = Buffer.concat(this.small, MIN_CHUNK);
      this.small = [];
      this.smallLength = 0;
      this.emit1(joined);
      this.emit1(v.subarray(need));
      return;
    }
    this.small.push(v);
    this.smallLength += v.length;
    if (this.smallLength >= MIN_CHUNK) {
      const joined = Buffer.concat(this.small, this.smallLength);
      this.small = [];
      this.smallLength = 0;
      this.emit1(joined);
    }
  }

  private emit1(b: Buffer): void {
    if (!this.push(b)) this.wanted = false;
  }
}

/**
 * Joins a stream's short chunks into chunks of at least MIN_CHUNK (see LiveBody.chunk), for a
 * GET body streamed into an UploadPart. A Transform, so backpressure passes through it.
 */
export function coalesce(): Transform {
  let held: Buffer[] = [];
  let heldLength = 0;
  return new Transform({
    transform(data: Buffer, _enc, done) {
      if (heldLength === 0 && data.length >= MIN_CHUNK) return done(null, data);
      held.push(data);
      heldLength += data.length;
      if (heldLength < MIN_CHUNK) return done();
      const joined = Buffer.concat(held, heldLength);
      held = [];
      heldLength = 0;
      done(null, joined);
    },
    flush(done) {
      done(null, heldLength > 0 ? Buffer.concat(held, heldLength) : undefined);
    },
  });
}

/** One multipart upload of the layout: the final object's, or a temporary segment's. */
interface NodeState {
  readonly node: LayoutNode;
  readonly key: string;
  uploadId: string | undefined;
  /** Settles once CreateMultipartUpload has answered; never rejects (a failure poisons the handle). */
  created: Promise<void>;
  readonly parts: CompletedPart[];
  /** Parts and copied children on their way into this upload; never reject. */
  readonly pending: Promise<void>[];
  /** A completed segment whose temporary object still exists. */
  stored: boolean;
  /** Created with a CRC32 checksum algorithm: every part must carry its CRC32. */
  checksummed: boolean;
  /** Bytes in this node (for a segment: the size of its object). */
  bytes: number;
  /** The length of each stored part, by part number (to combine the parts' CRC32s). */
  readonly lengths: Map<number, number>;
}

/** A raw part from its start until S3 has it. */
interface Part {
  /** Where it goes; the first part is placed only once the upload is known to be multipart. */
  place?: { state: NodeState; number: number };
  readonly buf: PartBuffer;
  /** The live request, when the part started streaming while it filled. */
  live?: {
    body: LiveBody;
    abort: AbortController;
    /** Resolves with the ETag, or with the error; never rejects. */
    result: Promise<{ etag: string | undefined; crc: string | undefined } | { error: unknown }>;
  };
  /** Settles once the part is stored or the upload has failed; never rejects. */
  done?: Promise<void>;
}

/**
 * The CRC32 of a node's object from its parts' CRC32s (as S3 returned them) and lengths, or
 * undefined when a part has none.
 */
function nodeCrc(st: NodeState): number | undefined {
  let crc = 0;
  for (const p of st.parts.slice().sort((a, b) => a.PartNumber! - b.PartNumber!)) {
    const len = st.lengths.get(p.PartNumber!);
    if (p.ChecksumCRC32 === undefined || len === undefined) return undefined;
    const b = Buffer.from(p.ChecksumCRC32, 'base64');
    if (b.length !== 4) return undefined;
    crc = crc32Combine(crc, b.readUInt32BE(0), len);
  }
  return crc;
}

export class S3WriteHandle implements WriteHandle {
  private written = 0;
  private state: State = 'open';
  private failure: BackendError | undefined;
  private fill: Part = { buf: new PartBuffer() };
  /** Sealed parts not yet stored, oldest first. */
  private readonly sent: Part[] = [];
  private layout: Layout | undefined;
  private readonly states = new Map<LayoutNode, NodeState>();
  /** Head copies and segment completions, for abort to wait on. */
  private readonly background: Promise<void>[] = [];
  /** Serialises write/commit: the protocols run one handle's requests in order, but be sure. */
  private queue: Promise<unknown> = Promise.resolve();
  private mtime: number | undefined;
  private mtimeAtCreate: number | undefined;
  private commitPromise: Promise<void> | undefined;
  private abortPromise: Promise<void> | undefined;
  /** The existing object this upload may still continue, until the first write decides. */
  private existing: Existing | undefined;
  /** The CRC32 of everything the object will hold; `sumKnown` false when a copied head had none. */
  private readonly sum: UploadChecksum | undefined;
  private sumKnown = true;
  /** Bytes of the existing object this upload continues (0 unless resumed). */
  private base = 0;
  private resumed = false;
  private swept = false;
  private exclusive: boolean;
  private readonly token: string;
  private readonly capacity: number;
  private readonly maxSlabs: number;
  private readonly label: string;
  private readonly ctx: UploadContext;
  private readonly bucket: string;
  private readonly key: string;
  private readonly mode: UploadTarget['mode'];
  private readonly park: boolean;

  constructor(ctx: UploadContext, target: UploadTarget) {
    this.ctx = ctx;
    this.bucket = target.bucket;
    this.key = target.key;
    this.exclusive = target.exclusive;
    this.mode = target.mode;
    this.park = target.park === true;
    this.existing = target.mode !== 'replace' && target.existing && target.existing.size > 0 ? target.existing : undefined;
    this.mtime = target.mtime === undefined ? undefined : Math.floor(target.mtime);
    this.capacity = Math.min(ctx.maxObjectSize, target.expectedSize ?? Infinity);
    this.maxSlabs = Math.floor(ctx.budget / SLAB_SIZE);
    this.label = `/${target.bucket}/${target.key}`;
    this.sum = ctx.checksum === 'crc32' ? new UploadChecksum() : undefined;
    this.token = Date.now().toString(36) + Math.floor(Math.random() * 36 ** 6).toString(36).padStart(6, '0');
  }

  get bytesWritten(): number {
    return this.written;
  }

  get size(): number {
    return this.existing ? this.existing.size : this.base + this.written;
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

  /** True once a parked upload holds more than one part (it can only finish at its own key). */
  get isMultipart(): boolean {
    return this.rootIfStarted() !== undefined;
  }

  /** The final object's multipart upload, once the upload has become multipart. */
  private rootIfStarted(): NodeState | undefined {
    return this.layout ? this.states.get(this.layout.root) : undefined;
  }

  /**
   * Finishes a parked upload: a single part goes to `key` with one PutObject; a multipart
   * upload is completed at its own key, which `key` must be. With `ifNoneMatch` it lands only
   * where no object is. A failure aborts everything and rejects.
   */
  async finishParked(key: string, ifNoneMatch: boolean): Promise<void> {
    if (this.state !== 'parked') throw new BackendError('EINVAL', `upload of ${this.label} is not parked`);
    this.state = 'committing';
    this.exclusive = ifNoneMatch;
    try {
      const root = this.rootIfStarted();
      if (root) {
        if (key !== this.key) throw new Error(`a multipart upload of ${this.key} cannot finish at ${key}`);
        await this.complete(root);
      } else {
        await this.putWhole(key);
      }
      this.state = 'committed';
    } catch (err) {
      return await this.commitFailed(err);
    } finally {
      this.fill.buf.release();
    }
    if (this.isMultipart && this.mtime !== undefined && this.mtime !== this.mtimeAtCreate) await this.storeMtime();
  }

  /**
   * The client left before CLOSE. What arrived is kept, so the client can resume, only when that
   * destroys nothing: this upload continues the object (its old bytes are the new one's start),
   * or no object is at the key (checked now, and with If-None-Match at commit).
   */
  async commitPartial(): Promise<boolean> {
    await this.queue;
    const keep =
      this.ctx.partialUploads === 'keep' && this.state === 'open' && !this.failure && !this.existing && this.written > 0;
    if (keep && !this.resumed) {
      let exists = true;
      try {
        exists = await this.ctx.objectExists(this.bucket, this.key);
      } catch {
        // cannot tell: keep nothing
      }
      if (exists) {
        await this.abort();
        return false;
      }
      this.exclusive = true;
    }
    if (!keep) {
      await this.abort();
      return false;
    }
    try {
      await this.commit();
      return true;
    } catch {
      return false; // a failed commit has aborted itself
    }
  }

  // ---- writing -------------------------------------------------------------------------------

  /** Throws when the upload has failed or was aborted. */
  private usable(): void {
    if (this.failure) throw this.failure;
    if (this.state === 'aborted') throw new BackendError('EIO', `upload of ${this.label} was aborted`);
  }

  private stopped(): boolean {
    return this.state === 'aborted' || this.state === 'failed';
  }

  private async doWrite(offset: number, data: Buffer): Promise<void> {
    this.usable();
    if (this.state !== 'open') throw new BackendError('EINVAL', `upload of ${this.label} is already closed`);
    // The first write decides; an empty one at 0 counts (scp truncating with FSETSTAT SIZE 0).
    if (this.existing && (data.length > 0 || (offset === 0 && this.mode === 'continue'))) await this.decide(offset);
    if (this.mode === 'append') offset = this.size;
    if (offset !== this.size) {
      throw new BackendError(
        'EINVAL',
        `writes must be sequential: got offset ${offset}, expected ${this.size} (S3 objects cannot be written out of order)`,
      );
    }
    if (this.size + data.length > this.capacity) {
      const err = new BackendError(
        'EINVAL',
        `${this.label}: file too large: the limit is ${this.capacity} bytes` +
          (this.capacity === this.ctx.maxObjectSize ? ' (the largest object this gateway is set to store)' : ''),
      );
      this.fail(err);
      throw err;
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
      const n = this.fill.buf.append(data, pos, this.ctx.partSize - this.fill.buf.length);
      this.sum?.update(data.subarray(pos, pos + n));
      pos += n;
      this.fill.live?.body.feed();
    }
    this.written += data.length;
  }

  /**
   * The first write to a handle that may continue an existing object: at the object's end (or
   * anywhere, for 'append') it continues it; at 0 it replaces it; anywhere else is refused and
   * leaves the object as it is.
   */
  private async decide(offset: number): Promise<void> {
    const ex = this.existing!;
    if (this.mode !== 'append' && offset !== ex.size) {
      if (offset === 0) {
        this.existing = undefined;
        return;
      }
      throw new BackendError(
        'EINVAL',
        `${this.label}: a write to an existing file must start at 0 (to replace it) or at its end, ` +
          `offset ${ex.size} (to continue it); got offset ${offset}`,
      );
    }
    this.existing = undefined;
    this.base = ex.size;
    this.resumed = true;
    try {
      if (ex.size < MIN_PART) await this.readHead(ex);
      else this.copyHead(ex);
    } catch (err) {
      const e =
        err instanceof BackendError
          ? err
          : isPreconditionFailed(err)
            ? new BackendError('EIO', `${this.label} changed since it was opened; nothing was written`, { cause: err })
            : toBackendError(err, `continue ${this.label}`, this.ctx.secrets);
      this.fail(e);
      throw e;
    }
  }

  /** A head below S3's part minimum goes into the first part, read back from the object. */
  private async readHead(ex: Existing): Promise<void> {
    const out = await this.ctx.pool.send(this.bucket, () =>
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: this.key,
        Range: `bytes=0-${ex.size - 1}`,
        ...(ex.etag ? { IfMatch: ex.etag } : {}),
      }),
    );
    let got = 0;
    for await (const chunk of out.Body as AsyncIterable<Uint8Array>) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      if (got + b.length > ex.size) throw new BackendError('EIO', `${this.label}: the store returned more than asked`);
      for (let pos = 0; pos < b.length; ) pos += this.fill.buf.append(b, pos, b.length - pos);
      this.sum?.update(b);
      got += b.length;
    }
    if (got !== ex.size) throw new BackendError('EIO', `${this.label}: read ${got} of the existing ${ex.size} bytes`);
  }

  /** The existing object becomes the first parts of the final upload, copied by S3 (≤ 5 GiB each). */
  private copyHead(ex: Existing): void {
    if (this.sum) {
      if (ex.crc32 !== undefined) this.sum.prepend(ex.crc32, ex.size);
      else this.sumKnown = false; // the store computes the object's CRC from the parts' instead
    }
    const count = Math.ceil(ex.size / MAX_COPY_PART);
    const chunk = Math.ceil(ex.size / count);
    try {
      this.plan().reserveRoot(count, ex.size);
    } catch (err) {
      if (err instanceof LayoutError) throw new BackendError('EINVAL', `${this.label}: cannot continue: ${err.message}`);
      throw err;
    }
    const root = this.rootState();
    for (let i = 0; i < count; i++) {
      const first = i * chunk;
      const last = Math.min(ex.size, first + chunk) - 1;
      const done = (async () => {
        try {
          await root.created;
          if (this.stopped()) return;
          // The whole object's stored CRC32 is the range's when there is one range.
          const crc = count === 1 ? ex.crc32 : undefined;
          const part = await this.copyPart(root, i + 1, this.key, { first, last, etag: ex.etag, crc });
          if (this.stopped()) return;
          root.parts.push(part);
          root.lengths.set(i + 1, last - first + 1);
        } catch (err) {
          this.fail(
            isPreconditionFailed(err)
              ? new BackendError('EIO', `${this.label} changed since it was opened; the upload was aborted`, { cause: err })
              : this.partError(err, `copying the existing bytes ${first}-${last}`),
          );
        }
      })();
      root.pending.push(done);
      this.background.push(done);
    }
  }

  private heldSlabs(): number {
    let n = this.fill.buf.slabs.length;
    for (const p of this.sent) n += p.buf.slabs.length;
    return n;
  }

  // ---- layout ---------------------------------------------------------------------------------

  private plan(): Layout {
    return (this.layout ??= new Layout({ partSize: this.ctx.partSize, maxParts: this.ctx.maxParts, capacity: this.capacity }));
  }

  private rootState(): NodeState {
    const root = this.plan().root;
    return this.states.get(root) ?? this.open(root);
  }

  /** Places the next raw part; finishes segments that filled and starts the ones it opens. */
  private place(): { state: NodeState; number: number } {
    const layout = this.plan();
    this.rootState(); // copies of segments go into it
    let p;
    try {
      p = layout.next();
    } catch (err) {
      if (!(err instanceof LayoutError)) throw err;
      const e = new BackendError('EINVAL', `${this.label}: file too large: ${err.message}`);
      this.fail(e);
      throw e;
    }
    for (const n of p.closed) this.finishSegment(n);
    for (const n of p.opened) this.open(n);
    return { state: this.states.get(p.node)!, number: p.partNumber };
  }

  /** Starts the multipart upload of a node: the final object's, or a segment's temporary. */
  private open(node: LayoutNode): NodeState {
    const isRoot = node.parent === undefined;
    const key = isRoot ? this.key : this.tempKey(node.id);
    const st: NodeState = {
      node,
      key,
      uploadId: undefined,
      created: Promise.resolve(),
      parts: [],
      pending: [],
      stored: false,
      checksummed: this.sum !== undefined && !this.ctx.quirks.checksumRefused,
      bytes: 0,
      lengths: new Map(),
    };
    this.states.set(node, st);
    if (isRoot) this.mtimeAtCreate = this.mtime;
    const metadata = isRoot && this.mtime !== undefined ? { Metadata: { mtime: String(this.mtime) } } : {};
    st.created = (async () => {
      try {
        const create = () =>
          this.ctx.pool.send(this.bucket, () =>
            new CreateMultipartUploadCommand({
              Bucket: this.bucket,
              Key: key,
              ...this.ctx.sse,
              ...metadata,
              ...(st.checksummed ? UploadChecksum.createParams() : {}),
            }),
          );
        let out;
        try {
          out = await create();
        } catch (err) {
          if (!st.checksummed || !isChecksumRefused(err)) throw err;
          this.refuseChecksums('CreateMultipartUpload');
          st.checksummed = false;
          out = await create();
        }
        if (!out.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
        st.uploadId = out.UploadId;
        if (isRoot) this.sweepDeadUploads(out.UploadId);
        if (this.ctx.log.debugEnabled) {
          this.ctx.log.debug(isRoot ? 'multipart upload started' : 'segment started', { bucket: escapePeer(this.bucket), node: node.id });
        }
      } catch (err) {
        this.fail(toBackendError(err, `upload ${this.label}`, this.ctx.secrets));
      }
    })();
    if (!isRoot && !this.swept) {
      this.swept = true;
      void this.sweepStale();
    }
    return st;
  }

  private deadSwept = false;

  /** Once per upload, in the background: pending uploads of this key a dead gateway left (stale.ts). */
  private sweepDeadUploads(ours: string | undefined): void {
    if (this.deadSwept || this.ctx.staleUploadMs <= 0) return;
    this.deadSwept = true;
    const c = this.ctx;
    void sweepStaleUploads({ pool: c.pool, log: c.log, secrets: c.secrets, staleMs: c.staleUploadMs }, this.bucket, this.key, ours);
  }

  private tempKey(id: number): string {
    const key = `${this.key}${TEMP_MARK}${this.token}-${id}`;
    // Next to the file, so the same IAM grants cover it; a key at S3's length limit has no room.
    return Buffer.byteLength(key) <= MAX_KEY_BYTES ? key : `.s3gw-tmp/${this.token}-${id}`;
  }

  /** Resolves once the node's upload exists; throws when the handle is poisoned. */
  private async ready(st: NodeState): Promise<void> {
    await st.created;
    this.usable();
  }

  /**
   * A full (or, at commit, the last) segment: once its parts are stored, complete it, copy it
   * into its slot of the parent with one UploadPartCopy, and delete the temporary.
   */
  private finishSegment(node: LayoutNode): void {
    const st = this.states.get(node)!;
    const parent = this.states.get(node.parent!)!;
    const done = (async () => {
      try {
        await Promise.all(st.pending);
        await st.created;
        if (this.stopped()) return;
        const parts = st.parts.slice().sort((a, b) => a.PartNumber! - b.PartNumber!);
        await this.ctx.pool.send(this.bucket, () =>
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: st.key,
            UploadId: st.uploadId,
            MultipartUpload: { Parts: parts },
            ...(st.checksummed ? { ChecksumType: 'FULL_OBJECT' as const } : {}),
          }),
        );
        st.uploadId = undefined;
        st.stored = true;
        await parent.created;
        if (this.stopped()) return;
        const part = await this.copyPart(parent, node.slot, st.key, {
          first: 0,
          last: st.bytes - 1,
          etag: undefined,
          crc: nodeCrc(st),
        });
        if (this.stopped()) return;
        parent.parts.push(part);
        parent.bytes += st.bytes;
        parent.lengths.set(node.slot, st.bytes);
        await this.deleteTemp(st);
      } catch (err) {
        this.fail(this.partError(err, `segment ${node.id} (part ${node.slot} of its parent)`));
      }
    })();
    parent.pending.push(done);
    this.background.push(done);
  }

  private async deleteTemp(st: NodeState): Promise<void> {
    try {
      await this.ctx.pool.send(this.bucket, () => new DeleteObjectCommand({ Bucket: this.bucket, Key: st.key }));
      st.stored = false;
    } catch (err) {
      this.ctx.log.warn('could not delete a temporary segment', {
        path: escapePeer(this.label),
        error: escapePeer(toBackendError(err, 'delete', this.ctx.secrets).message, 400),
      });
    }
  }

  /**
   * Removes temporaries of this key left by crashed uploads (a live upload deletes each one
   * seconds after making it). Best effort, in the background, once per upload that uses segments.
   */
  private async sweepStale(): Promise<void> {
    try {
      const out = await this.ctx.pool.send(this.bucket, () =>
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.key + TEMP_MARK, MaxKeys: 1000 }),
      );
      const cutoff = Date.now() - STALE_MS;
      for (const o of out.Contents ?? []) {
        if (!o.Key || !o.LastModified || o.LastModified.getTime() >= cutoff) continue;
        await this.ctx.pool.send(this.bucket, () => new DeleteObjectCommand({ Bucket: this.bucket, Key: o.Key }));
        this.ctx.log.info('deleted a stale temporary segment', { path: escapePeer(`/${this.bucket}/${o.Key}`) });
      }
    } catch (err) {
      this.ctx.log.warn('could not sweep stale temporary segments', {
        path: escapePeer(this.label),
        error: escapePeer(toBackendError(err, 'list', this.ctx.secrets).message, 400),
      });
    }
  }

  /**
   * Bytes [first, last] of the object at `srcKey` become part `number` of `into`: an
   * UploadPartCopy, done by the store. A store that refuses copies into an upload with a checksum
   * algorithm (MinIO) gets the bytes streamed through instead: a ranged GET piped into an
   * UploadPart whose CRC32 the SDK computes, so the object still carries a verified checksum.
   * Memory stays at the stream's buffers; the cost is the traffic, once per such part.
   */
  private async copyPart(
    into: NodeState,
    number: number,
    srcKey: string,
    range: { first: number; last: number; etag: string | undefined; crc: number | undefined },
  ): Promise<CompletedPart> {
    const q = this.ctx.quirks;
    if (!(into.checksummed && q.copyRefused)) {
      try {
        const out = await this.withRetry(() =>
          this.ctx.pool.send(this.bucket, () =>
            new UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: into.key,
              UploadId: into.uploadId,
              PartNumber: number,
              CopySource: copySource(this.bucket, srcKey),
              CopySourceRange: `bytes=${range.first}-${range.last}`,
              ...(range.etag ? { CopySourceIfMatch: range.etag } : {}),
            }),
          ),
        );
        return { PartNumber: number, ETag: out.CopyPartResult?.ETag, ChecksumCRC32: out.CopyPartResult?.ChecksumCRC32 };
      } catch (err) {
        if (!into.checksummed || !isChecksumRefused(err)) throw err;
        if (!q.copyRefused) {
          q.copyRefused = true;
          this.ctx.log.info('the store refuses UploadPartCopy into checksummed uploads; such parts are streamed through');
        }
      }
    }
    const out = await this.withRetry(async () => {
      const got = await this.ctx.pool.send(this.bucket, () =>
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: srcKey,
          Range: `bytes=${range.first}-${range.last}`,
          ...(range.etag ? { IfMatch: range.etag } : {}),
        }),
      );
      const source = got.Body as Readable;
      try {
        if (range.crc !== undefined) {
          // The range's CRC32 is known (a segment's, combined from its parts' CRCs as S3 gave
          // them): it goes as a header and the body is a plain stream, so the request reads the
          // GET only as fast as it sends.
          return await this.ctx.pool.send(this.bucket, () =>
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: into.key,
              UploadId: into.uploadId,
              PartNumber: number,
              ContentLength: range.last - range.first + 1,
              Body: source,
              ChecksumCRC32: crc32Base64(range.crc!),
            }),
          );
        }
        // Unknown (a head over 5 GiB, or without a stored CRC): the SDK's trailer. Its hasher
        // consumes the body as fast as the source gives it, so this path buffers what the
        // upload cannot take yet; it serves only resumes of such heads on such stores.
        const body = coalesce();
        // pipeline, not pipe: an error on either side destroys both, so nothing waits forever.
        pipeline(source, body, () => {});
        return await this.ctx.pool.send(this.bucket, () =>
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: into.key,
            UploadId: into.uploadId,
            PartNumber: number,
            ContentLength: range.last - range.first + 1,
            Body: body,
            ...UploadChecksum.partParams(),
          }),
        );
      } finally {
        source.destroy();
      }
    });
    return { PartNumber: number, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32 };
  }

  /** The store refused additional checksums: later uploads to it go without (logged once). */
  private refuseChecksums(where: string): void {
    if (this.ctx.quirks.checksumRefused) return;
    this.ctx.quirks.checksumRefused = true;
    this.ctx.log.warn('the store refuses additional checksums; uploads to it store none', { request: where });
  }

  // ---- parts ----------------------------------------------------------------------------------

  /**
   * Seals the filling part and sends it (or lets its live request finish); returns once it is on
   * its way, not when it is stored. A part that is not the last one means more data follows: the
   * next part is placed and starts streaming at once.
   */
  private async seal(last: boolean): Promise<void> {
    const part = this.fill;
    part.place ??= this.place();
    await this.ready(part.place.state);
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
      part.place.state.pending.push(part.done);
    }
    if (!last) {
      const place = this.place();
      await this.ready(place.state);
      this.fill = { place, buf: new PartBuffer() };
      this.startLive(this.fill);
    }
  }

  /** Starts the live request of a part that has just begun to fill. */
  private startLive(part: Part): void {
    const { state, number } = part.place!;
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
            Key: state.key,
            UploadId: state.uploadId,
            PartNumber: number,
            ContentLength: this.ctx.partSize,
            Body: body,
            ...(state.checksummed ? UploadChecksum.partParams() : {}),
          });
        },
        abort.signal,
      )
      .then(
        (out) => ({ etag: out.ETag, crc: out.ChecksumCRC32 }),
        (error: unknown) => {
          body.destroy();
          return { error };
        },
      );
    part.live = { body, abort, result };
  }

  /** Gets a sealed part stored; never rejects: a failure is recorded and the upload aborted. */
  private async finish(part: Part): Promise<void> {
    const { state, number } = part.place!;
    try {
      let etag: string | undefined;
      let crc: string | undefined;
      const live = part.live;
      let retry = true;
      if (live && part.buf.length === this.ctx.partSize) {
        const r = await live.result;
        if ('etag' in r) {
          etag = r.etag;
          crc = r.crc;
          retry = false;
        } else if (this.stopped()) {
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
        if (this.stopped()) return;
        const out = await this.withRetry(() =>
          this.ctx.pool.send(this.bucket, () =>
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: state.key,
              UploadId: state.uploadId,
              PartNumber: number,
              ContentLength: part.buf.length,
              Body: part.buf.stream(),
              ...(state.checksummed ? UploadChecksum.partParams() : {}),
            }),
          ),
        );
        etag = out.ETag;
        crc = out.ChecksumCRC32;
      }
      if (this.stopped()) return;
      state.parts.push({ PartNumber: number, ETag: etag, ...(crc ? { ChecksumCRC32: crc } : {}) });
      state.bytes += part.buf.length;
      state.lengths.set(number, part.buf.length);
    } catch (err) {
      if (state.checksummed && isChecksumRefused(err)) this.refuseChecksums('UploadPart');
      this.fail(this.partError(err, `part ${number}${state.node.parent ? ` of segment ${state.node.id}` : ''}`));
    }
  }

  private partError(err: unknown, what: string): BackendError {
    const e = toBackendError(err, `upload ${this.label}`, this.ctx.secrets);
    return new BackendError(e.code === 'EACCES' ? 'EACCES' : 'EIO', `${e.message} (${what} failed; the upload was aborted)`, {
      cause: err,
    });
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

  /** Poisons the handle and aborts everything in the background. */
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
      if (this.existing) {
        // Opened to continue, and nothing written: the file stays as it is (only its mtime may change).
        this.fill.buf.release();
        this.state = 'committed';
        if (this.mtime !== undefined) await this.storeMtime();
        return;
      }
      const root = this.rootIfStarted();
      if (!root) {
        if (this.park) {
          this.state = 'parked'; // the part stays in its slabs until finishParked()
          return;
        }
        await this.putWhole();
      } else {
        await this.seal(true); // the last part, never empty (see the module comment)
        for (const n of this.layout!.openSegments()) this.finishSegment(n);
        await this.drain();
        await Promise.all(root.pending);
        if (this.failure) throw this.failure;
        if (this.park) {
          this.state = 'parked';
          return;
        }
        await this.complete(root);
      }
      this.state = 'committed';
    } catch (err) {
      return await this.commitFailed(err);
    } finally {
      if (this.state !== 'parked') this.fill.buf.release();
    }
    if (this.layout && this.mtime !== undefined && this.mtime !== this.mtimeAtCreate) await this.storeMtime();
  }

  /** A commit that failed: poison the handle, wait for the abort, and reject with the cause. */
  private async commitFailed(err: unknown): Promise<never> {
    const e = toBackendError(err, `upload ${this.label}`, this.ctx.secrets);
    this.fail(e);
    await this.abortPromise;
    throw this.failure ?? e;
  }

  /**
   * The mtime came after CreateMultipartUpload (FSETSTAT before CLOSE): store it now. The object
   * is in place already, so a failure here is logged rather than failing the upload.
   */
  private async storeMtime(): Promise<void> {
    try {
      await this.ctx.setObjectMtime(this.bucket, this.key, this.mtime!);
    } catch (err) {
      this.ctx.log.warn('could not store mtime after upload', {
        path: escapePeer(this.label),
        error: escapePeer(toBackendError(err, 'setstat', this.ctx.secrets).message, 400),
      });
    }
  }

  private async putWhole(key: string = this.key): Promise<void> {
    const fill = this.fill.buf;
    const sum = this.sum;
    let header = sum !== undefined && !this.ctx.quirks.checksumRefused;
    const send = (ifNoneMatch: boolean) =>
      this.withRetry(() =>
        this.ctx.pool.send(this.bucket, () => {
          // The checksum as a header where the store takes it (it checks the body against it),
          // otherwise as metadata.
          const metadata = {
            ...(this.mtime !== undefined ? { mtime: String(this.mtime) } : {}),
            ...(sum && !header ? sum.metadata() : {}),
          };
          return new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            ContentLength: fill.length,
            // An empty Buffer, not an empty stream: some stores refuse a chunked empty body.
            Body: fill.length === 0 ? Buffer.alloc(0) : fill.stream(),
            ...this.ctx.sse,
            ...(Object.keys(metadata).length > 0 ? { Metadata: metadata } : {}),
            ...(sum && header ? sum.putParams() : {}),
            ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
          });
        }),
      );
    try {
      await this.conditional(send);
      this.sweepDeadUploads(undefined);
    } catch (err) {
      if (!header || !isChecksumRefused(err)) throw err;
      this.refuseChecksums('PutObject');
      header = false;
      await this.conditional(send);
    }
  }

  private async complete(root: NodeState): Promise<void> {
    const parts = root.parts.slice().sort((a, b) => a.PartNumber! - b.PartNumber!);
    // Not a stream body: the SDK retries this request itself.
    const send = (ifNoneMatch: boolean) =>
      this.ctx.pool.send(this.bucket, () =>
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.key,
          UploadId: root.uploadId,
          MultipartUpload: { Parts: parts },
          ...(root.checksummed
            ? this.sumKnown && this.sum
              ? this.sum.completeParams()
              : { ChecksumType: 'FULL_OBJECT' as const }
            : {}),
          ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
        }),
      );
    await this.conditional(send);
    root.uploadId = undefined;
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
    // A live request of the filling part is cut short (S3 keeps nothing of a short body); sealed
    // parts, copies and segments land first: an abort that overtakes a request can leave a part.
    const live = this.fill.live;
    if (live) {
      live.abort.abort();
      await live.result;
    }
    for (const p of this.sent) p.live?.abort.abort();
    await this.drain();
    await Promise.all(this.background);
    await Promise.all([...this.states.values()].map((st) => st.created));
    this.fill.buf.release();
    for (const st of this.states.values()) {
      if (st.stored) await this.deleteTemp(st);
      const uploadId = st.uploadId;
      if (!uploadId) continue;
      st.uploadId = undefined;
      try {
        await this.ctx.pool.send(this.bucket, () =>
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: st.key, UploadId: uploadId }),
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
}
