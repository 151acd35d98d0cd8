import { SshReader } from '../wire/reader.js';
import { SshWriter } from '../wire/writer.js';
import { MalformedError } from '../wire/errors.js';
import { decodeAttrs, encodeAttrs, type Attrs } from './attrs.js';
import { CHECK_FILE_REPLY, EXT, FXP, type FxStatus } from './constants.js';

/**
 * SFTP v3 messages (draft-ietf-secsh-filexfer-02 §4–§8 and OpenSSH PROTOCOL §4): requests
 * decoded from a framed body (the uint32 length already removed by LengthPrefixedFramer), replies
 * encoded with their length prefix, ready to write.
 *
 * Decoding is strict: every field is bounded before it is read, and trailing bytes make a
 * request malformed (the server answers BAD_MESSAGE for its id). Byte fields (handles, WRITE
 * data) are views into the body, not copies. A DATA reply is a 13-byte header plus the payload
 * as it came from the backend, so file bytes are never copied here either.
 */

/** PATH_MAX on Linux and in OpenSSH; an S3 key is at most 1024 bytes, so this is generous. */
export const MAX_PATH_BYTES = 4096;
/** draft-02 §3: "handle strings MUST NOT be longer than 256 bytes". */
export const MAX_HANDLE_BYTES = 256;
/** Extension names are short ASCII identifiers; 256 bytes is plenty. */
export const MAX_EXT_NAME_BYTES = 256;

export type Request =
  // uint32 id, string filename, uint32 pflags, ATTRS attrs (§6.3)
  | { op: 'open'; id: number; filename: string; pflags: number; attrs: Attrs }
  // uint32 id, string handle (§6.3)
  | { op: 'close'; id: number; handle: Buffer }
  // uint32 id, string handle, uint64 offset, uint32 len (§6.4)
  | { op: 'read'; id: number; handle: Buffer; offset: number; length: number }
  // uint32 id, string handle, uint64 offset, string data (§6.4)
  | { op: 'write'; id: number; handle: Buffer; offset: number; data: Buffer }
  // uint32 id, string path (§6.8)
  | { op: 'lstat' | 'stat'; id: number; path: string }
  // uint32 id, string handle (§6.8)
  | { op: 'fstat'; id: number; handle: Buffer }
  // uint32 id, string path, ATTRS attrs (§6.9)
  | { op: 'setstat'; id: number; path: string; attrs: Attrs }
  // uint32 id, string handle, ATTRS attrs (§6.9)
  | { op: 'fsetstat'; id: number; handle: Buffer; attrs: Attrs }
  // uint32 id, string path (§6.7)
  | { op: 'opendir'; id: number; path: string }
  // uint32 id, string handle (§6.7)
  | { op: 'readdir'; id: number; handle: Buffer }
  // uint32 id, string filename (§6.5)
  | { op: 'remove'; id: number; path: string }
  // uint32 id, string path, ATTRS attrs (§6.6)
  | { op: 'mkdir'; id: number; path: string; attrs: Attrs }
  // uint32 id, string path (§6.6)
  | { op: 'rmdir'; id: number; path: string }
  // uint32 id, string path (§6.10)
  | { op: 'realpath'; id: number; path: string }
  // uint32 id, string oldpath, string newpath (§6.5)
  | { op: 'rename'; id: number; oldpath: string; newpath: string }
  // uint32 id, string path (§6.10)
  | { op: 'readlink'; id: number; path: string }
  // uint32 id, string targetpath, string linkpath: OpenSSH's order, the reverse of the
  // draft's (OpenSSH PROTOCOL §4.1), which every deployed client follows.
  | { op: 'symlink'; id: number; targetpath: string; linkpath: string }
  // EXTENDED "posix-rename@openssh.com": string oldpath, string newpath (PROTOCOL §4.3)
  | { op: 'posix-rename'; id: number; oldpath: string; newpath: string }
  // EXTENDED "statvfs@openssh.com": string path (PROTOCOL §4.4)
  | { op: 'statvfs'; id: number; path: string }
  // EXTENDED "fstatvfs@openssh.com": string handle (PROTOCOL §4.4)
  | { op: 'fstatvfs'; id: number; handle: Buffer }
  // EXTENDED "limits@openssh.com": nothing (PROTOCOL §4.8)
  | { op: 'limits'; id: number }
  // EXTENDED "fsync@openssh.com": string handle (PROTOCOL §4.6)
  | { op: 'fsync'; id: number; handle: Buffer }
  // EXTENDED "check-file-handle" (or paramiko's "check-file") / "check-file-name": string handle /
  // filename, string hash-algorithm-list, uint64 start-offset, uint64 length, uint32 block-size
  // (draft-ietf-secsh-filexfer-extensions-00 §3)
  | ({ op: 'check-file-handle'; id: number; handle: Buffer } & CheckFileFields)
  | ({ op: 'check-file-name'; id: number; path: string } & CheckFileFields)
  // any other EXTENDED: its name; the rest is not ours to parse
  | { op: 'extended'; id: number; name: string }
  // a packet type that is not a request
  | { op: 'unknown'; id: number; type: number };

export type RequestOp = Request['op'];

/** The fields check-file-handle and check-file-name share. */
export interface CheckFileFields {
  /** hash-algorithm-list split at commas, in the client's order of preference. */
  algorithms: string[];
  startOffset: number;
  /** 0: to the end of the file. */
  length: number;
  /** 0: one hash over the whole range. */
  blockSize: number;
}

/**
 * Bound on hash-algorithm-list: the draft's seven names take 50 bytes; a client offering every
 * name it knows still fits. Checked before the string is read, so a huge length allocates nothing.
 */
export const MAX_HASH_LIST_BYTES = 1024;

/** INIT (§4): uint32 version, then (string name, string data)* extension pairs we ignore. */
export interface Init {
  version: number;
  extensions: [string, Uint8Array][];
}

/** Bound on INIT extension pairs; clients send none or a handful. */
export const MAX_INIT_EXTENSIONS = 64;

/** Decodes the body of an INIT (type byte included). Throws MalformedError. */
export function decodeInit(body: Uint8Array): Init {
  const r = new SshReader(body);
  const type = r.u8();
  if (type !== FXP.INIT) throw new MalformedError(`expected INIT, got packet type ${type}`);
  const version = r.u32();
  const extensions: [string, Uint8Array][] = [];
  while (r.remaining > 0) {
    if (extensions.length >= MAX_INIT_EXTENSIONS) throw new MalformedError('INIT has too many extension pairs');
    extensions.push([r.utf8(MAX_EXT_NAME_BYTES, 'extension name'), r.bytes(Infinity, 'extension data')]);
  }
  return { version, extensions };
}

/**
 * The request id of a body that has at least a type byte and four more; null otherwise (then
 * nothing can be answered and the stream must close).
 */
export function requestId(body: Uint8Array): number | null {
  if (body.length < 5) return null;
  return ((body[1]! << 24) | (body[2]! << 16) | (body[3]! << 8) | body[4]!) >>> 0;
}

const path = (r: SshReader, what = 'path'): string => r.utf8(MAX_PATH_BYTES, what);
const handle = (r: SshReader): Buffer => asBuffer(r.bytes(MAX_HANDLE_BYTES, 'handle'));

/** A view of the same bytes typed as Buffer (the framer hands out Buffers; this keeps it so). */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Decodes a request body (type byte, id, fields). Throws MalformedError on anything short, over
 * a cap, not UTF-8 where a path is expected, or followed by trailing bytes.
 */
export function decodeRequest(body: Uint8Array): Request {
  const r = new SshReader(body);
  const type = r.u8();
  const id = r.u32();
  const req = decodeFields(r, type, id);
  if (req.op !== 'extended' && req.op !== 'unknown') r.assertEnd(`request type ${type}`);
  return req;
}

function decodeFields(r: SshReader, type: number, id: number): Request {
  switch (type) {
    case FXP.OPEN: {
      const filename = path(r, 'filename');
      const pflags = r.u32();
      return { op: 'open', id, filename, pflags, attrs: decodeAttrs(r) };
    }
    case FXP.CLOSE:
      return { op: 'close', id, handle: handle(r) };
    case FXP.READ: {
      const h = handle(r);
      const offset = r.u64();
      return { op: 'read', id, handle: h, offset, length: r.u32() };
    }
    case FXP.WRITE: {
      const h = handle(r);
      const offset = r.u64();
      const data = asBuffer(r.bytes(Infinity, 'data'));
      if (offset + data.length > Number.MAX_SAFE_INTEGER) throw new MalformedError('write extends past 2^53 - 1');
      return { op: 'write', id, handle: h, offset, data };
    }
    case FXP.LSTAT:
      return { op: 'lstat', id, path: path(r) };
    case FXP.STAT:
      return { op: 'stat', id, path: path(r) };
    case FXP.FSTAT:
      return { op: 'fstat', id, handle: handle(r) };
    case FXP.SETSTAT: {
      const p = path(r);
      return { op: 'setstat', id, path: p, attrs: decodeAttrs(r) };
    }
    case FXP.FSETSTAT: {
      const h = handle(r);
      return { op: 'fsetstat', id, handle: h, attrs: decodeAttrs(r) };
    }
    case FXP.OPENDIR:
      return { op: 'opendir', id, path: path(r) };
    case FXP.READDIR:
      return { op: 'readdir', id, handle: handle(r) };
    case FXP.REMOVE:
      return { op: 'remove', id, path: path(r, 'filename') };
    case FXP.MKDIR: {
      const p = path(r);
      return { op: 'mkdir', id, path: p, attrs: decodeAttrs(r) };
    }
    case FXP.RMDIR:
      return { op: 'rmdir', id, path: path(r) };
    case FXP.REALPATH:
      return { op: 'realpath', id, path: path(r) };
    case FXP.RENAME: {
      const oldpath = path(r, 'oldpath');
      return { op: 'rename', id, oldpath, newpath: path(r, 'newpath') };
    }
    case FXP.READLINK:
      return { op: 'readlink', id, path: path(r) };
    case FXP.SYMLINK: {
      const targetpath = path(r, 'targetpath');
      return { op: 'symlink', id, targetpath, linkpath: path(r, 'linkpath') };
    }
    case FXP.EXTENDED:
      return decodeExtended(r, id);
    default:
      return { op: 'unknown', id, type };
  }
}

function decodeExtended(r: SshReader, id: number): Request {
  const name = r.utf8(MAX_EXT_NAME_BYTES, 'extended request name');
  switch (name) {
    case EXT.POSIX_RENAME: {
      const oldpath = path(r, 'oldpath');
      const req: Request = { op: 'posix-rename', id, oldpath, newpath: path(r, 'newpath') };
      r.assertEnd(name);
      return req;
    }
    case EXT.STATVFS: {
      const req: Request = { op: 'statvfs', id, path: path(r) };
      r.assertEnd(name);
      return req;
    }
    case EXT.FSTATVFS: {
      const req: Request = { op: 'fstatvfs', id, handle: handle(r) };
      r.assertEnd(name);
      return req;
    }
    case EXT.LIMITS:
      r.assertEnd(name);
      return { op: 'limits', id };
    case EXT.FSYNC: {
      const req: Request = { op: 'fsync', id, handle: handle(r) };
      r.assertEnd(name);
      return req;
    }
    case EXT.CHECK_FILE:
    case EXT.CHECK_FILE_HANDLE: {
      const h = handle(r);
      const req: Request = { op: 'check-file-handle', id, handle: h, ...checkFileFields(r) };
      r.assertEnd(name);
      return req;
    }
    case EXT.CHECK_FILE_NAME: {
      const p = path(r, 'filename');
      const req: Request = { op: 'check-file-name', id, path: p, ...checkFileFields(r) };
      r.assertEnd(name);
      return req;
    }
    default:
      return { op: 'extended', id, name };
  }
}

function checkFileFields(r: SshReader): CheckFileFields {
  const list = r.utf8(MAX_HASH_LIST_BYTES, 'hash-algorithm-list');
  const startOffset = r.u64();
  const length = r.u64();
  const blockSize = r.u32();
  return { algorithms: list.split(','), startOffset, length, blockSize };
}

// ------------------------------------------------------------------------------- replies

/** Starts a reply: 4 bytes reserved for the length, then type and (except VERSION) id. */
function begin(type: number, id: number | null, size = 64): SshWriter {
  const w = new SshWriter(size, 4);
  w.u8(type);
  if (id !== null) w.u32(id);
  return w;
}

/** Fills in the length prefix and returns the whole message. */
function finish(w: SshWriter): Buffer {
  w.buf.writeUInt32BE(w.pos - 4, 0);
  return w.bytes();
}

/** VERSION (§4): uint32 version, (string extension-name, string extension-data)*. */
export function encodeVersion(version: number, extensions: readonly (readonly [string, string])[]): Buffer {
  const w = begin(FXP.VERSION, null, 256);
  w.u32(version);
  for (const [name, data] of extensions) w.string(name).string(data);
  return finish(w);
}

/** STATUS (§7): uint32 id, uint32 error/status code, string error message, string language tag. */
export function encodeStatus(id: number, status: FxStatus, message: string, language = ''): Buffer {
  const w = begin(FXP.STATUS, id, 32 + message.length * 3);
  w.u32(status).string(message).string(language);
  return finish(w);
}

/** HANDLE (§7): uint32 id, string handle. */
export function encodeHandle(id: number, handle: Uint8Array): Buffer {
  const w = begin(FXP.HANDLE, id, 16 + handle.length);
  w.string(handle);
  return finish(w);
}

/** Size of a DATA header: uint32 length, byte type, uint32 id, uint32 data length. */
export const DATA_HEADER_BYTES = 13;

/**
 * The header of DATA (§7): uint32 id, string data. The caller writes the payload right after it,
 * as its own chunk, so the payload is never copied into a reply buffer.
 */
export function encodeDataHeader(id: number, dataLength: number): Buffer {
  const b = Buffer.allocUnsafe(DATA_HEADER_BYTES);
  b.writeUInt32BE(9 + dataLength, 0);
  b[4] = FXP.DATA;
  b.writeUInt32BE(id, 5);
  b.writeUInt32BE(dataLength, 9);
  return b;
}

export interface NameEntry {
  filename: string;
  longname: string;
  attrs: Attrs;
}

/** NAME (§7): uint32 id, uint32 count, count × (string filename, string longname, ATTRS attrs). */
export function encodeName(id: number, entries: readonly NameEntry[]): Buffer {
  const w = begin(FXP.NAME, id, 64 + entries.length * 128);
  w.u32(entries.length);
  for (const e of entries) {
    w.string(e.filename).string(e.longname);
    encodeAttrs(w, e.attrs);
  }
  return finish(w);
}

/** ATTRS reply (§7): uint32 id, ATTRS attrs. */
export function encodeAttrsReply(id: number, attrs: Attrs): Buffer {
  const w = begin(FXP.ATTRS, id, 64);
  encodeAttrs(w, attrs);
  return finish(w);
}

/** The statvfs@openssh.com reply fields (PROTOCOL §4.4), all uint64. */
export interface Statvfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  fsid: number;
  flag: number;
  namemax: number;
}

/** EXTENDED_REPLY for statvfs/fstatvfs: uint32 id, 11 × uint64 in the order of struct statvfs. */
export function encodeStatvfsReply(id: number, s: Statvfs): Buffer {
  const w = begin(FXP.EXTENDED_REPLY, id, 128);
  w.u64(s.bsize).u64(s.frsize).u64(s.blocks).u64(s.bfree).u64(s.bavail);
  w.u64(s.files).u64(s.ffree).u64(s.favail).u64(s.fsid).u64(s.flag).u64(s.namemax);
  return finish(w);
}

/**
 * EXTENDED_REPLY for check-file-handle / check-file-name (extensions-00 §3): uint32 id,
 * string "check-file", string hash-algorithm-used, then the hashes as raw bytes to the end of the
 * message (no length prefix: the client knows each hash's size from the algorithm).
 */
export function encodeCheckFileReply(id: number, algorithm: string, hashes: Uint8Array): Buffer {
  const w = begin(FXP.EXTENDED_REPLY, id, 32 + algorithm.length + hashes.length);
  w.string(CHECK_FILE_REPLY).string(algorithm).raw(hashes);
  return finish(w);
}

/** The limits@openssh.com reply fields (PROTOCOL §4.8); 0 means "no limit". */
export interface Limits {
  maxPacketLength: number;
  maxReadLength: number;
  maxWriteLength: number;
  maxOpenHandles: number;
}

/** EXTENDED_REPLY for limits: uint32 id, uint64 max-packet-length, max-read-length, max-write-length, max-open-handles. */
export function encodeLimitsReply(id: number, l: Limits): Buffer {
  const w = begin(FXP.EXTENDED_REPLY, id, 48);
  w.u64(l.maxPacketLength).u64(l.maxReadLength).u64(l.maxWriteLength).u64(l.maxOpenHandles);
  return finish(w);
}
