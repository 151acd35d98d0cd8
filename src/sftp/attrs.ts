import type { SshReader } from '../wire/reader.js';
import type { SshWriter } from '../wire/writer.js';
import { MalformedError } from '../wire/errors.js';
import type { FileAttrs } from '../backend.js';
import { ATTR, ATTR_KNOWN } from './constants.js';

/**
 * The ATTRS structure, draft-02 §5. Every field is optional; its presence is its flag bit.
 *
 *   uint32   flags
 *   uint64   size           present if flags & SIZE
 *   uint32   uid            present if flags & UIDGID
 *   uint32   gid            present if flags & UIDGID
 *   uint32   permissions    present if flags & PERMISSIONS
 *   uint32   atime          present if flags & ACMODTIME
 *   uint32   mtime          present if flags & ACMODTIME
 *   uint32   extended_count present if flags & EXTENDED
 *   string   extended_type  } extended_count times
 *   string   extended_data  }
 */
export interface Attrs {
  size?: number;
  uid?: number;
  gid?: number;
  permissions?: number;
  atime?: number;
  mtime?: number;
  extended?: ExtendedAttr[];
}

export interface ExtendedAttr {
  type: string;
  /** A view into the request; copy it to keep it. */
  data: Uint8Array;
}

/**
 * Caps on the extended pairs: the packet cap already bounds the bytes, these bound the work a
 * peer can make us do (objects built, strings decoded) with many tiny pairs.
 */
export const MAX_EXTENDED_PAIRS = 64;
export const MAX_EXTENDED_TYPE = 256;

/**
 * Decodes ATTRS. Flag bits version 3 does not define are malformed: we could not know how many
 * bytes their fields take, so anything after them would be read wrongly.
 */
export function decodeAttrs(r: SshReader): Attrs {
  const flags = r.u32();
  if ((flags & ~ATTR_KNOWN) >>> 0 !== 0) {
    throw new MalformedError(`ATTRS has unknown flag bits 0x${((flags & ~ATTR_KNOWN) >>> 0).toString(16)}`);
  }
  const a: Attrs = {};
  if (flags & ATTR.SIZE) a.size = r.u64();
  if (flags & ATTR.UIDGID) {
    a.uid = r.u32();
    a.gid = r.u32();
  }
  if (flags & ATTR.PERMISSIONS) a.permissions = r.u32();
  if (flags & ATTR.ACMODTIME) {
    a.atime = r.u32();
    a.mtime = r.u32();
  }
  if (flags & ATTR.EXTENDED) {
    const count = r.u32();
    // Each pair takes at least 8 bytes: a count the message cannot hold is refused before looping.
    if (count > MAX_EXTENDED_PAIRS) {
      throw new MalformedError(`ATTRS has ${count} extended pairs, the limit is ${MAX_EXTENDED_PAIRS}`);
    }
    if (count * 8 > r.remaining) throw new MalformedError(`ATTRS declares ${count} extended pairs but is too short`);
    const ext: ExtendedAttr[] = [];
    for (let i = 0; i < count; i++) {
      const type = r.utf8(MAX_EXTENDED_TYPE, 'extended attribute type');
      const data = r.bytes(Infinity, 'extended attribute data');
      ext.push({ type, data });
    }
    a.extended = ext;
  }
  return a;
}

/** The flag word for the fields present in `a`. */
export function attrsFlags(a: Attrs): number {
  let flags = 0;
  if (a.size !== undefined) flags |= ATTR.SIZE;
  if (a.uid !== undefined || a.gid !== undefined) flags |= ATTR.UIDGID;
  if (a.permissions !== undefined) flags |= ATTR.PERMISSIONS;
  if (a.atime !== undefined || a.mtime !== undefined) flags |= ATTR.ACMODTIME;
  if (a.extended !== undefined && a.extended.length > 0) flags |= ATTR.EXTENDED;
  return flags >>> 0;
}

/**
 * Encodes ATTRS. A pair written half (uid without gid, atime without mtime) gets 0 for the
 * missing half, since the wire carries them together. Times are uint32 seconds in v3.
 */
export function encodeAttrs(w: SshWriter, a: Attrs): void {
  const flags = attrsFlags(a);
  w.u32(flags);
  if (flags & ATTR.SIZE) w.u64(a.size!);
  if (flags & ATTR.UIDGID) w.u32(a.uid ?? 0).u32(a.gid ?? 0);
  if (flags & ATTR.PERMISSIONS) w.u32(a.permissions!);
  if (flags & ATTR.ACMODTIME) w.u32(clampTime(a.atime ?? 0)).u32(clampTime(a.mtime ?? 0));
  if (flags & ATTR.EXTENDED) {
    w.u32(a.extended!.length);
    for (const e of a.extended!) w.string(e.type).string(e.data);
  }
}

/** v3 times are uint32: before 1970 becomes 0 and after 2106 saturates, rather than wrapping. */
function clampTime(t: number): number {
  if (!(t > 0)) return 0;
  return Math.min(Math.floor(t), 0xffff_ffff);
}

/**
 * What we report for a backend entry: size, type and permission bits, times. No UIDGID: S3
 * objects have no numeric owner, and a made-up 0/0 would read as root in some clients.
 */
export function fromFileAttrs(f: FileAttrs): Attrs {
  return { size: f.size, permissions: f.mode, atime: f.atime, mtime: f.mtime };
}
