import zlib from 'node:zlib';
import {
  BackendError,
  S_IFDIR,
  S_IFREG,
  type Backend,
  type DirEntry,
  type FileAttrs,
  type FsStats,
  type ReadHandle,
  type StoredChecksum,
  type WriteHandle,
  type WriteOptions,
} from '../../src/backend.js';

/**
 * A Backend held in memory: a tree of directories and files with S3's rules where the protocols
 * can see them. Uploads are sequential (a write at any offset but `size` is EINVAL, as a
 * multipart upload will be), appear only at commit, and vanish on abort; renaming a directory is
 * ENOTSUP. The write modes are the interface's (src/backend.ts WriteOptions.mode): 'continue'
 * resumes at the file's size or replaces it from 0, 'append' puts every write at the end; and
 * commitPartial keeps what arrived under the same rule as the S3 backend (the setting is 'keep',
 * something arrived, and the file was new or this upload continues it). Used by the SFTP unit
 * tests and by scripts/sftp-stdio.ts (OpenSSH `sftp -D`).
 *
 * It insists on normalised absolute paths, so a test fails loudly if a protocol hands it
 * anything else. `before` lets a test delay or fail any operation; `calls` records them.
 */
export type MemoryOp =
  | 'stat'
  | 'list'
  | 'openRead'
  | 'read'
  | 'openWrite'
  | 'write'
  | 'commit'
  | 'commitPartial'
  | 'abort'
  | 'mkdir'
  | 'rmdir'
  | 'remove'
  | 'rename'
  | 'setstat'
  | 'statfs'
  | 'checksum';

export interface MemoryBackendOptions {
  /** Entries per list() page (default 1000, like ListObjectsV2). */
  pageSize?: number;
  /** Runs before every operation; may wait (to test ordering and backpressure) or throw. */
  before?: (op: MemoryOp, path: string) => void | Promise<void>;
  /**
   * Read handles also offer `readv`, answering each read in pieces cut at uneven points (one of
   * them empty), as the S3 backend answers with views of the HTTP chunks a read spans.
   */
  readv?: boolean;
  /**
   * Offer Backend.checksum: the CRC32 of a file's bytes, as an upload would have stored it, except
   * for paths in `withoutChecksum` (files stored before checksums, or by another tool).
   */
  checksums?: boolean;
  /** What commitPartial does when it may keep an upload (the gateway's --partial-uploads; default keep). */
  partialUploads?: 'keep' | 'discard';
}

interface DirNode {
  kind: 'dir';
  children: Map<string, Node>;
  mtime: number;
}
interface FileNode {
  kind: 'file';
  data: Buffer;
  mtime: number;
}
type Node = DirNode | FileNode;

const FILE_MODE = S_IFREG | 0o644;
const DIR_MODE = S_IFDIR | 0o755;
const now = (): number => Math.floor(Date.now() / 1000);

export class MemoryBackend implements Backend {
  readonly root: DirNode = { kind: 'dir', children: new Map(), mtime: now() };
  pageSize: number;
  before: MemoryBackendOptions['before'];
  /** "op path" for every operation, in call order. */
  readonly calls: string[] = [];
  /** Uploads opened and neither committed nor aborted. */
  readonly pending = new Set<WriteHandle>();
  committed = 0;
  aborted = 0;
  /** Uploads left open that commitPartial stored. */
  kept = 0;
  partialUploads: 'keep' | 'discard';
  /** Operations running right now, and the most that ever ran at once. */
  active = 0;
  maxActive = 0;
  readonly #readv: boolean;
  /** Files that have no stored checksum (with `checksums`). */
  readonly withoutChecksum = new Set<string>();
  checksum?: (path: string) => Promise<StoredChecksum | undefined>;

  constructor(opts: MemoryBackendOptions = {}) {
    this.pageSize = opts.pageSize ?? 1000;
    this.before = opts.before;
    this.#readv = opts.readv ?? false;
    if (opts.checksums) {
      this.checksum = (path) =>
        this.#op('checksum', path, () => {
          const n = this.#need(path);
          if (n.kind !== 'file') throw new BackendError('EISDIR', `${path}: is a directory`);
          if (this.withoutChecksum.has(path)) return undefined;
          const value = Buffer.alloc(4);
          value.writeUInt32BE(zlib.crc32(n.data) >>> 0, 0);
          return { algorithm: 'crc32' as const, value };
        });
    }
    this.partialUploads = opts.partialUploads ?? 'keep';
  }

  // ------------------------------------------------------------------ test helpers

  /** Creates a file (and its parent directories). */
  putFile(path: string, data: Buffer | string, mtime = now()): void {
    const { parent, name } = this.#parentOf(path, true);
    parent.children.set(name, { kind: 'file', data: Buffer.from(data), mtime });
  }

  mkdirp(path: string): void {
    let dir = this.root;
    for (const part of split(path)) {
      let next = dir.children.get(part);
      if (next === undefined) {
        next = { kind: 'dir', children: new Map(), mtime: now() };
        dir.children.set(part, next);
      }
      if (next.kind !== 'dir') throw new Error(`${path}: a file is in the way`);
      dir = next;
    }
  }

  /** The bytes of a file, or undefined. */
  file(path: string): Buffer | undefined {
    const n = this.#lookup(path);
    return n?.kind === 'file' ? n.data : undefined;
  }

  exists(path: string): boolean {
    return this.#lookup(path) !== undefined;
  }

  // ------------------------------------------------------------------ Backend

  async stat(path: string): Promise<FileAttrs> {
    return this.#op('stat', path, () => attrsOf(this.#need(path)));
  }

  list(path: string): AsyncIterable<DirEntry[]> {
    const self = this;
    return {
      async *[Symbol.asyncIterator]() {
        const dir = await self.#op('list', path, () => {
          const n = self.#need(path);
          if (n.kind !== 'dir') throw new BackendError('ENOTDIR', `not a directory: ${path}`);
          return n;
        });
        // A snapshot, like a listing that has started: later changes are not seen.
        const entries = [...dir.children.entries()]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([name, n]) => ({ name, attrs: attrsOf(n) }));
        for (let i = 0; i < entries.length; i += self.pageSize) {
          yield entries.slice(i, i + self.pageSize);
        }
      },
    };
  }

  async openRead(path: string): Promise<ReadHandle> {
    const data = await this.#op('openRead', path, () => {
      const n = this.#need(path);
      if (n.kind === 'dir') throw new BackendError('EISDIR', `is a directory: ${path}`);
      return n.data;
    });
    let closed = false;
    const read = (offset: number, length: number): Promise<Buffer> =>
      this.#op('read', path, () => {
        if (closed) throw new BackendError('EINVAL', 'read after close');
        return data.subarray(Math.min(offset, data.length), Math.min(offset + length, data.length));
      });
    const handle: ReadHandle = {
      size: data.length,
      read,
      close: async () => {
        closed = true;
      },
    };
    if (this.#readv) {
      handle.readv = async (offset, length) => {
        const b = await read(offset, length);
        if (b.length === 0) return [];
        const a = Math.floor(b.length / 3) + 1;
        const c = Math.min(b.length, a + 7);
        return [b.subarray(0, a), b.subarray(a, a), b.subarray(a, c), b.subarray(c)];
      };
    }
    return handle;
  }

  async openWrite(path: string, options: WriteOptions): Promise<WriteHandle> {
    const mode = options.mode ?? 'replace';
    const existing = await this.#op('openWrite', path, () => {
      this.#checkWritable(path, options.exclusive);
      const n = this.#lookup(path);
      return n?.kind === 'file' ? n.data : null;
    });
    // The bytes this upload continues: the file as it was at OPEN (S3: the version copied).
    let head = mode === 'replace' || existing === null ? Buffer.alloc(0) : existing;
    /** For 'continue': the first write decides between resuming (at the size) and replacing (at 0). */
    let decided = mode !== 'continue';
    const chunks: Buffer[] = [];
    let bytesWritten = 0;
    let mtime = options.mtime;
    let state: 'open' | 'committed' | 'aborted' = 'open';
    const store = (): void => {
      const { parent, name } = this.#parentOf(path, false);
      if (mode === 'continue' && !decided && existing !== null) {
        // Nothing written: the file stays as it was (its mtime too, unless one was set).
        const n = parent.children.get(name);
        if (n?.kind === 'file' && mtime !== undefined) n.mtime = mtime;
        return;
      }
      parent.children.set(name, { kind: 'file', data: Buffer.concat([head, ...chunks]), mtime: mtime ?? now() });
    };
    const handle: WriteHandle = {
      get bytesWritten() {
        return bytesWritten;
      },
      get size() {
        return head.length + bytesWritten;
      },
      write: (offset, data) =>
        this.#op('write', path, () => {
          if (state !== 'open') throw new BackendError('EINVAL', `write after the upload was ${state}`);
          const size = head.length + bytesWritten;
          if (mode === 'append') offset = size;
          if (!decided) {
            if (offset !== size && offset !== 0) {
              // The S3 backend's words (src/s3/upload.ts), so the tests see what clients see.
              throw new BackendError(
                'EINVAL',
                `${path}: a write to an existing file must start at 0 (to replace it) or at its end, ` +
                  `offset ${size} (to continue it); got offset ${offset}`,
              );
            }
            if (offset === 0) head = Buffer.alloc(0);
            decided = true;
          } else if (offset !== size) {
            throw new BackendError(
              'EINVAL',
              `writes must be sequential: got offset ${offset}, expected ${size} (S3 objects cannot be written out of order)`,
            );
          }
          // A copy, as the S3 backend copies into its part buffer: the request buffer is not ours.
          chunks.push(Buffer.from(data));
          bytesWritten += data.length;
        }),
      setMtime: (t) => {
        mtime = t;
      },
      commit: () =>
        this.#op('commit', path, () => {
          if (state !== 'open') throw new BackendError('EINVAL', `commit after the upload was ${state}`);
          this.#checkWritable(path, options.exclusive);
          store();
          state = 'committed';
          this.pending.delete(handle);
          this.committed++;
        }),
      commitPartial: async () => {
        if (state !== 'open') return false;
        // Keeping destroys nothing when the file was new (or empty) or this upload continues it.
        const destroys = existing !== null && existing.length > 0 && head !== existing;
        const keep = this.partialUploads === 'keep' && bytesWritten > 0 && !destroys;
        if (!keep) {
          await handle.abort();
          return false;
        }
        await this.#op('commitPartial', path, () => {
          this.#checkWritable(path, false);
          store();
        });
        state = 'committed';
        this.pending.delete(handle);
        this.kept++;
        return true;
      },
      abort: async () => {
        this.calls.push(`abort ${path}`);
        if (state !== 'open') return;
        state = 'aborted';
        chunks.length = 0;
        this.pending.delete(handle);
        this.aborted++;
      },
    };
    this.pending.add(handle);
    return handle;
  }

  async mkdir(path: string): Promise<void> {
    return this.#op('mkdir', path, () => {
      if (path === '/') throw new BackendError('EEXIST', 'the root directory exists');
      const { parent, name } = this.#parentOf(path, false);
      if (parent.children.has(name)) throw new BackendError('EEXIST', `already exists: ${path}`);
      parent.children.set(name, { kind: 'dir', children: new Map(), mtime: now() });
    });
  }

  async rmdir(path: string): Promise<void> {
    return this.#op('rmdir', path, () => {
      if (path === '/') throw new BackendError('ENOTSUP', 'the root directory cannot be removed');
      const n = this.#need(path);
      if (n.kind !== 'dir') throw new BackendError('ENOTDIR', `not a directory: ${path}`);
      if (n.children.size > 0) throw new BackendError('ENOTEMPTY', `directory not empty: ${path}`);
      this.#parentOf(path, false).parent.children.delete(baseName(path));
    });
  }

  async remove(path: string): Promise<void> {
    return this.#op('remove', path, () => {
      const n = this.#need(path);
      if (n.kind === 'dir') throw new BackendError('EISDIR', `is a directory (use rmdir): ${path}`);
      this.#parentOf(path, false).parent.children.delete(baseName(path));
    });
  }

  async rename(from: string, to: string, overwrite: boolean): Promise<void> {
    return this.#op('rename', from, () => {
      const n = this.#need(from);
      if (n.kind === 'dir') throw new BackendError('ENOTSUP', `renaming a directory is not supported on S3: ${from}`);
      const { parent, name } = this.#parentOf(to, false);
      const target = parent.children.get(name);
      if (target?.kind === 'dir') throw new BackendError('EISDIR', `the target is a directory: ${to}`);
      if (from === to) return;
      if (target !== undefined && !overwrite) throw new BackendError('EEXIST', `the target exists: ${to}`);
      parent.children.set(name, n);
      this.#parentOf(from, false).parent.children.delete(baseName(from));
    }, to);
  }

  async setstat(path: string, attrs: Partial<FileAttrs>): Promise<void> {
    return this.#op('setstat', path, () => {
      const n = this.#need(path);
      if (attrs.mtime !== undefined) n.mtime = attrs.mtime;
    });
  }

  async statfs(path: string): Promise<FsStats> {
    return this.#op('statfs', path, () => {
      this.#need(path);
      return { blockSize: 4096, blocks: 1 << 30, freeBlocks: 1 << 29, files: 1 << 20, freeFiles: 1 << 19, nameMax: 1024 };
    });
  }

  // ------------------------------------------------------------------ internals

  async #op<T>(op: MemoryOp, path: string, fn: () => T, also?: string): Promise<T> {
    checkPath(path);
    if (also !== undefined) checkPath(also);
    this.calls.push(also === undefined ? `${op} ${path}` : `${op} ${path} ${also}`);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await this.before?.(op, path);
      return fn();
    } finally {
      this.active--;
    }
  }

  #checkWritable(path: string, exclusive: boolean): void {
    const { parent, name } = this.#parentOf(path, false);
    const existing = parent.children.get(name);
    if (existing?.kind === 'dir') throw new BackendError('EISDIR', `is a directory: ${path}`);
    if (existing !== undefined && exclusive) throw new BackendError('EEXIST', `already exists: ${path}`);
  }

  #lookup(path: string): Node | undefined {
    let n: Node = this.root;
    for (const part of split(path)) {
      if (n.kind !== 'dir') return undefined;
      const next: Node | undefined = n.children.get(part);
      if (next === undefined) return undefined;
      n = next;
    }
    return n;
  }

  #need(path: string): Node {
    const n = this.#lookup(path);
    if (n === undefined) throw new BackendError('ENOENT', `no such file or directory: ${path}`);
    return n;
  }

  #parentOf(path: string, create: boolean): { parent: DirNode; name: string } {
    const parts = split(path);
    const name = parts.pop();
    if (name === undefined) throw new BackendError('EINVAL', 'the root has no parent');
    const dirPath = '/' + parts.join('/');
    if (create) this.mkdirp(dirPath);
    const parent = this.#lookup(dirPath);
    if (parent === undefined) throw new BackendError('ENOENT', `no such directory: ${dirPath}`);
    if (parent.kind !== 'dir') throw new BackendError('ENOTDIR', `not a directory: ${dirPath}`);
    return { parent, name };
  }
}

function attrsOf(n: Node): FileAttrs {
  return n.kind === 'dir'
    ? { mode: DIR_MODE, size: 0, mtime: n.mtime, atime: n.mtime }
    : { mode: FILE_MODE, size: n.data.length, mtime: n.mtime, atime: n.mtime };
}

/** The backend contract: absolute, normalised paths only. A protocol bug shows up here. */
function checkPath(path: string): void {
  const ok =
    path === '/' ||
    (path.startsWith('/') &&
      !path.endsWith('/') &&
      !path.includes('\0') &&
      path
        .slice(1)
        .split('/')
        .every((p) => p !== '' && p !== '.' && p !== '..'));
  if (!ok) throw new Error(`MemoryBackend was given a path that is not normalised: ${JSON.stringify(path)}`);
}

function split(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
