/**
 * The storage interface that the SFTP and SCP servers consume and the S3 backend implements.
 * It imports neither protocol: paths are absolute, normalised, `/`-separated strings
 * ("/bucket/dir/file"), and every failure is a BackendError whose `code` the protocols map to
 * their own status (SFTP: src/sftp/errors.ts).
 */

/** POSIX file type bits, as SFTP v3 carries them in `permissions`. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

export interface FileAttrs {
  /** S_IFDIR or S_IFREG plus permission bits. */
  mode: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  atime: number;
}

export interface DirEntry {
  name: string;
  attrs: FileAttrs;
}

export type BackendErrorCode =
  | 'ENOENT' // no such file, directory or bucket
  | 'EACCES' // denied by the store (IAM)
  | 'EEXIST' // exists (exclusive create, rename onto an existing target)
  | 'ENOTEMPTY' // rmdir of a non-empty directory
  | 'ENOTDIR' // a file where a directory is needed
  | 'EISDIR' // a directory where a file is needed
  | 'EINVAL' // a request that cannot be honoured (out-of-order write, bad name)
  | 'ENOTSUP' // something S3 cannot do (rename a directory, symlinks, delete a bucket)
  | 'EIO'; // anything else: the store failed

/**
 * A failure with a stable code and a message fit for the client: it names what failed and
 * why in plain words, and never carries a secret or a raw stack.
 */
export class BackendError extends Error {
  readonly code: BackendErrorCode;
  constructor(code: BackendErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendError';
    this.code = code;
  }
}

export interface ReadHandle {
  readonly size: number;
  /**
   * Up to `length` bytes at `offset`; an empty buffer means end of file. Reads may come in
   * any order; sequential ones are served from a bounded read-ahead.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Optional: what `read` returns, as views of the buffers the store's bytes arrived in, in
   * order, so a read that spans two of them costs no copy. An empty array means end of file.
   */
  readv?(offset: number, length: number): Promise<Buffer[]>;
  close(): Promise<void>;
}

export interface WriteOptions {
  /** Fail with EEXIST when the object exists (SFTP EXCL). */
  exclusive: boolean;
  /** The size, when the protocol knows it in advance (SCP's C line). */
  expectedSize?: number;
  /** Modification time to store with the object, in seconds. */
  mtime?: number;
  /**
   * What happens to an existing file (default 'replace'):
   * - 'replace': the upload is a new file from offset 0 (SFTP TRUNC or EXCL, SCP).
   * - 'continue': the open did not truncate (SFTP WRITE|CREAT without TRUNC). The handle starts
   *   at the existing file's size; a first write there continues the file (resume), a first
   *   write at 0 replaces it, any other offset is EINVAL.
   * - 'append': every write goes to the end of the file, whatever its offset (SFTP APPEND).
   */
  mode?: 'replace' | 'continue' | 'append';
}

export interface WriteHandle {
  /** Bytes this handle has accepted (what the client sent; for the audit record). */
  readonly bytesWritten: number;
  /**
   * The file's size as this upload stands: existing bytes it continues plus bytes written. It
   * is the offset the next write must start at.
   */
  readonly size: number;
  /**
   * Appends `data` at `offset`, which must equal `size` (EINVAL otherwise; see WriteOptions.mode
   * for the exceptions). Resolves once the data is held; it waits while the upload is at its
   * memory budget, which is what pushes back on the client.
   */
  write(offset: number, data: Buffer): Promise<void>;
  /** Sets the modification time stored when the object is committed. */
  setMtime(mtime: number): void;
  /** Makes the object appear with everything written; resolves once the store has it. */
  commit(): Promise<void>;
  /** Discards the upload; nothing partial is left behind. Safe to call more than once. */
  abort(): Promise<void>;
  /**
   * The client went away before closing (the session ended): keeps what arrived, so the client
   * can resume, when that destroys nothing and the backend is set to keep partial uploads: the
   * file did not exist, or this upload continues it. Otherwise aborts. Resolves true when kept.
   */
  commitPartial(): Promise<boolean>;
}

/** A checksum stored with a file: `value` is the raw digest (CRC32: 4 bytes, big-endian). */
export interface StoredChecksum {
  algorithm: 'crc32';
  value: Buffer;
}

export interface FsStats {
  blockSize: number;
  blocks: number;
  freeBlocks: number;
  files: number;
  freeFiles: number;
  nameMax: number;
}

export interface Backend {
  stat(path: string): Promise<FileAttrs>;
  /** Lists a directory page by page, so a huge directory streams in bounded memory. */
  list(path: string): AsyncIterable<DirEntry[]>;
  openRead(path: string): Promise<ReadHandle>;
  openWrite(path: string, options: WriteOptions): Promise<WriteHandle>;
  mkdir(path: string): Promise<void>;
  /** Removes an empty directory. */
  rmdir(path: string): Promise<void>;
  /** Removes a file. */
  remove(path: string): Promise<void>;
  /** Renames a file; with `overwrite` false an existing target is EEXIST. */
  rename(from: string, to: string, overwrite: boolean): Promise<void>;
  /** Stores what can be stored (mtime) and accepts the rest without harm. */
  setstat(path: string, attrs: Partial<FileAttrs>): Promise<void>;
  statfs(path: string): Promise<FsStats>;
  /**
   * Optional: the whole-file checksum stored with a file (SFTP check-file extensions), or
   * undefined when the file has none.
   */
  checksum?(path: string): Promise<StoredChecksum | undefined>;
  /** Ends the session's use of the store: aborts uploads still open, frees connections. */
  close?(): Promise<void>;
}
