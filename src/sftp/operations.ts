import { performance } from 'node:perf_hooks';
import { fromFileAttrs, type Attrs } from './attrs.js';
import {
  encodeAttrsReply,
  encodeHandle,
  encodeLimitsReply,
  encodeName,
  encodeStatvfsReply,
  type NameEntry,
  type Request,
} from './codec.js';
import { checkFile } from './check-file.js';
import { FX, SSH_FXE_STATVFS } from './constants.js';
import { SftpStatusError, toFxStatus } from './errors.js';
import type { SftpEvent } from './events.js';
import {
  eof,
  Files,
  isDir,
  ok,
  setstatPath,
  tooManyHandles,
  wrongKind,
  type OperationsConfig,
  type Reply,
} from './files.js';
import type { Handle } from './handles.js';
import { longname } from './longname.js';
import { normalisePath } from './paths.js';

export type { DataReply, OperationsConfig, Reply } from './files.js';

/**
 * What each SFTP request means for the backend. `prepare` runs when the request is dispatched
 * (in arrival order): it normalises paths, resolves the handle, and names the request's ordering
 * keys; `run` does the work once the KeyedQueue says every earlier request on those keys has
 * finished. Path operations, directories and extensions are here; file handles are in files.ts.
 */
export interface Prepared {
  /** Ordering keys: "h…" for a handle, "p…" for a path. Empty: run at once. */
  keys: string[];
  run: () => Promise<Reply>;
}

/** READDIR reply bounds: entries (OpenSSH's sftp-server sends 100) and an approximate byte size. */
export const READDIR_MAX_ENTRIES = 100;
export const READDIR_MAX_BYTES = 64 * 1024;

const SYMLINKS = 'symbolic links are not supported on S3';

type PathEvent = 'mkdir' | 'rmdir' | 'remove' | 'setstat';

export class Operations {
  readonly #c: OperationsConfig;
  readonly #files: Files;

  constructor(config: OperationsConfig) {
    this.#c = config;
    this.#files = new Files(config);
  }

  /** Keeps or aborts uploads never closed and closes everything else (the end of the session). */
  closeAll(reason: string): Promise<void> {
    return this.#files.closeAll(reason);
  }

  /** Throws SftpStatusError / MalformedError for requests that fail before any work. */
  prepare(req: Request): Prepared {
    const id = req.id;
    const files = this.#files;
    switch (req.op) {
      case 'open': {
        const path = normalisePath(req.filename);
        return { keys: ['p' + path], run: () => files.open(id, path, req.pflags, req.attrs) };
      }
      case 'opendir': {
        const path = normalisePath(req.path);
        return { keys: ['p' + path], run: () => this.#opendir(id, path) };
      }
      case 'close': {
        const h = this.#handle(req.handle);
        // Refuse anything sent after CLOSE at once; what was sent before still runs first.
        h.closing = true;
        // A commit makes the object appear: path requests sent after CLOSE (WinSCP's SETSTAT of
        // the mtime, paramiko's STAT) must see it, so CLOSE of an upload also holds its path.
        const keys = h.kind === 'write' ? ['h' + h.key, 'p' + h.path] : ['h' + h.key];
        return { keys, run: () => files.close(id, h) };
      }
      case 'read': {
        const h = this.#handle(req.handle);
        return { keys: ['h' + h.key], run: () => files.read(id, h, req.offset, req.length) };
      }
      case 'write': {
        const h = this.#handle(req.handle);
        return { keys: ['h' + h.key], run: () => files.write(id, h, req.offset, req.data) };
      }
      case 'fstat': {
        const h = this.#handle(req.handle);
        return { keys: ['h' + h.key], run: () => files.fstat(id, h) };
      }
      case 'fsetstat': {
        const h = this.#handle(req.handle);
        return {
          keys: ['h' + h.key],
          run: () => this.#audited('setstat', h.path, () => files.fsetstat(id, h, req.attrs)),
        };
      }
      case 'fsync': {
        const h = this.#handle(req.handle);
        return { keys: ['h' + h.key], run: () => files.fsync(id, h) };
      }
      case 'readdir': {
        const h = this.#handle(req.handle);
        return { keys: ['h' + h.key], run: () => this.#readdir(id, h) };
      }
      case 'check-file-handle': {
        const h = this.#handle(req.handle);
        if (h.kind === 'write') {
          throw new SftpStatusError(FX.OP_UNSUPPORTED, `check-file: ${h.path} has a checksum once its upload is closed`);
        }
        if (h.kind !== 'read') throw wrongKind(h, 'not a file');
        const target = { path: h.path, size: h.file.size };
        return { keys: ['h' + h.key], run: () => checkFile(this.#c.backend, id, target, req) };
      }
      case 'check-file-name': {
        const path = normalisePath(req.path);
        return { keys: ['p' + path], run: () => checkFile(this.#c.backend, id, { path }, req) };
      }
      case 'fstatvfs': {
        const h = this.#handle(req.handle);
        return { keys: ['h' + h.key], run: () => this.#statvfs(id, h.path) };
      }
      case 'stat':
      case 'lstat': {
        // No symlinks on S3: LSTAT is STAT.
        const path = normalisePath(req.path);
        const backend = this.#c.backend;
        return { keys: ['p' + path], run: async () => encodeAttrsReply(id, fromFileAttrs(await backend.stat(path))) };
      }
      case 'setstat': {
        const path = normalisePath(req.path);
        return { keys: ['p' + path], run: () => this.#setstat(id, path, req.attrs) };
      }
      case 'remove':
      case 'mkdir':
      case 'rmdir': {
        const path = normalisePath(req.path);
        return { keys: ['p' + path], run: () => this.#pathOp(id, req.op, path) };
      }
      case 'rename':
      case 'posix-rename': {
        const from = normalisePath(req.oldpath);
        const to = normalisePath(req.newpath);
        // draft-02 RENAME fails when the target exists; posix-rename replaces it.
        const overwrite = req.op === 'posix-rename';
        return { keys: ['p' + from, 'p' + to], run: () => this.#rename(id, from, to, overwrite) };
      }
      case 'realpath': {
        // Pure normalisation, as OpenSSH's `sftp` needs at start-up (REALPATH ".") and for `cd`:
        // whether the path exists is for the STAT that follows.
        const path = normalisePath(req.path);
        return { keys: [], run: async () => encodeName(id, [{ filename: path, longname: path, attrs: {} }]) };
      }
      case 'statvfs': {
        const path = normalisePath(req.path);
        return { keys: ['p' + path], run: () => this.#statvfs(id, path) };
      }
      case 'limits':
        return { keys: [], run: async () => this.#limits(id) };
      case 'readlink':
      case 'symlink':
        // Parsed in full first (a malformed one is BAD_MESSAGE), then refused.
        throw new SftpStatusError(FX.OP_UNSUPPORTED, SYMLINKS);
      case 'extended':
        throw new SftpStatusError(FX.OP_UNSUPPORTED, `the extension "${req.name}" is not supported`);
      case 'unknown':
        throw new SftpStatusError(FX.OP_UNSUPPORTED, `packet type ${req.type} is not a request this server knows`);
    }
  }

  #handle(wire: Uint8Array): Handle {
    const h = this.#c.handles.get(wire);
    if (h === undefined) throw new SftpStatusError(FX.FAILURE, 'invalid handle: not open, or already closed');
    return h;
  }

  #emit(e: SftpEvent): void {
    this.#c.emit(e);
  }

  // ------------------------------------------------------------------------ path operations

  /** Runs a path operation and reports it to the audit stream, successful or not. */
  async #audited(type: PathEvent, path: string, fn: () => Promise<Reply>): Promise<Reply> {
    try {
      const r = await fn();
      this.#emit({ type, path, ok: true });
      return r;
    } catch (err) {
      this.#emit({ type, path, ok: false, error: toFxStatus(err).message });
      throw err;
    }
  }

  #pathOp(id: number, type: 'mkdir' | 'rmdir' | 'remove', path: string): Promise<Reply> {
    const b = this.#c.backend;
    return this.#audited(type, path, async () => {
      // MKDIR's ATTRS (permissions) have nothing to apply to on S3.
      if (type === 'mkdir') await b.mkdir(path);
      else if (type === 'rmdir') await b.rmdir(path);
      else await b.remove(path);
      return ok(id);
    });
  }

  #setstat(id: number, path: string, attrs: Attrs): Promise<Reply> {
    return this.#audited('setstat', path, async () => {
      await setstatPath(this.#c.backend, path, attrs);
      return ok(id);
    });
  }

  async #rename(id: number, from: string, to: string, overwrite: boolean): Promise<Reply> {
    try {
      await this.#c.backend.rename(from, to, overwrite);
    } catch (err) {
      this.#emit({ type: 'rename', from, to, overwrite, ok: false, error: toFxStatus(err).message });
      throw err;
    }
    this.#emit({ type: 'rename', from, to, overwrite, ok: true });
    return ok(id);
  }

  // ------------------------------------------------------------------------ directories

  async #opendir(id: number, path: string): Promise<Reply> {
    const { backend, handles } = this.#c;
    if (!handles.reserve()) throw tooManyHandles(handles);
    try {
      const st = await backend.stat(path);
      if (!isDir(st)) throw new SftpStatusError(FX.FAILURE, `${path} is not a directory`);
      const pages = backend.list(path)[Symbol.asyncIterator]();
      const h = handles.add({ kind: 'dir', path, pages, openedAt: performance.now(), page: [], pos: 0, done: false });
      return encodeHandle(id, h.handle);
    } catch (err) {
      handles.release();
      throw err;
    }
  }

  /**
   * One NAME of up to READDIR_MAX_ENTRIES from the backend's pages, EOF after the last. A new
   * page is fetched only when the reply would otherwise be empty, so the first names of a huge
   * directory go out as soon as the first page arrives, and only one page is ever held.
   * "." and ".." are not listed: S3 has no such entries, OpenSSH's `ls` hides them anyway, and
   * GUI clients (WinSCP, FileZilla) add their own "..".
   */
  async #readdir(id: number, h: Handle): Promise<Reply> {
    if (h.kind !== 'dir') throw wrongKind(h, 'not a directory handle');
    const entries: NameEntry[] = [];
    let bytes = 0;
    const now = Date.now() / 1000;
    while (entries.length < READDIR_MAX_ENTRIES && bytes < READDIR_MAX_BYTES) {
      if (h.pos >= h.page.length) {
        h.page = [];
        h.pos = 0;
        if (h.done || entries.length > 0) break;
        const next = await h.pages.next();
        if (next.done) {
          h.done = true;
          break;
        }
        h.page = next.value;
        continue;
      }
      const e = h.page[h.pos++]!;
      entries.push({ filename: e.name, longname: longname(e.name, e.attrs, now), attrs: fromFileAttrs(e.attrs) });
      bytes += 2 * Buffer.byteLength(e.name) + 96;
    }
    if (entries.length === 0) return eof(id);
    return encodeName(id, entries);
  }

  // ------------------------------------------------------------------------ extensions

  async #statvfs(id: number, path: string): Promise<Reply> {
    const s = await this.#c.backend.statfs(path);
    return encodeStatvfsReply(id, {
      bsize: s.blockSize,
      frsize: s.blockSize,
      blocks: s.blocks,
      bfree: s.freeBlocks,
      bavail: s.freeBlocks,
      files: s.files,
      ffree: s.freeFiles,
      favail: s.freeFiles,
      fsid: 0,
      flag: SSH_FXE_STATVFS.ST_NOSUID,
      namemax: s.nameMax,
    });
  }

  #limits(id: number): Reply {
    return encodeLimitsReply(id, {
      maxPacketLength: this.#c.maxPacket,
      maxReadLength: this.#c.maxIO,
      maxWriteLength: this.#c.maxIO,
      maxOpenHandles: this.#c.handles.max,
    });
  }
}
