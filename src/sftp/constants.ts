/**
 * SFTP protocol version 3 constants, with the names of draft-ietf-secsh-filexfer-02 (§3, §5, §6.3,
 * §7) minus their SSH_FXP_ / SSH_FX_ / SSH_FXF_ / SSH_FILEXFER_ATTR_ prefixes, and the OpenSSH
 * extensions we implement (OpenSSH PROTOCOL §4).
 */

/** The only protocol version we speak (OpenSSH speaks only this one too). */
export const SFTP_VERSION = 3;

/** Packet types, draft-02 §3. */
export const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

/** Status codes, draft-02 §7. */
export const FX = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;

export type FxStatus = (typeof FX)[keyof typeof FX];

/** The text OpenSSH's sftp-server sends with each status when it has nothing more specific. */
export const FX_TEXT: Readonly<Record<FxStatus, string>> = {
  [FX.OK]: 'Success',
  [FX.EOF]: 'End of file',
  [FX.NO_SUCH_FILE]: 'No such file',
  [FX.PERMISSION_DENIED]: 'Permission denied',
  [FX.FAILURE]: 'Failure',
  [FX.BAD_MESSAGE]: 'Bad message',
  [FX.NO_CONNECTION]: 'No connection',
  [FX.CONNECTION_LOST]: 'Connection lost',
  [FX.OP_UNSUPPORTED]: 'Operation unsupported',
};

/** OPEN pflags, draft-02 §6.3. */
export const FXF = {
  READ: 0x01,
  WRITE: 0x02,
  APPEND: 0x04,
  CREAT: 0x08,
  TRUNC: 0x10,
  EXCL: 0x20,
} as const;

/** ATTRS flag bits, draft-02 §5. */
export const ATTR = {
  SIZE: 0x0000_0001,
  UIDGID: 0x0000_0002,
  PERMISSIONS: 0x0000_0004,
  ACMODTIME: 0x0000_0008,
  EXTENDED: 0x8000_0000,
} as const;

/** Every flag bit version 3 defines; any other bit makes an ATTRS malformed. */
export const ATTR_KNOWN = ATTR.SIZE | ATTR.UIDGID | ATTR.PERMISSIONS | ATTR.ACMODTIME | ATTR.EXTENDED;

/** EXTENDED request names we answer (OpenSSH PROTOCOL §4). */
export const EXT = {
  POSIX_RENAME: 'posix-rename@openssh.com',
  STATVFS: 'statvfs@openssh.com',
  FSTATVFS: 'fstatvfs@openssh.com',
  LIMITS: 'limits@openssh.com',
  FSYNC: 'fsync@openssh.com',
  /** draft-ietf-secsh-filexfer-extensions-00 §3: a hash of an open file. */
  CHECK_FILE_HANDLE: 'check-file-handle',
  /** draft-ietf-secsh-filexfer-extensions-00 §3: a hash of a file by name. */
  CHECK_FILE_NAME: 'check-file-name',
  /**
   * paramiko's SFTPFile.check sends this older name with a handle and the same fields (as did
   * draft-ietf-secsh-filexfer-05's check-file); we take it as check-file-handle.
   */
  CHECK_FILE: 'check-file',
} as const;

/** The name the check-file reply carries before the algorithm (extensions-00 §3). */
export const CHECK_FILE_REPLY = 'check-file';

/** What VERSION advertises: name and version string, as OpenSSH's sftp-server sends them. */
export const EXTENSIONS: readonly (readonly [string, string])[] = [
  [EXT.POSIX_RENAME, '1'],
  [EXT.STATVFS, '2'],
  [EXT.FSTATVFS, '2'],
  [EXT.LIMITS, '1'],
  [EXT.FSYNC, '1'],
  // The data is the hash algorithms we can answer: only the CRC32 stored with the object.
  [EXT.CHECK_FILE_HANDLE, 'crc32'],
  [EXT.CHECK_FILE_NAME, 'crc32'],
];

/** statvfs f_flag bits (OpenSSH PROTOCOL §4.4). */
export const SSH_FXE_STATVFS = {
  ST_RDONLY: 0x1,
  ST_NOSUID: 0x2,
} as const;

/**
 * OpenSSH's limits: a 256 KiB message (SFTP_MAX_MSG_LENGTH) and reads/writes of 1 KiB less, so
 * a DATA or WRITE with its header always fits in one message.
 */
export const DEFAULT_MAX_PACKET = 256 * 1024;
export const READ_WRITE_HEADROOM = 1024;
