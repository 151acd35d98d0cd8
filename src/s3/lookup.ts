/**
 * What a path names in S3: a file (with its HEAD), a directory (a prefix with keys under it), a
 * bucket, or nothing. HEAD answers 403 instead of 404 to a caller without s3:ListBucket, so a
 * denied HEAD is followed by the prefix check before anything is concluded.
 */
import { HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, type HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { BackendError } from '../backend.js';
import type { ClientPool } from './clients.js';
import { isAccessDenied, isNotFound, toBackendError } from './errors.js';
import { isPlausibleBucket, keyTooLong, MAX_KEY_BYTES } from './paths.js';

export type Found = { kind: 'file'; head: HeadObjectCommandOutput } | { kind: 'dir' } | { kind: 'none' };

export class Lookups {
  private readonly pool: ClientPool;
  private readonly secrets: readonly string[];
  /** Buckets seen to exist (or to be there but not listable): each is checked once per session. */
  private readonly knownBuckets = new Set<string>();

  constructor(pool: ClientPool, secrets: readonly string[]) {
    this.pool = pool;
    this.secrets = secrets;
  }

  private fail(err: unknown, action: string, path: string): BackendError {
    return toBackendError(err, `${action} ${path}`, this.secrets);
  }

  head(bucket: string, key: string): Promise<HeadObjectCommandOutput> {
    return this.pool.send(bucket, () => new HeadObjectCommand({ Bucket: bucket, Key: key }));
  }

  /** True when any key starts with "key/": an implied directory or a marker. */
  async dirExists(bucket: string, key: string): Promise<boolean> {
    const out = await this.pool.send(bucket, () =>
      new ListObjectsV2Command({ Bucket: bucket, Prefix: key + '/', MaxKeys: 1 }),
    );
    return (out.KeyCount ?? 0) > 0 || (out.Contents?.length ?? 0) > 0;
  }

  /**
   * What a key is: a file (with its HEAD), a directory, or nothing. HEAD answers 403 instead of
   * 404 to a caller without s3:ListBucket, so both lead to the prefix check; if that is denied
   * too, the first denial is the answer.
   */
  async lookup(
    bucket: string,
    key: string,
    path: string,
  ): Promise<Found> {
    if (keyTooLong(key)) {
      throw new BackendError('EINVAL', `${path}: name too long (S3 keys are limited to ${MAX_KEY_BYTES} bytes)`);
    }
    if (!isPlausibleBucket(bucket)) throw this.noBucket(path);
    let headErr: unknown;
    try {
      return { kind: 'file', head: await this.head(bucket, key) };
    } catch (err) {
      if (!isNotFound(err) && !isAccessDenied(err)) throw this.fail(err, 'stat', path);
      headErr = err;
    }
    try {
      return (await this.dirExists(bucket, key)) ? { kind: 'dir' } : { kind: 'none' };
    } catch (err) {
      // Both denied: report the HEAD's denial (it names the file, not the listing).
      throw this.fail(isAccessDenied(err) && isAccessDenied(headErr) ? headErr : err, 'stat', path);
    }
  }

  async bucketExists(bucket: string, path: string): Promise<boolean> {
    if (!isPlausibleBucket(bucket)) return false;
    if (this.knownBuckets.has(bucket)) return true;
    try {
      const out = await this.pool.send(bucket, () => new HeadBucketCommand({ Bucket: bucket }));
      if (out.BucketRegion) this.pool.learnRegion(bucket, out.BucketRegion);
    } catch (err) {
      if (isNotFound(err)) return false;
      // Denied: the bucket exists (AWS answers 404 for a bucket that does not) but this user may
      // not list it. It is still a directory they can cd into and use with their object rights.
      if (!isAccessDenied(err)) throw this.fail(err, 'stat', path);
    }
    this.knownBuckets.add(bucket);
    return true;
  }

  noBucket(path: string): BackendError {
    return new BackendError('ENOENT', `${path}: no such bucket`);
  }
}
