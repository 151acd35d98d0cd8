/**
 * The S3 backend: `Backend` for one authenticated user, over that user's S3 credentials.
 *
 * Namespace (docs/PROTOCOL.md has the client's view):
 *   "/"                 lists the buckets (ListBuckets; denied → an empty listing, not an error).
 *   "/bucket"           is a directory when HeadBucket succeeds *or is denied*: a user may hold
 *                       object rights in a bucket without s3:ListBucket, or without
 *                       s3:ListAllMyBuckets may not see it listed, so `cd` into any bucket by name
 *                       works, listed or not, and only a bucket that does not exist is ENOENT.
 *   "/bucket/a/b/file"  is key "a/b/file". A directory is a common prefix ("a/b/") or a "dir/"
 *                       marker object; mkdir creates the marker, rmdir removes only an empty one.
 *
 * What S3 cannot do is refused with ENOTSUP and says why: renaming a directory or a bucket,
 * deleting a bucket, creating a bucket. Every S3 error is classified in errors.ts.
 *
 * Known limits, by design: a file "a" and a directory "a/" can both exist in S3; stat then
 * reports the file, and a listing shows both. Listings report LastModified as mtime (ListObjectsV2
 * carries no metadata); stat reports the stored x-amz-meta-mtime. Writes do not check that the
 * parent directory exists: S3 directories are implied by their keys.
 */
import {
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import {
  BackendError,
  type Backend,
  type DirEntry,
  type FileAttrs,
  type FsStats,
  type ReadHandle,
  type WriteHandle,
  type WriteOptions,
} from '../backend.js';
import type { Logger } from '../log.js';
import { escapePeer } from '../log.js';
import { lookupChecksum, storedChecksum } from './checksum.js';
import { ClientPool } from './clients.js';
import { copyObject, MAX_COPY, type CopyContext } from './copy.js';
import { S3ReadHandle, type ReadContext } from './download.js';
import {
  isAccessDenied,
  isNotFound,
  isNotImplemented,
  isPreconditionFailed,
  toBackendError,
} from './errors.js';
import { dirAttrs, fileAttrs, listBuckets, listDirectory, seconds } from './list.js';
import { checkNewKey, dirPrefix, isPlausibleBucket, keyTooLong, MAX_KEY_BYTES, parsePath } from './paths.js';
import { Lookups } from './lookup.js';
import { resolveOptions, type ResolvedOptions, type S3BackendOptions } from './options.js';
import { sseForCopy, sseParams, type SseParams } from './sse.js';
import { Layout } from './layout.js';
import { filepartTarget, Parking, type Parked } from './filepart.js';
import { S3WriteHandle, storeQuirks, type Existing, type UploadContext } from './upload.js';

/** The Backend plus what the session that owns it needs. */
export interface S3Backend extends Backend {
  /**
   * Ends the session's use of S3: aborts uploads still open (a client that vanished mid-upload
   * leaves nothing behind), then closes the user's connections. The backend is unusable afterwards.
   */
  close(): Promise<void>;
  /** The region cached for a bucket, if one was discovered or listed. */
  bucketRegion(bucket: string): string | undefined;
}

export type { S3BackendOptions } from './options.js';

export function createS3Backend(opts: S3BackendOptions): S3Backend {
  return new S3BackendImpl(opts);
}

/**
 * One per logged-in session, and most sessions sit idle: what only reads, writes or copies need
 * (their contexts, the set of open uploads, the S3 clients in the pool) is made on first use.
 */
class S3BackendImpl implements S3Backend {
  private readonly pool: ClientPool;
  private readonly log: Logger;
  private readonly secrets: readonly string[];
  private readonly sse: SseParams;
  private readonly o: ResolvedOptions;
  private uploadCtx: UploadContext | undefined;
  private readCtx: ReadContext | undefined;
  private copyCtx: CopyContext | undefined;
  private readonly find: Lookups;
  private readonly endpoint: string;
  private readonly parkFileparts: boolean;
  /** Closed `name.filepart` uploads waiting for their rename (filepart.ts). */
  private parkingLot: Parking | undefined;
  /** Uploads neither committed nor aborted yet; close() aborts them. */
  private uploads: Set<WriteHandle> | undefined;

  constructor(opts: S3BackendOptions) {
    const o = resolveOptions(opts);
    this.o = o;
    this.log = opts.log;
    const token = opts.credentials.sessionToken;
    this.secrets = token ? [opts.credentials.secretAccessKey, token] : [opts.credentials.secretAccessKey];
    this.sse = sseParams(opts.sse);
    this.pool = new ClientPool({
      credentials: opts.credentials,
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      checksums: o.checksums,
      log: opts.log,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.clientFactory ? { clientFactory: opts.clientFactory } : {}),
      onRequest: opts.onRequest,
    });
    this.find = new Lookups(this.pool, this.secrets);
    this.endpoint = opts.endpoint ?? '';
    this.parkFileparts = opts.parkFileparts === true;
  }

  private get upload(): UploadContext {
    const o = this.o;
    return (this.uploadCtx ??= {
      pool: this.pool,
      log: this.log,
      secrets: this.secrets,
      sse: this.sse,
      partSize: o.partSize,
      budget: o.uploadBudget,
      maxParts: o.maxParts,
      maxObjectSize: o.maxObjectSize,
      partialUploads: o.partialUploads,
      checksum: o.uploadChecksum,
      quirks: storeQuirks(this.endpoint),
      setObjectMtime: (bucket, key, mtime) => this.setObjectMtime(bucket, key, mtime),
      objectExists: (bucket, key) => this.objectExists(bucket, key),
      staleUploadMs: o.staleUploadMs,
    });
  }

  private get read(): ReadContext {
    const o = this.o;
    return (this.readCtx ??= { pool: this.pool, secrets: this.secrets, readAhead: o.readAhead, maxWindow: o.readWindow });
  }

  private get copy(): CopyContext {
    const o = this.o;
    return (this.copyCtx ??= {
      pool: this.pool,
      copyThreshold: o.copyThreshold,
      copyPartSize: o.copyPartSize,
      maxParts: o.maxParts,
    });
  }

  private get parking(): Parking {
    return (this.parkingLot ??= new Parking({
      log: this.log,
      // Classified and scrubbed of secrets, since Parking logs what fails.
      materialize: (p) =>
        this.materialize(p).catch((err: unknown) => {
          throw this.fail(err, 'store', p.path);
        }),
    }));
  }

  /** Materializes parked uploads before an operation that could see them (all but `path`'s). */
  private async settle(path?: string): Promise<void> {
    if (this.parkingLot && this.parkingLot.size > 0) await this.parkingLot.settle(path);
  }

  async close(): Promise<void> {
    await this.settle();
    if (this.uploads) await Promise.all([...this.uploads].map((h) => h.abort().catch(() => {})));
    this.pool.close();
  }

  bucketRegion(bucket: string): string | undefined {
    return this.pool.cachedRegion(bucket);
  }

  private fail(err: unknown, action: string, path: string): BackendError {
    return toBackendError(err, `${action} ${path}`, this.secrets);
  }

  private attrsOf(head: HeadObjectCommandOutput): FileAttrs {
    return fileAttrs(head.ContentLength ?? 0, storedMtime(head) ?? seconds(head.LastModified));
  }

  // ---- Backend -------------------------------------------------------------------------------

  async stat(path: string): Promise<FileAttrs> {
    const parked = this.parkingLot?.at(path);
    if (parked) return parked.attrs;
    await this.settle(path);
    const p = parsePath(path);
    if (p.kind === 'root') return dirAttrs();
    if (p.kind === 'bucket') {
      if (!(await this.find.bucketExists(p.bucket, path))) throw this.find.noBucket(path);
      return dirAttrs();
    }
    const found = await this.find.lookup(p.bucket, p.key, path);
    if (found.kind === 'file') return this.attrsOf(found.head);
    if (found.kind === 'dir') return dirAttrs();
    throw new BackendError('ENOENT', `${path}: no such file or directory`);
  }

  list(path: string): AsyncIterable<DirEntry[]> {
    if (this.parkingLot && this.parkingLot.size > 0) {
      // A parked upload shows in its directory's listing as what it will be once materialized.
      const settle = () => this.settle();
      const self = this;
      return (async function* () {
        await settle();
        yield* self.list(path);
      })();
    }
    try {
      return this.listing(path);
    } catch (err) {
      return failing(this.fail(err, 'list', path));
    }
  }

  private listing(path: string): AsyncIterable<DirEntry[]> {
    const p = parsePath(path);
    if (p.kind === 'root') return listBuckets(this.pool, this.secrets);
    const key = p.kind === 'object' ? p.key : undefined;
    if (key !== undefined && keyTooLong(key)) {
      return failing(new BackendError('EINVAL', `${path}: name too long`));
    }
    if (!isPlausibleBucket(p.bucket)) return failing(this.find.noBucket(path));
    const whenMissing = async (): Promise<never> => {
      // An empty page for "a/": "a" is a file, or nothing.
      let isFile = false;
      try {
        await this.find.head(p.bucket, key!);
        isFile = true;
      } catch {
        // absent or unreadable: either way not a directory we can list
      }
      throw isFile
        ? new BackendError('ENOTDIR', `${path}: not a directory`)
        : new BackendError('ENOENT', `${path}: no such directory`);
    };
    return listDirectory(this.pool, this.secrets, p.bucket, dirPrefix(key), path, whenMissing);
  }

  async openRead(path: string): Promise<ReadHandle> {
    await this.settle();
    const { bucket, key } = this.objectPath(path, 'EISDIR', 'is a directory');
    const found = await this.find.lookup(bucket, key, path);
    if (found.kind === 'dir') throw new BackendError('EISDIR', `${path}: is a directory`);
    if (found.kind === 'none') throw new BackendError('ENOENT', `${path}: no such file`);
    return new S3ReadHandle(this.read, bucket, key, found.head.ContentLength ?? 0, found.head.ETag);
  }

  async openWrite(path: string, options: WriteOptions): Promise<WriteHandle> {
    await this.settle();
    const { bucket, key } = this.objectPath(path, 'EISDIR', 'is a directory');
    checkNewKey(key);
    const mode = options.exclusive ? 'replace' : (options.mode ?? 'replace');
    const ctx = uploadContextFor(this.upload, options.expectedSize);
    const size = options.expectedSize;
    if (size !== undefined) {
      const reach = new Layout({ partSize: ctx.partSize, maxParts: ctx.maxParts, capacity: ctx.maxObjectSize }).reach;
      if (size > reach) {
        throw new BackendError(
          'EINVAL',
          `${path}: file too large: ${size} bytes is more than this gateway stores in one object (${reach} bytes)`,
        );
      }
    }
    if (!(await this.find.bucketExists(bucket, path))) throw this.find.noBucket(path);
    if (options.exclusive) {
      try {
        await this.find.head(bucket, key);
        throw new BackendError('EEXIST', `${path}: file exists`);
      } catch (err) {
        // Not found, or not allowed to look: If-None-Match at commit still guards the create.
        if (err instanceof BackendError) throw err;
        if (!isNotFound(err) && !isAccessDenied(err)) throw this.fail(err, 'open', path);
      }
    }
    let existing: Existing | undefined;
    if (mode !== 'replace') {
      try {
        // With its checksum: a resumed upload's CRC32 is the old one combined with the new bytes'.
        const head = await this.pool.send(bucket, () => new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' }));
        const crc = storedChecksum(head);
        existing = { size: head.ContentLength ?? 0, etag: head.ETag, ...(crc ? { crc32: crc.value.readUInt32BE(0) } : {}) };
      } catch (err) {
        // Absent, or not readable (then it cannot be continued either): the upload starts at 0.
        if (!isNotFound(err) && !isAccessDenied(err)) throw this.fail(err, 'open', path);
      }
    }
    // WinSCP's `name.filepart`, for a `name` that does not exist yet: uploaded at `name` and
    // parked at CLOSE, so the RENAME that follows costs no copy (filepart.ts).
    const finalKey = this.parkFileparts && mode === 'replace' && !options.exclusive ? filepartTarget(key) : undefined;
    const park =
      finalKey !== undefined && !(await this.objectExists(bucket, finalKey)) && !(await this.objectExists(bucket, key));
    const h = new S3WriteHandle(ctx, {
      bucket,
      key: park ? finalKey : key,
      ...(park ? { park: true } : {}),
      exclusive: options.exclusive,
      mtime: options.mtime,
      mode,
      ...(existing ? { existing } : {}),
      ...(size !== undefined ? { expectedSize: size } : {}),
    });
    const parkedAs = (): Omit<Parked, 'attrs' | 'timer'> => ({
      path,
      finalPath: `/${bucket}/${finalKey}`,
      bucket,
      key,
      finalKey: finalKey!,
      handle: h,
    });
    const uploads = (this.uploads ??= new Set());
    uploads.add(h);
    const done = () => void uploads.delete(h);
    // The same handle, but leaving the open set once it is committed or aborted.
    return {
      get bytesWritten() {
        return h.bytesWritten;
      },
      get size() {
        return h.size;
      },
      commitPartial: async () => {
        try {
          const kept = await h.commitPartial();
          if (kept && park) await this.materialize(parkedAs());
          return kept;
        } finally {
          done();
        }
      },
      write: (offset, data) => h.write(offset, data),
      setMtime: (mtime) => h.setMtime(mtime),
      commit: () =>
        h
          .commit()
          .then(() => {
            if (!park) return;
            this.parking.park(parkedAs());
            if (this.log.debugEnabled) this.log.debug('filepart parked', { path: escapePeer(path) });
          })
          .finally(done),
      abort: () => h.abort().finally(done),
    };
  }

  async mkdir(path: string): Promise<void> {
    await this.settle();
    const p = parsePath(path);
    if (p.kind === 'root') throw new BackendError('EEXIST', '/: exists');
    if (p.kind === 'bucket') {
      if (await this.find.bucketExists(p.bucket, path)) throw new BackendError('EEXIST', `${path}: bucket exists`);
      throw new BackendError('ENOTSUP', `${path}: creating a bucket is not supported; create it with your S3 tools`);
    }
    checkNewKey(p.key, true);
    const found = await this.find.lookup(p.bucket, p.key, path);
    if (found.kind !== 'none') throw new BackendError('EEXIST', `${path}: exists`);
    const put = (ifNoneMatch: boolean) =>
      this.pool.send(p.bucket, () =>
        new PutObjectCommand({
          Bucket: p.bucket,
          Key: p.key + '/',
          Body: Buffer.alloc(0),
          ContentLength: 0,
          ...this.sse,
          ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
        }),
      );
    try {
      await put(true).catch((err: unknown) => {
        if (isNotImplemented(err)) return put(false);
        throw err;
      });
    } catch (err) {
      if (isPreconditionFailed(err)) throw new BackendError('EEXIST', `${path}: exists`);
      throw this.fail(err, 'mkdir', path);
    }
  }

  async rmdir(path: string): Promise<void> {
    await this.settle();
    const p = parsePath(path);
    if (p.kind === 'root') throw new BackendError('ENOTSUP', '/: the root cannot be removed');
    if (p.kind === 'bucket') {
      throw new BackendError('ENOTSUP', `${path}: deleting a bucket is not supported; delete it with your S3 tools`);
    }
    const marker = p.key + '/';
    try {
      // Without a delimiter the marker, if any, is the first key under the prefix.
      const out = await this.pool.send(p.bucket, () =>
        new ListObjectsV2Command({ Bucket: p.bucket, Prefix: marker, MaxKeys: 2 }),
      );
      const keys = (out.Contents ?? []).map((c) => c.Key);
      if (keys.length === 0) {
        const found = await this.find.lookup(p.bucket, p.key, path);
        throw found.kind === 'file'
          ? new BackendError('ENOTDIR', `${path}: not a directory`)
          : new BackendError('ENOENT', `${path}: no such directory`);
      }
      if (keys.length > 1 || keys[0] !== marker) {
        throw new BackendError('ENOTEMPTY', `${path}: directory not empty`);
      }
      await this.pool.send(p.bucket, () => new DeleteObjectCommand({ Bucket: p.bucket, Key: marker }));
    } catch (err) {
      throw this.fail(err, 'rmdir', path);
    }
  }

  async remove(path: string): Promise<void> {
    const parked = this.parkingLot?.take(path);
    if (parked) {
      // The client discards its `.filepart`: nothing was stored under that name.
      await parked.handle.abort();
      return;
    }
    await this.settle(path);
    const p = parsePath(path);
    if (p.kind === 'root') throw new BackendError('ENOTSUP', '/: the root cannot be removed');
    if (p.kind === 'bucket') {
      throw new BackendError('ENOTSUP', `${path}: deleting a bucket is not supported; delete it with your S3 tools`);
    }
    try {
      await this.find.head(p.bucket, p.key);
    } catch (err) {
      if (isNotFound(err)) {
        const found = await this.find.lookup(p.bucket, p.key, path);
        if (found.kind === 'dir') throw new BackendError('EISDIR', `${path}: is a directory (use rmdir)`);
        if (found.kind === 'none') throw new BackendError('ENOENT', `${path}: no such file`);
      } else if (!isAccessDenied(err)) {
        throw this.fail(err, 'remove', path);
      }
      // Denied HEAD: the user may still hold s3:DeleteObject, so let the delete decide.
    }
    try {
      await this.pool.send(p.bucket, () => new DeleteObjectCommand({ Bucket: p.bucket, Key: p.key }));
    } catch (err) {
      throw this.fail(err, 'remove', path);
    }
  }

  async rename(from: string, to: string, overwrite: boolean): Promise<void> {
    const parked = this.parkingLot?.at(from);
    if (parked && parked.finalPath === to) return this.renameParked(this.parkingLot!.take(from)!, overwrite);
    await this.settle();
    const src = parsePath(from);
    const dst = parsePath(to);
    if (src.kind === 'root') throw new BackendError('ENOTSUP', '/: the root cannot be renamed');
    if (src.kind === 'bucket') {
      throw new BackendError('ENOTSUP', `${from}: renaming a bucket is not supported: S3 cannot rename buckets`);
    }
    if (dst.kind !== 'object') {
      throw new BackendError('ENOTSUP', `${to}: a file cannot take the place of a bucket or the root`);
    }
    checkNewKey(dst.key);
    const found = await this.find.lookup(src.bucket, src.key, from);
    if (found.kind === 'dir') {
      throw new BackendError(
        'ENOTSUP',
        `${from}: renaming a directory is not supported: S3 has no directories, so it would mean copying ` +
          'and deleting every object under it, one by one and not atomically',
      );
    }
    if (found.kind === 'none') throw new BackendError('ENOENT', `${from}: no such file`);
    if (src.bucket === dst.bucket && src.key === dst.key) return;

    const target = await this.find.lookup(dst.bucket, dst.key, to).catch((err: unknown) => {
      // Denied: we cannot tell what is there; the copy itself will be allowed or not.
      if (err instanceof BackendError && err.code === 'EACCES') return { kind: 'unknown' as const };
      throw err;
    });
    if (target.kind === 'dir') throw new BackendError('EISDIR', `${to}: is a directory`);
    if (target.kind === 'file' && !overwrite) throw new BackendError('EEXIST', `${to}: file exists`);

    try {
      await copyObject(this.copy, {
        srcBucket: src.bucket,
        srcKey: src.key,
        head: found.head,
        dstBucket: dst.bucket,
        dstKey: dst.key,
        sse: sseForCopy(found.head, this.sse),
      });
    } catch (err) {
      throw this.fail(err, 'rename', from);
    }
    try {
      await this.pool.send(src.bucket, () => new DeleteObjectCommand({ Bucket: src.bucket, Key: src.key }));
    } catch (err) {
      const e = this.fail(err, 'rename', from);
      if (target.kind === 'none') {
        // Undo the copy so the rename fails as a whole; the target did not exist before.
        await this.pool
          .send(dst.bucket, () => new DeleteObjectCommand({ Bucket: dst.bucket, Key: dst.key }))
          .catch(() => {});
        throw new BackendError(e.code, `${e.message} (the source could not be deleted; the rename was undone)`, {
          cause: err,
        });
      }
      throw new BackendError(e.code, `${e.message} (copied to ${to} but the source could not be deleted)`, {
        cause: err,
      });
    }
  }

  async setstat(path: string, attrs: Partial<FileAttrs>): Promise<void> {
    await this.settle();
    const p = parsePath(path);
    if (p.kind !== 'object') {
      await this.stat(path); // must exist; nothing of a bucket or the root can be set
      return;
    }
    const found = await this.find.lookup(p.bucket, p.key, path);
    if (found.kind === 'none') throw new BackendError('ENOENT', `${path}: no such file or directory`);
    // Only a file's mtime can be stored. Mode, owner, atime and size are accepted without effect,
    // so clients that set them after an upload (WinSCP, FileZilla, scp -p) do not fail.
    if (found.kind !== 'file' || attrs.mtime === undefined) return;
    const mtime = Math.floor(attrs.mtime);
    if (storedMtime(found.head) === mtime) return;
    try {
      await this.writeMtime(p.bucket, p.key, found.head, mtime);
    } catch (err) {
      throw this.fail(err, 'setstat', path);
    }
  }

  async statfs(path: string): Promise<FsStats> {
    parsePath(path);
    // S3 has no capacity or free space to report. Clients only need numbers that do not stop an
    // upload ("df" shows them), so we report 1 PiB free of 1 PiB in 4 KiB blocks, 2^40 free
    // inodes, and S3's key limit as the longest name.
    const blocks = 2 ** 38;
    return {
      blockSize: 4096,
      blocks,
      freeBlocks: blocks,
      files: 2 ** 40,
      freeFiles: 2 ** 40,
      nameMax: MAX_KEY_BYTES,
    };
  }

  /** The whole-file CRC32 stored with a file (SFTP check-file); the logic is in checksum.ts. */
  async checksum(path: string) {
    await this.settle();
    return lookupChecksum({ pool: this.pool, find: this.find, secrets: this.secrets }, path);
  }

  // ---- WinSCP's .filepart (filepart.ts) ----------------------------------------------------------

  /** RENAME name.filepart → name of a parked upload: finish it where it already is. */
  private async renameParked(p: Parked, overwrite: boolean): Promise<void> {
    const target = await this.find.lookup(p.bucket, p.finalKey, p.finalPath).catch((err: unknown) => {
      if (err instanceof BackendError && err.code === 'EACCES') return { kind: 'unknown' as const };
      throw err;
    });
    if (target.kind === 'dir' || (target.kind === 'file' && !overwrite)) {
      await this.materialize(p);
      throw target.kind === 'dir'
        ? new BackendError('EISDIR', `${p.finalPath}: is a directory`)
        : new BackendError('EEXIST', `${p.finalPath}: file exists`);
    }
    // If-None-Match unless the client asked to overwrite what is there.
    await p.handle.finishParked(p.finalKey, !(overwrite && target.kind === 'file'));
    if (this.log.debugEnabled) this.log.debug('filepart renamed without a copy', { path: escapePeer(p.finalPath) });
  }

  /** A parked upload becomes `name.filepart` after all (see filepart.ts). */
  private async materialize(p: Omit<Parked, 'attrs' | 'timer'>): Promise<void> {
    if (!p.handle.isMultipart) {
      await p.handle.finishParked(p.key, true);
      return;
    }
    await p.handle.finishParked(p.finalKey, true);
    const head = await this.find.head(p.bucket, p.finalKey);
    await copyObject(this.copy, {
      srcBucket: p.bucket,
      srcKey: p.finalKey,
      head,
      dstBucket: p.bucket,
      dstKey: p.key,
      sse: sseForCopy(head, this.sse),
    });
    await this.pool.send(p.bucket, () => new DeleteObjectCommand({ Bucket: p.bucket, Key: p.finalKey }));
  }

  // ---- helpers -------------------------------------------------------------------------------

  private objectPath(path: string, code: 'EISDIR', why: string): { bucket: string; key: string } {
    const p = parsePath(path);
    if (p.kind !== 'object') throw new BackendError(code, `${path}: ${why}`);
    if (!isPlausibleBucket(p.bucket)) throw this.find.noBucket(path);
    return p;
  }

  private async objectExists(bucket: string, key: string): Promise<boolean> {
    try {
      await this.find.head(bucket, key);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      if (isAccessDenied(err)) return true;
      throw err;
    }
  }

  private async setObjectMtime(bucket: string, key: string, mtime: number): Promise<void> {
    const head = await this.find.head(bucket, key);
    if (storedMtime(head) !== mtime) await this.writeMtime(bucket, key, head, mtime);
  }

  /** Copies an object onto itself with x-amz-meta-mtime replaced, keeping its SSE and headers. */
  private writeMtime(bucket: string, key: string, head: HeadObjectCommandOutput, mtime: number): Promise<void> {
    if (this.log.debugEnabled) this.log.debug('set mtime', { bucket: escapePeer(bucket), mtime });
    return copyObject(this.copy, {
      srcBucket: bucket,
      srcKey: key,
      head,
      dstBucket: bucket,
      dstKey: key,
      metadata: { ...(head.Metadata ?? {}), mtime: String(mtime) },
      sse: sseForCopy(head, this.sse),
    });
  }
}

/** x-amz-meta-mtime in whole seconds (rclone and others write fractional seconds). */
function storedMtime(head: HeadObjectCommandOutput): number | undefined {
  const raw = head.Metadata?.['mtime'];
  if (raw === undefined) return undefined;
  const n = Number.parseFloat(raw);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
}

/** An async iterable that fails on its first step (list() itself returns synchronously). */
function failing(err: BackendError): AsyncIterable<DirEntry[]> {
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => Promise.reject(err),
    }),
  };
}

/**
 * The upload context for a file whose size may be known in advance (SCP's C line). When the
 * configured part size would need more than `maxParts` parts, bigger parts (whole MiB) are used if
 * they still fit the upload's memory budget (in the configured 1.2 ratio); otherwise the parts
 * stay as configured and the layout adds segments (layout.ts), planned for exactly this size.
 */
function uploadContextFor(base: UploadContext, expectedSize: number | undefined): UploadContext {
  if (expectedSize === undefined || expectedSize <= base.partSize * base.maxParts) return base;
  const MiB = 1024 * 1024;
  const partSize = Math.ceil(expectedSize / base.maxParts / MiB) * MiB;
  if (partSize > MAX_COPY || Math.ceil(partSize * 1.2) > base.budget) return base;
  return { ...base, partSize };
}
