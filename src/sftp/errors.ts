import { BackendError, type BackendErrorCode } from '../backend.js';
import { MalformedError } from '../wire/errors.js';
import type { Logger } from '../log.js';
import { FX, type FxStatus } from './constants.js';

/** Fails one request with `status` and a message for the client (CONVENTIONS: Errors). */
export class SftpStatusError extends Error {
  readonly code = 'ERR_SFTP_STATUS';
  readonly status: FxStatus;
  constructor(status: FxStatus, message: string) {
    super(message);
    this.name = 'SftpStatusError';
    this.status = status;
  }
}

export interface FxStatusReply {
  status: FxStatus;
  message: string;
}

const BY_CODE: Readonly<Record<BackendErrorCode, FxStatus>> = {
  ENOENT: FX.NO_SUCH_FILE,
  EACCES: FX.PERMISSION_DENIED,
  ENOTSUP: FX.OP_UNSUPPORTED,
  // v3 has no finer codes for these (v5 added FILE_ALREADY_EXISTS, DIR_NOT_EMPTY, ...):
  // FAILURE, with the backend's message saying which it was.
  EEXIST: FX.FAILURE,
  ENOTEMPTY: FX.FAILURE,
  ENOTDIR: FX.FAILURE,
  EISDIR: FX.FAILURE,
  EINVAL: FX.FAILURE,
  EIO: FX.FAILURE,
};

/**
 * The one place an error becomes an SFTP status (OpenSSH keeps one errno_to_portable map too).
 * Messages reach the client, so they pass through `clientText`; anything we did not expect is
 * "internal error" on the wire and the full error in our log, never a stack to the peer.
 */
export function toFxStatus(err: unknown, log?: Logger): FxStatusReply {
  if (err instanceof SftpStatusError) return { status: err.status, message: clientText(err.message) };
  if (err instanceof BackendError) {
    const status = BY_CODE[err.code] as FxStatus | undefined;
    if (status !== undefined) return { status, message: clientText(err.message) };
  }
  if (err instanceof MalformedError) return { status: FX.BAD_MESSAGE, message: clientText(err.message) };
  log?.error('sftp: internal error', {
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  return { status: FX.FAILURE, message: 'internal error' };
}

/** Longest status message we send; backend messages that name two long paths still fit. */
export const MAX_MESSAGE = 2048;

/**
 * Makes a message safe to show in a client: C0 and C1 control characters (and DEL) become `?`,
 * so a file name cannot carry terminal escapes into someone's screen (cf. CVE-2019-6109), and the
 * length is capped. Printable non-ASCII stays, since names are UTF-8.
 */
export function clientText(s: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return clean.length > MAX_MESSAGE ? clean.slice(0, MAX_MESSAGE - 1) + '…' : clean;
}
