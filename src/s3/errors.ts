/**
 * S3 failures → BackendError. The S3 backend classifies its own errors (CONVENTIONS, Boundaries 3),
 * so the protocols only ever see a BackendError code and a message fit for the client.
 *
 * Messages are our own words plus, for unexpected failures, the store's error code and text with
 * the user's secret and session token scrubbed out. SignatureDoesNotMatch bodies carry the string
 * to sign and the canonical request, so we never copy anything but `message` from an SDK error.
 */
import { BackendError, type BackendErrorCode } from '../backend.js';

/** The fields of an AWS SDK v3 service error that we read; anything may be missing. */
interface SdkErrorLike {
  name?: string;
  Code?: string;
  message?: string;
  code?: string; // Node system errors: ECONNREFUSED, ETIMEDOUT …
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number; headers?: Record<string, string | undefined> };
}

function asSdk(err: unknown): SdkErrorLike {
  return typeof err === 'object' && err !== null ? (err as SdkErrorLike) : {};
}

/** The HTTP status of a failed S3 request, if it got that far. */
export function s3Status(err: unknown): number | undefined {
  const e = asSdk(err);
  return e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
}

/** The S3 error code ("NoSuchKey"); HEAD errors have no body, so the SDK names them by status. */
export function s3Code(err: unknown): string {
  const e = asSdk(err);
  return e.Code ?? e.name ?? '';
}

/** A response header of a failed request (x-amz-bucket-region …). */
export function s3ErrorHeader(err: unknown, name: string): string | undefined {
  const h = asSdk(err).$response?.headers;
  if (!h) return undefined;
  return h[name] ?? h[name.toLowerCase()];
}

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket', 'NoSuchUpload', 'NoSuchVersion']);
const DENIED = new Set([
  'AccessDenied',
  'Forbidden',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AllAccessDisabled',
  'AccountProblem',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'InvalidObjectState', // archived (Glacier): readable only after a restore
]);
/** Names or requests the store refused as malformed: for a file system these are bad names. */
const BAD_NAME = new Set(['KeyTooLongError', 'InvalidObjectName', 'XMinioInvalidObjectName', 'InvalidBucketName']);

export function isNotFound(err: unknown): boolean {
  return NOT_FOUND.has(s3Code(err)) || s3Status(err) === 404;
}

export function isAccessDenied(err: unknown): boolean {
  return DENIED.has(s3Code(err)) || s3Status(err) === 403;
}

/** A conditional write (If-None-Match: *) found the object already there. */
export function isPreconditionFailed(err: unknown): boolean {
  const code = s3Code(err);
  return code === 'PreconditionFailed' || code === 'ConditionalRequestConflict' || s3Status(err) === 412;
}

export function isNotImplemented(err: unknown): boolean {
  return s3Code(err) === 'NotImplemented' || s3Status(err) === 501;
}

/** Failures worth one more attempt: network trouble, throttling, 5xx, S3's RequestTimeout. */
export function isTransient(err: unknown): boolean {
  const e = asSdk(err);
  const status = s3Status(err);
  if (status === undefined) {
    // No HTTP response at all: a reset or refused socket, or a timeout.
    return e.name !== 'AbortError' && !(err instanceof BackendError);
  }
  if (status >= 500 && status !== 501) return true;
  if (status === 429) return true;
  const code = s3Code(err);
  return code === 'RequestTimeout' || code === 'SlowDown' || code === 'Throttling' || code === 'RequestTimeTooSkewed';
}

/** Removes the caller's secrets from a string that came from the store or the SDK. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 4) out = out.split(s).join('[redacted]');
  }
  // Long enough to be useful, short enough that a hostile store cannot flood a status message.
  return out.length > 300 ? out.slice(0, 300) + '…' : out;
}

export function classify(err: unknown): BackendErrorCode {
  if (err instanceof BackendError) return err.code;
  const code = s3Code(err);
  if (isNotFound(err)) return 'ENOENT';
  if (isAccessDenied(err)) return 'EACCES';
  if (BAD_NAME.has(code)) return 'EINVAL';
  if (isNotImplemented(err)) return 'ENOTSUP';
  return 'EIO';
}

/**
 * Maps any failure of an S3 call to a BackendError. `action` says what was attempted in the
 * client's terms ("open /bucket/key"); `secrets` are scrubbed from anything the store said.
 * A BackendError passes through unchanged.
 */
export function toBackendError(err: unknown, action: string, secrets: readonly string[] = []): BackendError {
  if (err instanceof BackendError) return err;
  const code = classify(err);
  const e = asSdk(err);
  const s3code = s3Code(err);
  let reason: string;
  switch (code) {
    case 'ENOENT':
      reason = s3code === 'NoSuchBucket' ? 'no such bucket' : s3code === 'NoSuchUpload' ? 'the upload is gone' : 'no such file';
      break;
    case 'EACCES':
      if (s3code === 'InvalidAccessKeyId') reason = 'the access key is not known to the store';
      else if (s3code === 'SignatureDoesNotMatch') reason = 'the store rejected the request signature';
      else if (s3code === 'ExpiredToken' || s3code === 'TokenRefreshRequired') reason = 'the session credentials have expired';
      else if (s3code === 'InvalidObjectState') reason = 'the object is archived and must be restored first';
      else reason = 'access denied by the store';
      break;
    case 'EINVAL':
      reason = `the store refused the name (${s3code})`;
      break;
    case 'ENOTSUP':
      reason = 'the store does not implement this request';
      break;
    default: {
      const status = s3Status(err);
      if (status === undefined && e.code) {
        reason = `cannot reach the store (${e.code})`;
      } else {
        const text = typeof e.message === 'string' && e.message !== 'UnknownError' ? e.message : '';
        const label = s3code && s3code !== 'Unknown' ? s3code : status !== undefined ? `HTTP ${status}` : 'error';
        reason = `the store failed: ${label}${text ? ': ' + text : ''}`;
      }
    }
  }
  return new BackendError(code, scrub(`${action}: ${reason}`, secrets), { cause: err });
}
