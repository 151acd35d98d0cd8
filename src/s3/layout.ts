/**
 * Where each part of an upload of unknown size goes, so that a file can grow past S3's part limit
 * without bigger parts (which would need more memory per upload).
 *
 * An upload is a tree of multipart uploads. The root is the final object. Its first slots take
 * "raw" parts (the bytes the client sent, `partSize` each). When the slots left could no longer
 * hold the largest object allowed, the next slot takes a *segment* instead: a temporary object,
 * built as a multipart upload of its own, copied into the slot with one UploadPartCopy once full.
 * A segment of height 1 holds raw parts; one of height h holds segments of height h − 1. A copied
 * part may not exceed 5 GiB, so segments stop growing there:
 *
 *   cap(0) = partSize, cap(h) = cap(h − 1) × min(maxParts, ⌊5 GiB / cap(h − 1)⌋)
 *
 * With 5 MiB parts and 10,000 parts a segment holds 1,024 raw parts (5 GiB) and the tree is two
 * levels deep: 8,984 raw parts (43.9 GiB) then up to 1,016 segments, 5 TiB in all. With
 * `maxParts` lowered for tests (say 4) segments nest: 20 MiB, 80 MiB, 320 MiB …
 *
 * Each slot gets the smallest child that keeps the node able to reach its capacity, given that
 * every later slot could hold the largest child: raw parts for as long as possible (they cost no
 * copy), larger segments only when needed. Inside a segment the same rule gives equal children.
 *
 * The plan is pure bookkeeping, so it is tested on its own (spec/s3/layout.test.ts); upload.ts
 * creates, fills, completes and copies the nodes it names.
 */

/** S3's largest part, and largest source of one UploadPartCopy: 5 GiB. */
export const MAX_COPY_PART = 5 * 1024 ** 3;

export interface LayoutLimits {
  partSize: number;
  maxParts: number;
  /** Bytes the root may hold: the object limit, or a known file size. */
  capacity: number;
  /** The largest copied part (5 GiB; lower only in tests). */
  maxCopy?: number;
}

/** One multipart upload of the tree: the root (the object) or a segment (a temporary object). */
export interface LayoutNode {
  /** 0 for the root, then in order of creation. */
  readonly id: number;
  /** Children of height 0 are raw parts. The root's height is one more than its tallest child. */
  readonly height: number;
  /** Bytes this node may hold. */
  readonly capacity: number;
  readonly parent: LayoutNode | undefined;
  /** The part number this segment takes in its parent. */
  readonly slot: number;
  /** Slots used so far (raw parts and segments). */
  slots: number;
  /** Capacity given to children so far. */
  placed: number;
}

export interface Placement {
  /** The node the raw part goes into, and its part number there. */
  node: LayoutNode;
  partNumber: number;
  /** Segments that became full before this part: finish them, innermost first. */
  closed: LayoutNode[];
  /** Segments opened for this part: create them, outermost first. */
  opened: LayoutNode[];
}

export class LayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayoutError';
  }
}

export class Layout {
  readonly limits: Required<LayoutLimits>;
  /** cap(h) for h = 0 … maxHeight. */
  readonly caps: readonly number[];
  readonly root: LayoutNode;
  /** The open path from the root to the node filling now. */
  private readonly stack: LayoutNode[];
  private nextId = 1;

  constructor(limits: LayoutLimits) {
    const l = { maxCopy: MAX_COPY_PART, ...limits };
    if (l.maxParts < 1 || l.partSize < 1 || l.capacity < 0) throw new RangeError('bad layout limits');
    this.limits = l;
    const caps = [l.partSize];
    for (;;) {
      const c = caps[caps.length - 1]!;
      const k = Math.min(l.maxParts, Math.floor(l.maxCopy / c));
      if (k < 2) break;
      caps.push(c * k);
    }
    this.caps = caps;
    this.root = { id: 0, height: caps.length, capacity: l.capacity, parent: undefined, slot: 0, slots: 0, placed: 0 };
    this.stack = [this.root];
  }

  /** The most the root can hold: its capacity, or less when the part limit does not allow it. */
  get reach(): number {
    return Math.min(this.root.capacity, this.limits.maxParts * this.caps[this.caps.length - 1]!);
  }

  /**
   * Slots of the root already taken before the first raw part (a resumed file's head, copied
   * in), and the bytes they hold.
   */
  reserveRoot(slots: number, bytes: number): void {
    if (this.root.slots !== 0 || this.stack.length !== 1) throw new Error('reserveRoot after placing');
    if (slots >= this.limits.maxParts) {
      throw new LayoutError(`the existing ${bytes} bytes take ${slots} parts, and S3 allows ${this.limits.maxParts}`);
    }
    this.root.slots = slots;
    this.root.placed = bytes;
  }

  /** Places the next raw part. Throws LayoutError when the root is full. */
  next(): Placement {
    const closed: LayoutNode[] = [];
    const opened: LayoutNode[] = [];
    const { partSize, maxParts } = this.limits;
    for (;;) {
      const top = this.stack[this.stack.length - 1]!;
      if (top.placed >= top.capacity || top.slots >= maxParts) {
        if (top === this.root) {
          throw new LayoutError(
            `the file would be larger than ${this.reach} bytes, the most this upload can store ` +
              `(${maxParts} parts, ${top.capacity} bytes allowed)`,
          );
        }
        closed.push(top);
        this.stack.pop();
        continue;
      }
      const h = this.childHeight(top);
      top.slots++;
      if (h === 0) {
        top.placed += partSize;
        return { node: top, partNumber: top.slots, closed, opened };
      }
      const capacity = Math.min(this.caps[h]!, top.capacity - top.placed);
      const child: LayoutNode = { id: this.nextId++, height: h, capacity, parent: top, slot: top.slots, slots: 0, placed: 0 };
      top.placed += capacity;
      this.stack.push(child);
      opened.push(child);
    }
  }

  /** The segments still open below the root, innermost first (to finish at the end). */
  openSegments(): LayoutNode[] {
    return this.stack.slice(1).reverse();
  }

  /**
   * The smallest child height that keeps `node` able to reach its capacity when every slot after
   * this one holds its largest child.
   */
  private childHeight(node: LayoutNode): number {
    const maxH = Math.min(node.height - 1, this.caps.length - 1);
    const after = this.limits.maxParts - node.slots - 1;
    const tail = after * this.caps[maxH]!;
    for (let h = 0; h < maxH; h++) {
      if (node.placed + this.caps[h]! + tail >= node.capacity) return h;
    }
    return maxH;
  }
}
