import { BackendError, S_IFDIR, S_IFMT, type FileAttrs, type ReadHandle } from '../backend.js';
import { baseName } from '../sftp/paths.js';
import { MAX_DEPTH, joinPath, type ScpContext } from './context.js';
import { expandGlob, hasGlob, unescapeGlob } from './glob.js';
import { errorRecord, fileRecord, timesRecord } from './protocol.js';

/** Bytes asked of the backend per read; the ranged GETs behind it are the backend's choice. */
const READ_CHUNK = 256 * 1024;
/** Zeros that stand in for bytes a failed read could not supply (as OpenSSH's source does). */
const ZEROS = Buffer.alloc(32 * 1024);
// eslint-disable-next-line no-control-regex
const UNSENDABLE = /[\u0000-\u001f\u007f]/;

/**
 * The source (`scp -f`): we send. OpenSSH scp.c source()/rsource():
 * - wait for the client's \0; then per path: [T, ack] C, ack, the data, \0, ack; with -r a
 *   directory is [T, ack] D, ack, its entries, E, ack.
 * - Globs are expanded here, since no shell did (src/scp/glob.ts). A path that is missing or
 *   cannot be read gets a \x01 line and the rest goes on; the exit status is then 1.
 * - A file's size is fixed by openRead (S3: HeadObject, and every ranged GET is pinned to that
 *   ETag). If a read fails midway the promised size is made up with zeros and the \0 after the
 *   data becomes a \x01 line, so the client keeps in step and reports the file as failed.
 */
export async function runSource(ctx: ScpContext): Promise<void> {
  if (!(await ctx.response())) return;
  for (const pattern of ctx.cmd.paths) {
    let paths: string[];
    if (hasGlob(pattern)) {
      try {
        paths = await expandGlob(ctx.backend, pattern);
      } catch (err) {
        await ctx.warn(pattern, err);
        continue;
      }
      if (paths.length === 0) {
        await ctx.warn(pattern, new BackendError('ENOENT', 'no match'));
        continue;
      }
    } else {
      paths = [unescapeGlob(pattern)];
    }
    for (const p of paths) await sendPath(ctx, p, null, 0);
  }
}

/** Sends a file or (with -r) a directory; `listed` are attributes a listing already gave. */
async function sendPath(ctx: ScpContext, path: string, listed: FileAttrs | null, depth: number): Promise<void> {
  const name = baseName(path);
  if (name === '') {
    await ctx.warn(path, new BackendError('EINVAL', 'the root cannot be copied; name a bucket'));
    return;
  }
  if (UNSENDABLE.test(name)) {
    // A newline would break the record; other control characters would reach a terminal.
    await ctx.warn(path, new BackendError('EINVAL', 'name has control characters; not sent'));
    return;
  }
  let attrs = listed;
  // A listing has no metadata; with -p the stored mtime needs a stat (S3: HeadObject).
  if (attrs === null || (ctx.cmd.preserve && (attrs.mode & S_IFMT) !== S_IFDIR)) {
    try {
      attrs = await ctx.backend.stat(path);
    } catch (err) {
      if (attrs === null) {
        await ctx.warn(path, err);
        return;
      }
    }
  }
  if ((attrs.mode & S_IFMT) === S_IFDIR) {
    if (!ctx.cmd.recursive) {
      await ctx.warn(path, new BackendError('EINVAL', 'not a regular file'));
      return;
    }
    await sendDirectory(ctx, path, name, attrs, depth);
    return;
  }
  await sendFile(ctx, path, name, attrs);
}

async function sendDirectory(ctx: ScpContext, path: string, name: string, attrs: FileAttrs, depth: number): Promise<void> {
  if (depth >= MAX_DEPTH) {
    await ctx.warn(path, new BackendError('EINVAL', 'directories nested too deeply'));
    return;
  }
  if (ctx.cmd.preserve) {
    await ctx.write(timesRecord(attrs.mtime, attrs.atime));
    if (!(await ctx.response())) return;
  }
  await ctx.write(fileRecord('D', 0o755, 0, name));
  if (!(await ctx.response())) return;
  try {
    for await (const page of ctx.backend.list(path)) {
      for (const e of page) await sendPath(ctx, joinPath(path, e.name), e.attrs, depth + 1);
    }
  } catch (err) {
    await ctx.warn(path, err);
  }
  await ctx.write('E\n');
  await ctx.response();
}

async function sendFile(ctx: ScpContext, path: string, name: string, attrs: FileAttrs): Promise<void> {
  const start = Date.now();
  let bytes = 0;
  const report = (ok: boolean, error?: string) =>
    ctx.event({ type: 'download', path, bytes, ms: Date.now() - start, ok, ...(error === undefined ? {} : { error }) });

  let h: ReadHandle;
  try {
    h = await ctx.backend.openRead(path);
  } catch (err) {
    report(false, errorText(err));
    await ctx.warn(path, err);
    return;
  }
  let readError: unknown = null;
  try {
    if (ctx.cmd.preserve) {
      await ctx.write(timesRecord(attrs.mtime, attrs.atime));
      if (!(await ctx.response())) return report(false, 'refused by the client');
    }
    const mode = attrs.mode & 0o7777 || 0o644;
    await ctx.write(fileRecord('C', mode, h.size, name));
    if (!(await ctx.response())) return report(false, 'refused by the client');
    let off = 0;
    while (off < h.size) {
      const want = Math.min(READ_CHUNK, h.size - off);
      if (readError === null) {
        try {
          const pieces = h.readv !== undefined ? await h.readv(off, want) : [await h.read(off, want)];
          let got = 0;
          for (const p of pieces) {
            const piece = p.length > want - got ? p.subarray(0, want - got) : p;
            if (piece.length === 0) continue;
            await ctx.write(piece);
            got += piece.length;
          }
          if (got === 0) throw new BackendError('EIO', 'the object ended before its size');
          off += got;
          bytes = off;
          continue;
        } catch (err) {
          if (!(err instanceof BackendError)) throw err;
          readError = err;
        }
      }
      const n = Math.min(ZEROS.length, h.size - off);
      await ctx.write(ZEROS.subarray(0, n));
      off += n;
    }
    if (readError !== null) {
      ctx.errors++;
      await ctx.write(errorRecord(false, `${path}: ${errorText(readError)}`));
    } else {
      await ctx.write('\0');
    }
    const ok = await ctx.response();
    if (readError !== null) report(false, errorText(readError));
    else if (!ok) report(false, 'the client reported an error');
    else report(true);
  } catch (err) {
    report(false, errorText(err));
    throw err;
  } finally {
    await h.close().catch(() => {});
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
