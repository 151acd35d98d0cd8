import { performance } from 'node:perf_hooks';
import { BackendError, S_IFDIR, S_IFMT, S_IFREG, type Backend, type FileAttrs } from '../backend.js';
import type { Logger } from '../log.js';
import { fromFileAttrs, type Attrs } from './attrs.js';
import { encodeAttrsReply, encodeDataHeader, encodeHandle, encodeStatus } from './codec.js';
import { FX, FX_TEXT, FXF } from './constants.js';
import { SftpStatusError, toFxStatus } from './errors.js';
import type { SftpEvent } from './events.js';
import type { Handle, HandleTable, ReadFileHandle, WriteFileHandle, WriteMode } from './handles.js';

/**
 * File handles: OPEN, READ, WRITE, FSTAT, FSETSTAT and CLOSE, and the end of a session's open
 * files. An upload is a backend WriteHandle that streams: writes must come in order (the backend
 * says which offset it takes), nothing is visible until CLOSE commits, and an upload the client
 * abandons is kept for resume or aborted, as the backend decides (WriteHandle.commitPartial).
 */

/** A DATA reply: its header and the payload as the backend returned it, in pieces (never copied). */
export interface DataReply {
  header: Buffer;
  payload: readonly Buffer[];
}
export type Reply = Buffer | DataReply;

export interface OperationsConfig {
  backend: Backend;
  handles: HandleTable;
  log: Logger;
  /** Largest READ answered / WRITE accepted, in bytes. */
  maxIO: number;
  maxPacket: number;
  emit: (e: SftpEvent) => void;
}

export const ok = (id: number, message: string = FX_TEXT[FX.OK]): Buffer => encodeStatus(id, FX.OK, message);
export const eof = (id: number): Buffer => encodeStatus(id, FX.EOF, FX_TEXT[FX.EOF]);
export const isDir = (a: FileAttrs): boolean => (a.mode & S_IFMT) === S_IFDIR;

/**
 * What an OPEN for writing does to an existing file (WriteOptions.mode). TRUNC or EXCL start a
 * new file. APPEND writes every WRITE at the end, whatever its offset (OpenSSH's server opens
 * O_APPEND, and `reput` relies on it). WRITE[|CREAT] alone leaves the file as it is until the
 * first WRITE: at the file's size it continues it (WinSCP resuming a .filepart), at 0 it replaces
 * it (scp ≥ 9.1 opens every upload so). A file that does not exist is new in every mode; the
 * backend sees that when it opens the upload, so no STAT is spent here.
 */
export function writeMode(pflags: number): WriteMode {
  if ((pflags & (FXF.TRUNC | FXF.EXCL)) !== 0) return 'replace';
  return (pflags & FXF.APPEND) !== 0 ? 'append' : 'continue';
}

export function tooManyHandles(handles: HandleTable): SftpStatusError {
  return new SftpStatusError(FX.FAILURE, `too many open handles (the limit is ${handles.max})`);
}

/** FAILURE for a request on the wrong kind of handle, saying what the handle is. */
export function wrongKind(h: Handle, what: string): SftpStatusError {
  const is = h.kind === 'dir' ? 'a directory handle' : h.kind === 'read' ? 'open for reading' : 'open for writing';
  return new SftpStatusError(FX.FAILURE, `the handle is ${is}, ${what}`);
}

/**
 * SETSTAT on a path (and FSETSTAT on a handle that is not an upload): the backend keeps what it
 * can (the mtime) and accepts the rest, so uploads from WinSCP and FileZilla, which set times
 * and modes after CLOSE, succeed. A SIZE that differs from the object's is refused rather than
 * silently ignored: it would be a truncation that did not happen.
 */
export async function setstatPath(backend: Backend, path: string, attrs: Attrs): Promise<void> {
  if (attrs.size !== undefined) {
    const st = await backend.stat(path);
    if (isDir(st) || st.size !== attrs.size) {
      throw new SftpStatusError(FX.OP_UNSUPPORTED, `changing the size of ${path} is not supported on S3`);
    }
  }
  const change: Partial<FileAttrs> = {};
  if (attrs.permissions !== undefined) change.mode = attrs.permissions;
  if (attrs.atime !== undefined) change.atime = attrs.atime;
  if (attrs.mtime !== undefined) change.mtime = attrs.mtime;
  await backend.setstat(path, change);
}

export class Files {
  readonly #c: OperationsConfig;

  constructor(config: OperationsConfig) {
    this.#c = config;
  }

  // ------------------------------------------------------------------------ open, close

  async open(id: number, path: string, pflags: number, attrs: Attrs): Promise<Reply> {
    const read = (pflags & FXF.READ) !== 0;
    const write = (pflags & FXF.WRITE) !== 0;
    if (read && write) {
      throw new SftpStatusError(
        FX.OP_UNSUPPORTED,
        'opening a file for both reading and writing is not supported: S3 objects are read, or written whole',
      );
    }
    const { backend, handles } = this.#c;
    if (!handles.reserve()) throw tooManyHandles(handles);
    const openedAt = performance.now();
    try {
      if (!write) {
        // READ, or no access flag at all (OpenSSH opens that O_RDONLY too).
        const file = await backend.openRead(path);
        return encodeHandle(id, handles.add({ kind: 'read', path, file, openedAt, bytes: 0 }).handle);
      }
      await this.#checkWriteTarget(path, pflags);
      const mode = writeMode(pflags);
      const file = await backend.openWrite(path, {
        exclusive: (pflags & FXF.EXCL) !== 0,
        mode,
        ...(attrs.mtime !== undefined ? { mtime: attrs.mtime } : {}),
      });
      const h = handles.add({ kind: 'write', path, file, openedAt, failed: null, mtime: attrs.mtime ?? null, mode });
      return encodeHandle(id, h.handle);
    } catch (err) {
      handles.release();
      const ms = performance.now() - openedAt;
      this.#c.emit({ type: write ? 'upload' : 'download', path, bytes: 0, ms, ok: false, error: toFxStatus(err).message });
      throw err;
    }
  }

  /**
   * OPEN for writing without CREAT needs the file to exist (one STAT; the usual WRITE|CREAT
   * needs none, since the backend learns what is there when it opens the upload).
   */
  async #checkWriteTarget(path: string, pflags: number): Promise<void> {
    if ((pflags & FXF.CREAT) !== 0) return;
    let st: FileAttrs;
    try {
      st = await this.#c.backend.stat(path);
    } catch (err) {
      if (err instanceof BackendError && err.code === 'ENOENT') throw new SftpStatusError(FX.NO_SUCH_FILE, `no such file: ${path}`);
      throw err;
    }
    if (isDir(st)) throw new SftpStatusError(FX.FAILURE, `${path} is a directory`);
  }

  async close(id: number, h: Handle): Promise<Reply> {
    try {
      if (h.kind === 'read') {
        await h.file.close();
        this.#emitTransfer(h, true);
      } else if (h.kind === 'dir') {
        await h.pages.return?.();
      } else {
        await this.#commit(h);
      }
      return ok(id);
    } finally {
      this.#c.handles.delete(h);
    }
  }

  /** CLOSE of an upload: answered only once the store has the object (paramiko STATs next). */
  async #commit(h: WriteFileHandle): Promise<void> {
    if (h.failed !== null) {
      const message = `upload not stored because a write failed: ${h.failed.message}`;
      await this.#abort(h, message);
      throw new SftpStatusError(h.failed.status, message);
    }
    try {
      await h.file.commit();
    } catch (err) {
      await this.#abort(h, toFxStatus(err).message);
      throw err;
    }
    this.#emitTransfer(h, true);
  }

  /** Discards an upload (abort is safe to repeat) and reports it; never throws. */
  async #abort(h: WriteFileHandle, error: string): Promise<void> {
    try {
      await h.file.abort();
    } catch (err) {
      this.#c.log.warn('sftp: abort failed', { error: err instanceof Error ? err.message : String(err) });
    }
    this.#emitTransfer(h, false, error);
  }

  #emitTransfer(h: ReadFileHandle | WriteFileHandle, success: boolean, error?: string): void {
    const ms = performance.now() - h.openedAt;
    const bytes = h.kind === 'read' ? h.bytes : h.file.bytesWritten;
    const type = h.kind === 'read' ? 'download' : 'upload';
    this.#c.emit({ type, path: h.path, bytes, ms, ok: success, ...(error !== undefined ? { error } : {}) });
  }

  /**
   * The end of the session: an upload never CLOSEd keeps what arrived when the backend allows it
   * (so the client can resume it: `reput`, WinSCP's .filepart) and is aborted otherwise; one
   * whose WRITE failed is aborted, since it has a hole. Reads and listings are closed. `reason`
   * says how the session ended; the audit event adds what became of the upload. Never throws.
   */
  async closeAll(reason: string): Promise<void> {
    const { handles, log } = this.#c;
    await Promise.all(
      handles.all().map(async (h) => {
        handles.delete(h);
        try {
          if (h.kind === 'write') await this.#leave(h, reason);
          else if (h.kind === 'read') {
            this.#emitTransfer(h, false, reason);
            await h.file.close();
          } else await h.pages.return?.();
        } catch (err) {
          log.warn('sftp: closing a handle at session end failed', {
            error: err instanceof Error ? err.message : String(err),
          });
        }
      }),
    );
  }

  /** An upload left open at the session's end: kept for resume or discarded; never throws. */
  async #leave(h: WriteFileHandle, reason: string): Promise<void> {
    if (h.failed !== null) {
      await this.#abort(h, `${reason}; an earlier write failed (${h.failed.message}), nothing was stored`);
      return;
    }
    let kept = false;
    try {
      kept = await h.file.commitPartial();
    } catch (err) {
      this.#c.log.warn('sftp: keeping a partial upload failed', { error: err instanceof Error ? err.message : String(err) });
      await this.#abort(h, `${reason}; keeping what arrived failed, nothing was stored`);
      return;
    }
    const what = kept ? `${h.file.size} bytes kept for resume` : 'discarded, nothing was stored';
    this.#emitTransfer(h, false, `${reason}; ${what}`);
  }

  // ------------------------------------------------------------------------ data

  async read(id: number, h: Handle, offset: number, length: number): Promise<Reply> {
    if (h.kind !== 'read') throw wrongKind(h, 'not open for reading');
    // Like OpenSSH: a READ longer than we allow gets a short reply, which clients handle.
    const len = Math.min(length, this.#c.maxIO);
    if (len === 0) {
      if (offset >= h.file.size) return eof(id);
      return { header: encodeDataHeader(id, 0), payload: [] };
    }
    const file = h.file;
    const payload = file.readv !== undefined ? await file.readv(offset, len) : [await file.read(offset, len)];
    let n = 0;
    for (let i = 0; i < payload.length; i++) {
      const v = payload[i]!;
      if (n + v.length > len) {
        // More than asked for: cut it, as a short read (never seen from our backends).
        payload[i] = v.subarray(0, len - n);
        payload.length = i + 1;
        n = len;
        break;
      }
      n += v.length;
    }
    if (n === 0) return eof(id);
    h.bytes += n;
    return { header: encodeDataHeader(id, n), payload };
  }

  /**
   * WRITE: strictly sequential, since the upload streams to S3 as it arrives; the backend checks
   * the offset (WriteOptions.mode says which it takes) and refuses any other with a message that
   * says why. The first failed WRITE (out of order, or refused by the store) marks the upload
   * failed: later WRITEs fail too and CLOSE aborts it, so a client that ignores an error cannot
   * commit a file with a hole.
   */
  async write(id: number, h: Handle, offset: number, data: Buffer): Promise<Reply> {
    if (h.kind !== 'write') throw wrongKind(h, 'not open for writing');
    if (h.failed !== null) {
      const message = `an earlier write on this handle failed (${h.failed.message}); the upload cannot complete`;
      throw new SftpStatusError(h.failed.status, message);
    }
    if (data.length > 0) {
      try {
        await h.file.write(offset, data);
      } catch (err) {
        h.failed = toFxStatus(err);
        throw err;
      }
    }
    return ok(id);
  }

  // ------------------------------------------------------------------------ attributes

  async fstat(id: number, h: Handle): Promise<Reply> {
    const backend = this.#c.backend;
    if (h.kind === 'write') {
      // The new object does not exist until CLOSE: report the upload as it stands (bytes it
      // continues included: WinSCP and `reput` resume from the size they see).
      const t = h.mtime ?? Math.floor(Date.now() / 1000);
      return encodeAttrsReply(id, { size: h.file.size, permissions: S_IFREG | 0o644, atime: t, mtime: t });
    }
    if (h.kind === 'read') {
      // The size is the one of the version being read (paramiko's prefetch sizes its reads by it).
      let st: FileAttrs;
      try {
        st = await backend.stat(h.path);
      } catch (err) {
        if (!(err instanceof BackendError && err.code === 'ENOENT')) throw err;
        st = { mode: S_IFREG | 0o644, size: h.file.size, mtime: 0, atime: 0 };
      }
      return encodeAttrsReply(id, fromFileAttrs({ ...st, size: h.file.size }));
    }
    return encodeAttrsReply(id, fromFileAttrs(await backend.stat(h.path)));
  }

  async fsetstat(id: number, h: Handle, attrs: Attrs): Promise<Reply> {
    if (h.kind !== 'write') {
      await setstatPath(this.#c.backend, h.path, attrs);
      return ok(id);
    }
    if (attrs.size !== undefined) await this.#truncate(h, attrs.size);
    if (attrs.mtime !== undefined) {
      h.file.setMtime(attrs.mtime);
      h.mtime = attrs.mtime;
    }
    // Permissions, owner and atime: accepted without effect (S3 has none of them).
    return ok(id);
  }

  /**
   * FSETSTAT SIZE on an upload. scp (OpenSSH ≥ 9.1, SFTP mode) opens WRITE|CREAT without TRUNC,
   * writes from 0 and then always sends SIZE = bytes written: that is the size the upload already
   * has, so it is a no-op. For an empty file sent over a non-empty one nothing was written, and the
   * handle still stands at the old size: an empty write at 0 starts the file again (a 'continue'
   * upload whose first write is at 0 replaces the file), so SIZE 0 holds. Any other size would be a
   * truncation or extension S3 cannot do in place, and is refused rather than ignored.
   */
  async #truncate(h: WriteFileHandle, size: number): Promise<void> {
    if (size === 0 && h.mode === 'continue' && h.file.size > 0 && h.file.bytesWritten === 0 && h.failed === null) {
      try {
        await h.file.write(0, Buffer.alloc(0));
      } catch (err) {
        h.failed = toFxStatus(err);
        throw err;
      }
    }
    const current = h.file.size;
    if (size !== current) {
      throw new SftpStatusError(
        FX.OP_UNSUPPORTED,
        `changing the size of an upload is not supported (size ${size}, the upload holds ${current} bytes)`,
      );
    }
  }

  /**
   * fsync@openssh.com (`sftp put -f`): there is nothing to flush, because an upload reaches S3
   * whole when the handle is closed. It runs in the handle's order, so OK still means every
   * earlier WRITE on the handle was accepted.
   */
  async fsync(id: number, h: Handle): Promise<Reply> {
    if (h.kind === 'dir') throw new SftpStatusError(FX.FAILURE, 'fsync needs a file handle, not a directory handle');
    return ok(id, 'nothing to flush: the file is stored in S3 when its handle is closed');
  }
}
