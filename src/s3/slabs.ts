/**
 * Upload memory: fixed-size slabs from a process-wide free list, and parts made of slabs.
 *
 * Incoming WRITE payloads are copied once into a slab (the caller's buffer may be a view of a
 * decryption buffer that is reused for the next packet). A part is a list of slabs, sent as a
 * stream of slab views with a known Content-Length, so a part is never concatenated and never
 * exists twice. Slabs are reused rather than left to the GC: with 20 uploads at 100 MB/s each the
 * garbage would be 2 GB/s of external memory, and RSS would follow the GC's timing instead of
 * the upload budget.
 */
import { Readable } from 'node:stream';

export const SLAB_SIZE = 512 * 1024;

/** Free slabs kept for reuse, across all uploads; beyond this they go back to the GC. */
const MAX_FREE_SLABS = 16;
const free: Buffer[] = [];
let inUse = 0;

export function takeSlab(): Buffer {
  inUse++;
  // allocUnsafeSlow: a slab of its own, not a view of Node's shared 8 KiB pool.
  return free.pop() ?? Buffer.allocUnsafeSlow(SLAB_SIZE);
}

export function releaseSlabs(slabs: Buffer[]): void {
  inUse -= slabs.length;
  for (const s of slabs) {
    if (free.length < MAX_FREE_SLABS) free.push(s);
  }
  slabs.length = 0;
}

/** Slabs held by uploads right now, across the process (tests and metrics). */
export function slabsInUse(): number {
  return inUse;
}

/**
 * The bytes of one part: whole slabs, the last one filled to `tailFill`. A part starts on a fresh
 * slab, so releasing a part never touches its neighbour.
 */
export class PartBuffer {
  readonly slabs: Buffer[] = [];
  length = 0;
  private tailFill = SLAB_SIZE;

  /** Copies up to `max` bytes of `data` from `pos`; returns how many. Takes a slab when needed. */
  append(data: Buffer, pos: number, max: number): number {
    if (this.tailFill === SLAB_SIZE) {
      this.slabs.push(takeSlab());
      this.tailFill = 0;
    }
    const n = Math.min(max, SLAB_SIZE - this.tailFill, data.length - pos);
    data.copy(this.slabs[this.slabs.length - 1]!, this.tailFill, pos, pos + n);
    this.tailFill += n;
    this.length += n;
    return n;
  }

  /** True when the next append takes a new slab. */
  get needsSlab(): boolean {
    return this.tailFill === SLAB_SIZE;
  }

  /** The part's bytes as views, in order (no copies). */
  views(): Buffer[] {
    const out: Buffer[] = [];
    let left = this.length;
    for (const s of this.slabs) {
      if (left <= 0) break;
      const n = Math.min(left, s.length);
      out.push(n === s.length ? s : s.subarray(0, n));
      left -= n;
    }
    return out;
  }

  /** Views of bytes [start, end) of the part (no copies); `end` at most `length`. */
  range(start: number, end: number): Buffer[] {
    const out: Buffer[] = [];
    while (start < end) {
      const slab = this.slabs[Math.floor(start / SLAB_SIZE)]!;
      const at = start % SLAB_SIZE;
      const n = Math.min(end - start, SLAB_SIZE - at);
      out.push(n === SLAB_SIZE ? slab : slab.subarray(at, at + n));
      start += n;
    }
    return out;
  }

  /** A fresh stream of the bytes; a retry calls this again. */
  stream(): Readable {
    const views = this.views();
    let i = 0;
    return new Readable({
      // Push every view at once: they already exist in memory, so there is nothing to bound.
      read() {
        while (i < views.length) {
          if (!this.push(views[i++])) return;
        }
        this.push(null);
      },
    });
  }

  release(): void {
    releaseSlabs(this.slabs);
    this.length = 0;
    this.tailFill = SLAB_SIZE;
  }
}
