/**
 * The audit log's records: one JSON object per event, flat, camelCase, every one with `time`
 * (ISO 8601, UTC), `event` and `instance`. docs/audit.md has a table per kind.
 *
 * Peer-supplied strings (user names, client version strings, paths) are escaped by the caller
 * with escapePeer before they get here. Nothing here ever holds a secret: records are built from
 * the principal's public identity (access key ID, ARN) only.
 */

/** Fields every record carries. */
interface Base {
  time: string;
  instance: string;
}

/** Fields of every record that belongs to a session. */
interface InSession extends Base {
  /** Unique per instance: `<connection id>-<channel>`; also in the gateway's log records. */
  session: string;
  accessKeyId: string;
  clientAddress: string;
}

export interface SessionStartRecord extends InSession {
  event: 'session_start';
  clientPort: number;
  protocol: 'sftp' | 'scp';
  clientVersion: string;
  /** The IAM identity's ARN when STS returned one. */
  arn?: string;
}

export interface SessionEndRecord extends InSession {
  event: 'session_end';
  protocol: 'sftp' | 'scp';
  ms: number;
  /** File data the client uploaded / downloaded in this session. */
  bytesIn: number;
  bytesOut: number;
  /** `closed` (the client ended it), `disconnected` (the connection went away), or the error. */
  reason: string;
}

export interface LoginFailedRecord extends Base {
  event: 'login_failed';
  clientAddress: string;
  clientPort: number;
  clientVersion: string;
  /** The user name as sent (normally an access key ID), escaped. */
  user: string;
  method: string;
  reason: string;
}

export interface TransferRecord extends InSession {
  event: 'upload' | 'download';
  path: string;
  bytes: number;
  ms: number;
  ok: boolean;
  error?: string;
}

export interface PathRecord extends InSession {
  event: 'mkdir' | 'rmdir' | 'remove' | 'setstat';
  path: string;
  ok: boolean;
  error?: string;
}

export interface RenameRecord extends InSession {
  event: 'rename';
  from: string;
  to: string;
  overwrite: boolean;
  ok: boolean;
  error?: string;
}

/** A connection refused before any SSH work (limits, lockout, PROXY header). */
export interface RefusedRecord extends Base {
  event: 'connection_refused';
  clientAddress: string;
  reason: string;
}

export type AuditRecord =
  | SessionStartRecord
  | SessionEndRecord
  | LoginFailedRecord
  | TransferRecord
  | PathRecord
  | RenameRecord
  | RefusedRecord;

export type AuditEvent = AuditRecord['event'];

/** Where audit records go. `write` never throws and never waits; `close` flushes. */
export interface AuditSink {
  write(record: AuditRecord): void;
  close(): Promise<void>;
}

/** A sink that drops everything (no audit configured, tests). */
export const nullAuditSink: AuditSink = {
  write() {},
  close: () => Promise.resolve(),
};

/** Several sinks as one. */
export function fanOut(sinks: readonly AuditSink[]): AuditSink {
  if (sinks.length === 0) return nullAuditSink;
  if (sinks.length === 1) return sinks[0]!;
  return {
    write(r) {
      for (const s of sinks) s.write(r);
    },
    close: () => Promise.all(sinks.map((s) => s.close())).then(() => undefined),
  };
}
