import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, ListPartsCommand } from '@aws-sdk/client-s3';
import type { ClientPool } from './clients.js';
import { toBackendError } from './errors.js';
import { escapePeer, type Logger } from '../log.js';

/**
 * Pending multipart uploads of one key that a dead gateway left: an instance killed mid-upload
 * (SIGKILL, a lost host) cannot abort its upload, and no other instance knows it existed. When
 * the same key is uploaded again, through any instance, the uploads of exactly that key with no
 * part stored for `staleMs` (or, with no part, initiated that long ago) are aborted.
 *
 * A live upload stores a part at least every part size of client data, so an upload silent for
 * the whole age (default 1 h) has no gateway feeding it. A bucket lifecycle rule
 * (AbortIncompleteMultipartUpload) remains the backstop for keys never uploaded again.
 *
 * Best effort, in the background: failures (a user without s3:ListBucketMultipartUploads) are
 * logged at debug and change nothing.
 */
export interface StaleSweep {
  pool: ClientPool;
  log: Logger;
  secrets: readonly string[];
  staleMs: number;
}

/** Bounds the work one sweep may do: uploads looked at, and part pages read per upload. */
const MAX_UPLOADS = 100;
const MAX_PART_PAGES = 10;

export async function sweepStaleUploads(s: StaleSweep, bucket: string, key: string, ours: string | undefined): Promise<number> {
  let aborted = 0;
  try {
    const list = await s.pool.send(bucket, () => new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key, MaxUploads: MAX_UPLOADS }));
    const cutoff = Date.now() - s.staleMs;
    for (const u of list.Uploads ?? []) {
      if (u.Key !== key || !u.UploadId || u.UploadId === ours) continue;
      if (u.Initiated && u.Initiated.getTime() >= cutoff) continue;
      const last = await lastActivity(s, bucket, key, u.UploadId, u.Initiated);
      if (last === undefined || last >= cutoff) continue;
      const uploadId = u.UploadId;
      await s.pool.send(bucket, () => new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
      aborted++;
      s.log.info('aborted a stale multipart upload', {
        path: escapePeer(`/${bucket}/${key}`),
        idleS: Math.round((Date.now() - last) / 1000),
      });
    }
  } catch (err) {
    if (s.log.debugEnabled) {
      s.log.debug('could not sweep stale multipart uploads', {
        path: escapePeer(`/${bucket}/${key}`),
        error: escapePeer(toBackendError(err, 'list uploads', s.secrets).message, 400),
      });
    }
  }
  return aborted;
}

/** The newest part's time, or the initiation time when there is none; undefined if unknown. */
async function lastActivity(s: StaleSweep, bucket: string, key: string, uploadId: string, initiated: Date | undefined): Promise<number | undefined> {
  let newest = initiated?.getTime();
  let marker: string | undefined;
  for (let page = 0; page < MAX_PART_PAGES; page++) {
    const out = await s.pool.send(bucket, () =>
      new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId, ...(marker ? { PartNumberMarker: marker } : {}) }),
    );
    for (const p of out.Parts ?? []) {
      const t = p.LastModified?.getTime();
      if (t !== undefined && (newest === undefined || t > newest)) newest = t;
    }
    if (!out.IsTruncated || !out.NextPartNumberMarker) return newest;
    marker = out.NextPartNumberMarker;
  }
  // Too many parts to read them all: judge by what was read (parts come in number order, the
  // newest usually last, so an upload still growing is more likely to look recent than old).
  return newest;
}
