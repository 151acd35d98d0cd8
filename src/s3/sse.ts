/**
 * Server-side encryption settings → request parameters. SSE goes on PutObject,
 * CreateMultipartUpload and CopyObject (never on UploadPart, except SSE-C, which we do not use).
 */
import type { ServerSideEncryption } from '@aws-sdk/client-s3';

export interface SseConfig {
  mode: 'none' | 'AES256' | 'aws:kms';
  /** The KMS key for aws:kms; without it the store uses its default key. */
  kmsKeyId?: string;
}

export interface SseParams {
  ServerSideEncryption?: ServerSideEncryption;
  SSEKMSKeyId?: string;
}

export function sseParams(cfg: SseConfig): SseParams {
  if (cfg.mode === 'none') return {};
  if (cfg.mode === 'AES256') return { ServerSideEncryption: 'AES256' };
  return { ServerSideEncryption: 'aws:kms', ...(cfg.kmsKeyId ? { SSEKMSKeyId: cfg.kmsKeyId } : {}) };
}

/**
 * The encryption to give a copy: the source's own (so a rename or an mtime update keeps an object
 * as it was encrypted), else the configured one.
 */
export function sseForCopy(
  source: { ServerSideEncryption?: string; SSEKMSKeyId?: string },
  configured: SseParams,
): SseParams {
  const mode = source.ServerSideEncryption;
  if (mode === 'AES256') return { ServerSideEncryption: 'AES256' };
  if (mode === 'aws:kms' || mode === 'aws:kms:dsse') {
    return { ServerSideEncryption: mode, ...(source.SSEKMSKeyId ? { SSEKMSKeyId: source.SSEKMSKeyId } : {}) };
  }
  return configured;
}
