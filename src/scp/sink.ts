import { BackendError, S_IFDIR, S_IFMT, type FileAttrs, type WriteHandle } from '../backend.js';
import { MAX_DEPTH, describe, joinPath, ScpStop, type ScpContext } from './context.js';
import { ScpGoneError } from './input.js';
import { errorRecord, parseRecord, ScpProtocolError } from './protocol.js';

/**
 * The sink (`scp -t`): we receive. OpenSSH scp.c sink(), with S3 underneath:
 * - \0 first; then per record a reply: \0 when accepted, a \x01 line when this file or directory
 *   failed (the client skips it and goes on), a \x02 line and the end for a protocol error.
 * - A C record opens an upload with the size known (the backend picks its parts), the data is
 *   written piece by piece, each write awaited, and the object is committed only after the
 *   sender's trailing \0. A failed write keeps reading (and dropping) the rest of the file so
 *   the stream stays in step, then reports; a cut-off or failed file is aborted, never stored.
 * - T times go to the next C as the object's mtime. Directories on S3 have no times of their
 *   own, so a T before D is accepted and has no effect.
 */
export async function runSink(ctx: ScpContext): Promise<void> {
  const target = ctx.cmd.paths[0]!;
  // -d (scp sends it for several sources, and parseScpCommand sets it for a target ending in
  // "/"): the target is a directory. On S3 a prefix with nothing under it yet is as good as
  // one, so a missing target is made (backend.mkdir, as for D) and only a file in the way, or
  // a directory we may not make, is an error.
  const stat = await statOrNull(ctx, target);
  let targetIsDir = stat !== null && (stat.mode & S_IFMT) === S_IFDIR;
  if (ctx.cmd.targetIsDir && !targetIsDir) {
    try {
      if (stat !== null) throw new BackendError('ENOTDIR', `not a directory: ${target}`);
      await ensureDirectory(ctx, target);
      targetIsDir = true;
    } catch (err) {
      ctx.errors++;
      await ctx.write(errorRecord(true, `${target}: ${describe(err, ctx.log)}`));
      throw new ScpStop('target is not a directory');
    }
  }
  await ctx.write('\0');
  await level(ctx, target, targetIsDir, 0);
}

async function statOrNull(ctx: ScpContext, path: string): Promise<FileAttrs | null> {
  try {
    return await ctx.backend.stat(path);
  } catch {
    return null;
  }
}

/** One directory level: records until E (depth > 0) or the end of input (depth 0). */
async function level(ctx: ScpContext, dir: string, dirIsDir: boolean, depth: number): Promise<void> {
  let mtime: number | undefined;
  for (;;) {
    const line = await ctx.input.readLine();
    if (line === null) {
      if (depth > 0) throw new ScpGoneError('connection closed inside a directory');
      return;
    }
    const rec = parseRecord(line);
    switch (rec.type) {
      case 'warning':
        // The sender could not read something; it tells us and goes on. No reply (scp.c sink).
        ctx.errors++;
        continue;
      case 'fatal':
        ctx.errors++;
        throw new ScpStop('the client sent a fatal error');
      case 'E':
        if (depth === 0) throw new ScpProtocolError('E outside a directory');
        await ctx.write('\0');
        return;
      case 'T':
        mtime = rec.mtime;
        await ctx.write('\0');
        continue;
      case 'D': {
        if (!ctx.cmd.recursive) throw new ScpProtocolError('received directory without -r');
        if (depth + 1 > MAX_DEPTH) throw new ScpProtocolError('directories nested too deeply');
        mtime = undefined;
        const path = dirIsDir ? joinPath(dir, rec.name) : dir;
        try {
          await ensureDirectory(ctx, path);
        } catch (err) {
          await ctx.warn(path, err); // the client skips this directory
          continue;
        }
        await ctx.write('\0');
        await level(ctx, path, true, depth + 1);
        continue;
      }
      case 'C': {
        const path = dirIsDir ? joinPath(dir, rec.name) : dir;
        const t = mtime;
        mtime = undefined;
        await receiveFile(ctx, path, rec.size, t);
        continue;
      }
    }
  }
}

async function ensureDirectory(ctx: ScpContext, path: string): Promise<void> {
  try {
    const attrs = await ctx.backend.stat(path);
    if ((attrs.mode & S_IFMT) === S_IFDIR) return;
    throw new BackendError('ENOTDIR', `not a directory: ${path}`);
  } catch (err) {
    if (!(err instanceof BackendError) || err.code !== 'ENOENT') throw err;
  }
  try {
    await ctx.backend.mkdir(path);
  } catch (err) {
    // Made by someone else in the meantime is fine.
    if (!(err instanceof BackendError) || err.code !== 'EEXIST') throw err;
  }
}

async function receiveFile(ctx: ScpContext, path: string, size: number, mtime: number | undefined): Promise<void> {
  const start = Date.now();
  let bytes = 0;
  const report = (ok: boolean, error?: string) =>
    ctx.event({ type: 'upload', path, bytes, ms: Date.now() - start, ok, ...(error === undefined ? {} : { error }) });

  let handle: WriteHandle;
  try {
    handle = await ctx.backend.openWrite(path, {
      exclusive: false,
      expectedSize: size,
      ...(mtime === undefined ? {} : { mtime }),
    });
  } catch (err) {
    report(false, errorText(err));
    await ctx.warn(path, err); // no data follows: the client skips the file
    return;
  }
  let failure: unknown = null;
  try {
    await ctx.write('\0');
    await ctx.input.readData(size, async (piece) => {
      if (failure !== null) return; // drained and dropped: the stream must stay in step
      try {
        await handle.write(bytes, piece);
        bytes += piece.length;
      } catch (err) {
        failure = err;
        await handle.abort();
      }
    });
    // The sender's trailing byte: \0, or \x01/\x02 and a message if it could not read its file.
    // libssh2 (curl scp://) sends no trailing \0: it ends the channel after the data. Every byte
    // the C record promised has arrived, so the file is whole and is committed.
    const ok = await ctx.response(true);
    if (!ok) failure ??= new ScpProtocolError('the client reported an error reading its file');
    if (failure === null) {
      try {
        await handle.commit();
      } catch (err) {
        failure = err;
      }
    }
  } catch (err) {
    await handle.abort();
    report(false, errorText(err));
    throw err;
  }
  if (failure !== null) {
    await handle.abort();
    report(false, errorText(failure));
    await ctx.warn(path, failure);
    return;
  }
  report(true);
  if (!ctx.input.ended) await ctx.write('\0');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
