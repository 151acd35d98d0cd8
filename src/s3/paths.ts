/**
 * Path ↔ bucket and key. Paths arrive normalised from the protocol layer ("/bucket/a/b/file");
 * we still check that they are, because a path that slipped through un-normalised could name a
 * key other than the one the client sees ("a/../b" is a legal S3 key, not "b").
 *
 *   "/"                → the root: the list of buckets
 *   "/bucket"          → a bucket: a directory
 *   "/bucket/a/b/file" → key "a/b/file" in bucket "bucket"; as a directory, prefix "a/b/file/"
 */
import { BackendError } from '../backend.js';

/** S3's limit on a key, in bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;

export type S3Path =
  | { kind: 'root' }
  | { kind: 'bucket'; bucket: string }
  | { kind: 'object'; bucket: string; key: string };

/**
 * Bucket names as S3 has ever allowed them: today's rule is 3–63 of [a-z0-9.-], but buckets made
 * in us-east-1 before 2018 may have capitals and underscores and run to 255 characters.
 */
const BUCKET_NAME = /^[A-Za-z0-9._-]{1,255}$/;

// C0 controls and DEL: S3 stores them, but XML 1.0 listings cannot carry most of them and a
// newline in a name is how log and listing forgery starts. We refuse to create such names.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

// With the u flag, paired surrogates form one code point, so \p{Cs} matches only lone ones.
const LONE_SURROGATE = /\p{Cs}/u;

/** Parses and checks a path; throws EINVAL for a path the protocol layer should never send. */
export function parsePath(path: string): S3Path {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new BackendError('EINVAL', `not an absolute path: ${JSON.stringify(String(path)).slice(0, 80)}`);
  }
  if (path.includes('\0')) throw new BackendError('EINVAL', 'a path may not contain NUL');
  if (path === '/') return { kind: 'root' };
  const segments = path.slice(1).split('/');
  for (const s of segments) {
    if (s === '' || s === '.' || s === '..') {
      throw new BackendError('EINVAL', `path is not normalised (empty, "." or ".." segment): ${path.slice(0, 200)}`);
    }
  }
  // A lone surrogate would be replaced by U+FFFD on the way to UTF-8, silently naming another key.
  if (LONE_SURROGATE.test(path)) throw new BackendError('EINVAL', 'path is not valid Unicode');
  const bucket = segments[0]!;
  if (segments.length === 1) return { kind: 'bucket', bucket };
  return { kind: 'object', bucket, key: segments.slice(1).join('/') };
}

/** True when `name` could be a bucket; anything else cannot exist, so lookups say ENOENT. */
export function isPlausibleBucket(name: string): boolean {
  return BUCKET_NAME.test(name);
}

/**
 * Checks a key we are about to create (a file, a directory marker, a rename target): S3's 1024-byte
 * limit, and no control characters. `dirMarker` adds the trailing "/" of a directory marker.
 */
export function checkNewKey(key: string, dirMarker = false): void {
  const bytes = Buffer.byteLength(key, 'utf8') + (dirMarker ? 1 : 0);
  if (bytes > MAX_KEY_BYTES) {
    throw new BackendError(
      'EINVAL',
      `name too long: S3 keys are limited to ${MAX_KEY_BYTES} bytes of UTF-8 and this one would be ${bytes}`,
    );
  }
  if (CONTROL.test(key)) {
    throw new BackendError('EINVAL', 'names with control characters cannot be stored (S3 listings cannot carry them)');
  }
}

/** True when a lookup of this key can only fail (too long to exist in S3). */
export function keyTooLong(key: string): boolean {
  return Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES;
}

/** The listing prefix of a directory: "" for a bucket's top level, "a/b/" for "/bucket/a/b". */
export function dirPrefix(key: string | undefined): string {
  return key === undefined || key === '' ? '' : key + '/';
}

/** Encodes a copy source for x-amz-copy-source: "bucket/key", URL-encoded but keeping the slashes. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
