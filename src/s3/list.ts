/**
 * Directory listings: ListBuckets for "/", ListObjectsV2 pages for everything else.
 *
 * A directory's entries are the CommonPrefixes (subdirectories) and Contents (files) of one
 * ListObjectsV2 page with delimiter "/", 1000 keys at a time. The next page is requested while the
 * consumer handles the current one, and no further: memory holds at most two pages whatever the
 * directory's size, and the first names reach the client after one round trip.
 *
 * Keys are requested with encoding-type=url, so a key with characters XML 1.0 cannot carry still
 * lists, and decoded here. A key's own "dir/" marker is not an entry of itself. Names that no
 * normalised path can reach ("", ".", "..", from keys such as "a//b" or "a/./b") are left out.
 */
import { ListBucketsCommand, ListObjectsV2Command, type ListObjectsV2CommandOutput } from '@aws-sdk/client-s3';
import { S_IFDIR, S_IFREG, type DirEntry, type FileAttrs } from '../backend.js';
import type { ClientPool } from './clients.js';
import { isAccessDenied, toBackendError } from './errors.js';

export const DIR_MODE = S_IFDIR | 0o755;
export const FILE_MODE = S_IFREG | 0o644;

export function dirAttrs(mtime = 0): FileAttrs {
  return { mode: DIR_MODE, size: 0, mtime, atime: mtime };
}

export function fileAttrs(size: number, mtime: number): FileAttrs {
  return { mode: FILE_MODE, size, mtime, atime: mtime };
}

export function seconds(d: Date | undefined): number {
  return d ? Math.floor(d.getTime() / 1000) : 0;
}

const PAGE = 1000;

export async function* listBuckets(pool: ClientPool, secrets: readonly string[]): AsyncGenerator<DirEntry[]> {
  let token: string | undefined;
  do {
    let out;
    try {
      out = await pool.send(undefined, () => new ListBucketsCommand(token ? { ContinuationToken: token } : {}));
    } catch (err) {
      // A user without s3:ListAllMyBuckets still works in the buckets they know by name.
      if (isAccessDenied(err)) return;
      throw toBackendError(err, 'list /', secrets);
    }
    const entries: DirEntry[] = [];
    for (const b of out.Buckets ?? []) {
      if (!b.Name) continue;
      if (b.BucketRegion) pool.learnRegion(b.Name, b.BucketRegion);
      entries.push({ name: b.Name, attrs: dirAttrs(seconds(b.CreationDate)) });
    }
    if (entries.length) yield entries;
    token = out.ContinuationToken;
  } while (token);
}

function decoder(out: ListObjectsV2CommandOutput): (s: string) => string | undefined {
  if (out.EncodingType !== 'url') return (s) => s;
  return (s) => {
    try {
      return decodeURIComponent(s.replace(/\+/g, ' '));
    } catch {
      return undefined; // malformed escape from the store: not a name we can show
    }
  };
}

function reachable(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/');
}

/** One page of a directory listing, as entries. `empty` is true when the page had no keys at all. */
export function pageEntries(out: ListObjectsV2CommandOutput, prefix: string): DirEntry[] {
  const decode = decoder(out);
  const entries: DirEntry[] = [];
  for (const cp of out.CommonPrefixes ?? []) {
    const p = cp.Prefix === undefined ? undefined : decode(cp.Prefix);
    if (p === undefined || !p.startsWith(prefix) || !p.endsWith('/')) continue;
    const name = p.slice(prefix.length, -1);
    if (reachable(name)) entries.push({ name, attrs: dirAttrs() });
  }
  for (const obj of out.Contents ?? []) {
    const key = obj.Key === undefined ? undefined : decode(obj.Key);
    if (key === undefined || key === prefix || !key.startsWith(prefix)) continue;
    const name = key.slice(prefix.length);
    if (reachable(name)) entries.push({ name, attrs: fileAttrs(obj.Size ?? 0, seconds(obj.LastModified)) });
  }
  return entries;
}

/**
 * Lists the directory `prefix` ("" for the bucket's top level, else "a/b/"). `whenMissing` runs
 * when the first page has no keys at all and must throw (ENOENT, or ENOTDIR for a file); it is
 * not called for a bucket's top level, where an empty listing is an empty bucket.
 */
export async function* listDirectory(
  pool: ClientPool,
  secrets: readonly string[],
  bucket: string,
  prefix: string,
  label: string,
  whenMissing: () => Promise<never>,
): AsyncGenerator<DirEntry[]> {
  const fetch = (token: string | undefined) =>
    pool.send(bucket, () =>
      new ListObjectsV2Command({
        Bucket: bucket,
        Delimiter: '/',
        MaxKeys: PAGE,
        EncodingType: 'url',
        ...(prefix ? { Prefix: prefix } : {}),
        ...(token ? { ContinuationToken: token } : {}),
      }),
    );
  let pending = fetch(undefined);
  let first = true;
  for (;;) {
    let out: ListObjectsV2CommandOutput;
    try {
      out = await pending;
    } catch (err) {
      throw toBackendError(err, `list ${label}`, secrets);
    }
    const token = out.IsTruncated ? out.NextContinuationToken : undefined;
    let next: Promise<ListObjectsV2CommandOutput> | undefined;
    if (token) {
      next = fetch(token);
      // The consumer may stop early (closes the directory); the prefetched page is then dropped.
      next.catch(() => {});
    }
    if (first && prefix !== '' && !token && (out.KeyCount ?? 0) === 0 && !out.Contents?.length && !out.CommonPrefixes?.length) {
      await whenMissing();
    }
    first = false;
    const entries = pageEntries(out, prefix);
    if (entries.length) yield entries;
    if (!next) return;
    pending = next;
  }
}
