/**
 * What an SFTP session did, for the audit log: one event per file operation, emitted when its
 * outcome is known. Paths are the normalised backend paths; `error` is the message the client
 * was given. A transfer's `bytes` counts what actually moved (READ replies sent, WRITEs
 * accepted), and `ms` runs from OPEN to the end of CLOSE (or to the session's end).
 */
export type SftpEvent =
  | { type: 'upload'; path: string; bytes: number; ms: number; ok: boolean; error?: string }
  | { type: 'download'; path: string; bytes: number; ms: number; ok: boolean; error?: string }
  | { type: 'mkdir' | 'rmdir' | 'remove' | 'setstat'; path: string; ok: boolean; error?: string }
  | { type: 'rename'; from: string; to: string; overwrite: boolean; ok: boolean; error?: string };

export type SftpEventType = SftpEvent['type'];
