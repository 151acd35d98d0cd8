/**
 * WinSCP's upload flow made cheap on S3. By default WinSCP uploads a file over 100 KiB as
 * `name.filepart`, CLOSEs it, REMOVEs `name` if it exists, RENAMEs `name.filepart` to `name`, and
 * sets the mtime. S3 has no rename: a rename is a copy of every byte plus a delete, so for a
 * 6 GiB file the rename would cost a second upload's worth of S3 work after the real one.
 *
 * Instead, for WinSCP (the gateway knows it by its SSH version string and sets the backend's
 * parkFileparts), an upload of `name.filepart` whose `name` and `name.filepart` do not exist yet
 * is made *at `name`* and *parked* at CLOSE: every part is stored, only the last step (PutObject, or
 * CompleteMultipartUpload) waits. Then:
 *   - RENAME name.filepart → name finishes it at `name`: no copy at all;
 *   - STAT of either name, and REMOVE of `name`, are answered as if `name.filepart` existed
 *     (WinSCP sends them between CLOSE and RENAME);
 *   - REMOVE of `name.filepart` discards it;
 *   - anything else on the session, its end, or PARK_MS without a word *materializes* it at
 *     `name.filepart`: a single part with one PutObject there, a multipart upload completed at
 *     `name` (only if `name` is still absent, If-None-Match), copied to `name.filepart` and
 *     deleted from `name`. That costs what the rename would have, and only in that case.
 *
 * When `name` exists at OPEN the upload is an ordinary one: materializing would then replace
 * `name` for a moment, which nobody asked for. The parked state lives in this gateway only: if
 * the gateway dies between CLOSE and RENAME the upload is lost and WinSCP's RENAME fails (it
 * reports the error); the window is one round trip.
 */
import type { FileAttrs } from '../backend.js';
import { S_IFREG } from '../backend.js';
import type { Logger } from '../log.js';
import { escapePeer } from '../log.js';
import type { S3WriteHandle } from './upload.js';

export const FILEPART = '.filepart';
/** How long a parked upload waits for its rename before it is materialized. */
export const PARK_MS = 15_000;

/** The final key of a `name.filepart` key, or undefined when `key` is not one. */
export function filepartTarget(key: string): string | undefined {
  if (!key.endsWith(FILEPART)) return undefined;
  const base = key.slice(0, -FILEPART.length);
  if (base === '' || base.endsWith('/')) return undefined;
  return base;
}

export interface Parked {
  /** "/bucket/name.filepart" and "/bucket/name". */
  readonly path: string;
  readonly finalPath: string;
  readonly bucket: string;
  readonly key: string;
  readonly finalKey: string;
  readonly handle: S3WriteHandle;
  readonly attrs: FileAttrs;
  timer?: NodeJS.Timeout;
}

export interface ParkingHooks {
  log: Logger;
  /** Makes the upload exist at its `.filepart` key (see the module comment). */
  materialize(p: Parked): Promise<void>;
}

export class Parking {
  private readonly byPath = new Map<string, Parked>();
  private readonly hooks: ParkingHooks;

  constructor(hooks: ParkingHooks) {
    this.hooks = hooks;
  }

  get size(): number {
    return this.byPath.size;
  }

  park(p: Omit<Parked, 'attrs' | 'timer'>): void {
    const now = Math.floor(Date.now() / 1000);
    const entry: Parked = { ...p, attrs: { mode: S_IFREG | 0o644, size: p.handle.size, mtime: now, atime: now } };
    this.byPath.set(p.path, entry);
    entry.timer = setTimeout(() => void this.settleOne(entry), PARK_MS);
    entry.timer.unref();
  }

  /** The parked upload at `path` ("name.filepart"), if any. */
  at(path: string): Parked | undefined {
    return this.byPath.get(path);
  }

  /** Takes the parked upload at `path` out of the table (its caller finishes it). */
  take(path: string): Parked | undefined {
    const p = this.byPath.get(path);
    if (!p) return undefined;
    this.byPath.delete(path);
    clearTimeout(p.timer);
    return p;
  }

  /** Materializes every parked upload, except one whose name or final name is `path`. */
  async settle(path?: string): Promise<void> {
    if (this.byPath.size === 0) return;
    const all = [...this.byPath.values()].filter((p) => path === undefined || (p.path !== path && p.finalPath !== path));
    await Promise.all(all.map((p) => this.settleOne(p)));
  }

  private async settleOne(p: Parked): Promise<void> {
    if (this.take(p.path) !== p) return; // taken by a rename, a remove or another settle
    try {
      await this.hooks.materialize(p);
    } catch (err) {
      // CLOSE was answered OK already; nothing the client can do now but upload again.
      this.hooks.log.error('a closed upload could not be stored', {
        path: escapePeer(p.path),
        error: escapePeer(err instanceof Error ? err.message : String(err), 400),
      });
      await p.handle.abort().catch(() => {});
    }
  }
}
