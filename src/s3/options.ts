/**
 * The S3 backend's settings, their defaults and their checks. A bad setting fails at construction
 * with a message that names it, so the CLI can report it at startup.
 */
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import type { Logger } from '../log.js';
import type { ChecksumMode } from './clients.js';
import { MAX_COPY } from './copy.js';
import { SLAB_SIZE } from './slabs.js';
import type { SseConfig } from './sse.js';

const MiB = 1024 * 1024;
/** S3's smallest part (all but the last). */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PARTS = 10_000;
/** The default object limit: 5 TiB, S3's limit until 2025 and still most compatible stores'. */
export const MAX_OBJECT_SIZE = 5 * 1024 * 1024 * MiB;

export interface S3BackendOptions {
  /** A key's pending multipart uploads with no part for this long are aborted when it is uploaded again (stale.ts); 0 never. Default 1 h. */
  staleUploadMs?: number;
  /** Each S3 request's latency and error code, for metrics (clients.ts). */
  onRequest?: (operation: string, seconds: number, error?: string) => void;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** A custom endpoint (MinIO, R2 …); AWS's regional endpoints otherwise. */
  endpoint?: string;
  /** The region tried first; buckets elsewhere are discovered (clients.ts). */
  region: string;
  forcePathStyle: boolean;
  sse: SseConfig;
  /**
   * Upload part size, default 5 MiB: S3's minimum, so that one part in flight plus the next one
   * filling fit the per-upload memory budget. All parts of an upload have this size (R2 requires
   * equal parts). 10,000 parts of 5 MiB cap an upload of unknown size at 48.8 GiB (issue 5).
   */
  partSize?: number;
  /**
   * Memory one upload may hold: parts awaiting S3's answer plus the part filling. Default 6 MiB
   * (for 5 MiB parts; 1.2 × partSize for larger ones); at least partSize, when parts upload one at
   * a time.
   */
  uploadBudget?: number;
  /** Bytes a download may queue ahead of the reader, default 1 MiB. */
  readAhead?: number;
  /** The largest range one GET asks for, default 16 MiB. */
  readWindow?: number;
  /** Objects above this are copied (rename, setstat) with UploadPartCopy; default and maximum 5 GiB. */
  copyThreshold?: number;
  /** Part size of a multipart copy, default 512 MiB (5 MiB – 5 GiB). */
  copyPartSize?: number;
  /** S3's part-count limit, default 10,000; lower only to test the large-upload paths. */
  maxParts?: number;
  /** The largest object an upload may make, default 5 TiB (most stores' limit; AWS takes 48.8 TiB). */
  maxObjectSize?: number;
  /** The whole-file checksum each upload computes and stores, default crc32 (checksum.ts). */
  uploadChecksum?: 'crc32' | 'none';
  /** An upload cut off before CLOSE: 'keep' (default) what arrived when that replaces nothing, or 'discard'. */
  partialUploads?: 'keep' | 'discard';
  /**
   * Park `name.filepart` uploads until their rename (filepart.ts). Only for clients known to
   * rename in the same session right after CLOSE (WinSCP): the gateway sets it from the client's
   * SSH version string. Default false.
   */
  parkFileparts?: boolean;
  /** The SDK's flexible checksums; default WHEN_REQUIRED (see clients.ts). */
  checksums?: ChecksumMode;
  log: Logger;
  /** Makes the S3Client for a region (tests wrap it to watch region handling). */
  clientFactory?: (config: S3ClientConfig) => S3Client;
}

export interface ResolvedOptions {
  partSize: number;
  uploadBudget: number;
  readAhead: number;
  readWindow: number;
  copyThreshold: number;
  copyPartSize: number;
  maxParts: number;
  maxObjectSize: number;
  uploadChecksum: 'crc32' | 'none';
  partialUploads: 'keep' | 'discard';
  checksums: ChecksumMode;
  staleUploadMs: number;
}

function checkRange(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(`S3 backend option ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

export function resolveOptions(opts: S3BackendOptions): ResolvedOptions {
  const partSize = checkRange('partSize', opts.partSize ?? MIN_PART_SIZE, MIN_PART_SIZE, MAX_COPY);
  // 6 MiB for 5 MiB parts: the next part streams while its predecessor waits for S3's answer, and
  // may get 1 MiB ahead of it; the same ratio for larger parts.
  const defaultBudget = Math.max(6 * MiB, Math.ceil(partSize * 1.2));
  const budget = checkRange('uploadBudget', opts.uploadBudget ?? defaultBudget, partSize, 16 * 1024 * MiB);
  return {
    partSize,
    // Whole slabs: a part of partSize bytes always fits, even when it does not end on a slab edge.
    uploadBudget: Math.max(budget, Math.ceil(partSize / SLAB_SIZE) * SLAB_SIZE),
    readAhead: checkRange('readAhead', opts.readAhead ?? MiB, 64 * 1024, 64 * MiB),
    readWindow: checkRange('readWindow', opts.readWindow ?? 16 * MiB, 256 * 1024, MAX_COPY),
    copyThreshold: checkRange('copyThreshold', opts.copyThreshold ?? MAX_COPY, 0, MAX_COPY),
    copyPartSize: checkRange('copyPartSize', opts.copyPartSize ?? 512 * MiB, MIN_PART_SIZE, MAX_COPY),
    maxParts: checkRange('maxParts', opts.maxParts ?? MAX_PARTS, 1, MAX_PARTS),
    maxObjectSize: checkRange('maxObjectSize', opts.maxObjectSize ?? MAX_OBJECT_SIZE, MIN_PART_SIZE, MAX_PARTS * MAX_COPY),
    uploadChecksum: opts.uploadChecksum ?? 'crc32',
    partialUploads: opts.partialUploads ?? 'keep',
    checksums: opts.checksums ?? 'WHEN_REQUIRED',
    staleUploadMs: checkRange('staleUploadMs', opts.staleUploadMs ?? 3_600_000, 0, 2 ** 31 - 1),
  };
}
