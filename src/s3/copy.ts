/**
 * Server-side copy of one object: the data never passes through the gateway.
 *
 * Up to `copyThreshold` (S3's 5 GiB limit for one CopyObject) it is a single CopyObject. Above it,
 * a multipart upload whose parts are UploadPartCopy ranges of the source, `copyPartSize` each (at
 * most 5 GiB, and large enough that the parts fit in 10,000), copied four at a time. Every request
 * names the source's ETag (x-amz-copy-source-if-match) so a source replaced during the copy fails
 * the copy instead of producing a mixture. A failed multipart copy is aborted.
 *
 * Used by rename (copy, then delete) and by setstat (copy onto itself with new metadata).
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { BackendError } from '../backend.js';
import type { ClientPool } from './clients.js';
import { isPreconditionFailed } from './errors.js';
import { copySource } from './paths.js';
import type { SseParams } from './sse.js';

/** S3's limit for one CopyObject and for one copied part. */
export const MAX_COPY = 5 * 1024 ** 3;
const COPY_CONCURRENCY = 4;

export interface CopyContext {
  pool: ClientPool;
  /** Objects larger than this are copied in parts. */
  copyThreshold: number;
  copyPartSize: number;
  maxParts: number;
}

export interface CopyRequest {
  srcBucket: string;
  srcKey: string;
  /** HeadObject of the source: size, ETag, metadata and content headers. */
  head: HeadObjectCommandOutput;
  dstBucket: string;
  dstKey: string;
  /** Replaces the user metadata (x-amz-meta-*); otherwise the source's is kept. */
  metadata?: Record<string, string>;
  sse: SseParams;
}

/** The content headers a copy with replaced metadata must restate, or they would be lost. */
function contentHeaders(head: HeadObjectCommandOutput) {
  return {
    ...(head.ContentType ? { ContentType: head.ContentType } : {}),
    ...(head.ContentEncoding ? { ContentEncoding: head.ContentEncoding } : {}),
    ...(head.ContentDisposition ? { ContentDisposition: head.ContentDisposition } : {}),
    ...(head.ContentLanguage ? { ContentLanguage: head.ContentLanguage } : {}),
    ...(head.CacheControl ? { CacheControl: head.CacheControl } : {}),
  };
}

export async function copyObject(ctx: CopyContext, req: CopyRequest): Promise<void> {
  const size = req.head.ContentLength ?? 0;
  const source = copySource(req.srcBucket, req.srcKey);
  const ifMatch = req.head.ETag ? { CopySourceIfMatch: req.head.ETag } : {};
  try {
    if (size <= Math.min(ctx.copyThreshold, MAX_COPY)) {
      await ctx.pool.send(req.dstBucket, () =>
        new CopyObjectCommand({
          Bucket: req.dstBucket,
          Key: req.dstKey,
          CopySource: source,
          ...ifMatch,
          ...(req.metadata
            ? { MetadataDirective: 'REPLACE', Metadata: req.metadata, ...contentHeaders(req.head) }
            : { MetadataDirective: 'COPY' }),
          ...req.sse,
        }),
      );
      return;
    }
    await multipartCopy(ctx, req, size, source, ifMatch);
  } catch (err) {
    if (isPreconditionFailed(err)) {
      throw new BackendError('EIO', `/${req.srcBucket}/${req.srcKey} changed during the copy; nothing was changed`, {
        cause: err,
      });
    }
    throw err;
  }
}

async function multipartCopy(
  ctx: CopyContext,
  req: CopyRequest,
  size: number,
  source: string,
  ifMatch: { CopySourceIfMatch?: string },
): Promise<void> {
  const partSize = Math.min(MAX_COPY, Math.max(ctx.copyPartSize, Math.ceil(size / ctx.maxParts)));
  const count = Math.ceil(size / partSize);
  if (count > ctx.maxParts) {
    throw new BackendError('EINVAL', `/${req.srcBucket}/${req.srcKey} is too large to copy in ${ctx.maxParts} parts`);
  }
  const created = await ctx.pool.send(req.dstBucket, () =>
    new CreateMultipartUploadCommand({
      Bucket: req.dstBucket,
      Key: req.dstKey,
      Metadata: req.metadata ?? req.head.Metadata ?? {},
      ...contentHeaders(req.head),
      ...req.sse,
    }),
  );
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  const parts: CompletedPart[] = new Array(count);
  try {
    let next = 0;
    let stop = false;
    const worker = async () => {
      while (next < count && !stop) {
        const i = next++;
        const first = i * partSize;
        const last = Math.min(size, first + partSize) - 1;
        const out = await ctx.pool.send(req.dstBucket, () =>
          new UploadPartCopyCommand({
            Bucket: req.dstBucket,
            Key: req.dstKey,
            UploadId: uploadId,
            PartNumber: i + 1,
            CopySource: source,
            CopySourceRange: `bytes=${first}-${last}`,
            ...ifMatch,
          }),
        );
        parts[i] = { PartNumber: i + 1, ETag: out.CopyPartResult?.ETag };
      }
    };
    // Let every worker settle before aborting: a part copy that outlives the abort can linger.
    const results = await Promise.allSettled(
      Array.from({ length: Math.min(COPY_CONCURRENCY, count) }, () =>
        worker().catch((e: unknown) => {
          stop = true;
          throw e;
        }),
      ),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    await ctx.pool.send(req.dstBucket, () =>
      new CompleteMultipartUploadCommand({
        Bucket: req.dstBucket,
        Key: req.dstKey,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (err) {
    await ctx.pool
      .send(req.dstBucket, () =>
        new AbortMultipartUploadCommand({ Bucket: req.dstBucket, Key: req.dstKey, UploadId: uploadId }),
      )
      .catch(() => {});
    throw err;
  }
}
