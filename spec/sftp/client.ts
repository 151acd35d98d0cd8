/**
 * Test-side SFTP: an in-process Duplex pair with real backpressure, a request encoder and a reply
 * decoder written independently of src/sftp/codec.ts (so a bug shared by both directions would
 * not cancel out), and a small pipelining client.
 */
import { Duplex } from 'node:stream';
import { SshReader } from '../../src/wire/reader.js';
import { SshWriter } from '../../src/wire/writer.js';
import { MemoryBackend, type MemoryBackendOptions } from '../helpers/memory-backend.js';
import { serveSftp, type SftpServerOptions } from '../../src/sftp/server.js';
import type { SftpEvent } from '../../src/sftp/events.js';
import { silentLogger } from '../../src/log.js';

// ------------------------------------------------------------------ duplex pair

/**
 * One end of an in-memory pipe. A write completes only when the other end's reader has room,
 * so a reader that stops (pause) pushes back on the writer, as an SSH channel does.
 */
export class PipeEnd extends Duplex {
  peer!: PipeEnd;
  /** A write of ours waiting for the peer to read. */
  #waiting: (() => void) | null = null;
  /** Bytes the peer has pushed into our readable side. */
  received = 0;

  constructor(highWaterMark = 16 * 1024) {
    super({ allowHalfOpen: true, readableHighWaterMark: highWaterMark, writableHighWaterMark: highWaterMark });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const peer = this.peer;
    if (peer.destroyed) return cb(new Error('the other end is closed'));
    peer.received += chunk.length;
    if (peer.push(chunk)) cb();
    else peer.#waitingFor(this, cb);
  }

  #waitingFor(_writer: PipeEnd, cb: () => void): void {
    this.#waiting = cb;
  }

  override _read(): void {
    const cb = this.#waiting;
    if (cb !== null) {
      this.#waiting = null;
      cb();
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const w = this.#waiting;
    this.#waiting = null;
    w?.();
    if (!this.peer.destroyed) this.peer.destroy();
    cb(err);
  }
}

export function duplexPair(highWaterMark?: number): [PipeEnd, PipeEnd] {
  const a = new PipeEnd(highWaterMark);
  const b = new PipeEnd(highWaterMark);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

// ------------------------------------------------------------------ wire constants (test copies)

export const T = {
  INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, LSTAT: 7, FSTAT: 8, SETSTAT: 9, FSETSTAT: 10,
  OPENDIR: 11, READDIR: 12, REMOVE: 13, MKDIR: 14, RMDIR: 15, REALPATH: 16, STAT: 17, RENAME: 18,
  READLINK: 19, SYMLINK: 20, STATUS: 101, HANDLE: 102, DATA: 103, NAME: 104, ATTRS: 105, EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

export const S = {
  OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, OP_UNSUPPORTED: 8,
} as const;

export const F = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 0x10, EXCL: 0x20 } as const;

// ------------------------------------------------------------------ requests

export interface TestAttrs {
  size?: number;
  uid?: number;
  gid?: number;
  permissions?: number;
  atime?: number;
  mtime?: number;
  extended?: [string, Buffer][];
}

export function writeAttrs(w: SshWriter, a: TestAttrs = {}): void {
  let flags = 0;
  if (a.size !== undefined) flags |= 1;
  if (a.uid !== undefined) flags |= 2;
  if (a.permissions !== undefined) flags |= 4;
  if (a.mtime !== undefined) flags |= 8;
  if (a.extended !== undefined) flags |= 0x80000000;
  w.u32(flags >>> 0);
  if (a.size !== undefined) w.u64(a.size);
  if (a.uid !== undefined) w.u32(a.uid).u32(a.gid ?? 0);
  if (a.permissions !== undefined) w.u32(a.permissions);
  if (a.mtime !== undefined) w.u32(a.atime ?? a.mtime).u32(a.mtime);
  if (a.extended !== undefined) {
    w.u32(a.extended.length);
    for (const [t, d] of a.extended) w.string(t).string(d);
  }
}

export function readAttrs(r: SshReader): TestAttrs {
  const flags = r.u32();
  const a: TestAttrs = {};
  if (flags & 1) a.size = r.u64();
  if (flags & 2) {
    a.uid = r.u32();
    a.gid = r.u32();
  }
  if (flags & 4) a.permissions = r.u32();
  if (flags & 8) {
    a.atime = r.u32();
    a.mtime = r.u32();
  }
  if (flags & 0x80000000) {
    const n = r.u32();
    a.extended = [];
    for (let i = 0; i < n; i++) a.extended.push([r.utf8(), Buffer.from(r.bytes())]);
  }
  return a;
}

/** A framed packet: uint32 length, byte type, then whatever `body` writes (id included). */
export function packet(type: number, body: (w: SshWriter) => void = () => {}): Buffer {
  const w = new SshWriter(64, 4);
  w.u8(type);
  body(w);
  w.buf.writeUInt32BE(w.pos - 4, 0);
  return Buffer.from(w.bytes());
}

// ------------------------------------------------------------------ replies

export type Reply =
  | { type: 'status'; id: number; code: number; message: string; lang: string }
  | { type: 'handle'; id: number; handle: Buffer }
  | { type: 'data'; id: number; data: Buffer }
  | { type: 'name'; id: number; entries: { filename: string; longname: string; attrs: TestAttrs }[] }
  | { type: 'attrs'; id: number; attrs: TestAttrs }
  | { type: 'extended'; id: number; data: Buffer };

export interface Version {
  version: number;
  extensions: [string, string][];
}

export function decodeReply(body: Buffer): Reply {
  const r = new SshReader(body);
  const type = r.u8();
  const id = r.u32();
  let reply: Reply;
  switch (type) {
    case T.STATUS:
      reply = { type: 'status', id, code: r.u32(), message: r.utf8(), lang: r.utf8() };
      break;
    case T.HANDLE:
      reply = { type: 'handle', id, handle: Buffer.from(r.bytes()) };
      break;
    case T.DATA:
      reply = { type: 'data', id, data: Buffer.from(r.bytes()) };
      break;
    case T.NAME: {
      const n = r.u32();
      const entries = [];
      for (let i = 0; i < n; i++) entries.push({ filename: r.utf8(), longname: r.utf8(), attrs: readAttrs(r) });
      reply = { type: 'name', id, entries };
      break;
    }
    case T.ATTRS:
      reply = { type: 'attrs', id, attrs: readAttrs(r) };
      break;
    case T.EXTENDED_REPLY:
      return { type: 'extended', id, data: Buffer.from(r.rest()) };
    default:
      throw new Error(`unexpected reply type ${type}`);
  }
  r.assertEnd(`reply type ${type}`);
  return reply;
}

// ------------------------------------------------------------------ client

export interface Session {
  client: TestClient;
  backend: MemoryBackend;
  events: SftpEvent[];
  /** serveSftp's promise. */
  served: Promise<void>;
  serverEnd: PipeEnd;
}

/** A server on a fresh MemoryBackend and a client connected to it (INIT not yet sent). */
export function startSession(
  opts: Partial<SftpServerOptions> & { backend?: MemoryBackend; memory?: MemoryBackendOptions; hwm?: number } = {},
): Session {
  const [serverEnd, clientEnd] = duplexPair(opts.hwm);
  const backend = opts.backend ?? new MemoryBackend(opts.memory);
  const events: SftpEvent[] = [];
  const served = serveSftp(serverEnd, backend, {
    log: silentLogger,
    ...opts,
    onEvent: (e) => events.push(e),
  });
  return { client: new TestClient(clientEnd), backend, events, served, serverEnd };
}

/** Starts a session and completes INIT. */
export async function openSession(opts: Parameters<typeof startSession>[0] = {}): Promise<Session> {
  const s = startSession(opts);
  await s.client.init();
  return s;
}

export class TestClient {
  readonly stream: PipeEnd;
  #nextId = 1;
  #buf: Buffer = Buffer.alloc(0);
  readonly #waiting = new Map<number, (r: Reply) => void>();
  #version: ((v: Version) => void) | null = null;
  /** Every reply id in arrival order. */
  readonly order: number[] = [];
  /** Replies nobody waited for (there should be none). */
  readonly unexpected: Reply[] = [];
  closed = false;
  readonly closedP: Promise<void>;

  constructor(stream: PipeEnd) {
    this.stream = stream;
    stream.on('data', (d: Buffer) => this.#onData(d));
    stream.on('error', () => {});
    this.closedP = new Promise((resolve) => {
      const done = () => {
        this.closed = true;
        resolve();
      };
      stream.on('end', done);
      stream.on('close', done);
    });
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    while (this.#buf.length >= 4) {
      const len = this.#buf.readUInt32BE(0);
      if (this.#buf.length < 4 + len) return;
      const body = this.#buf.subarray(4, 4 + len);
      this.#buf = this.#buf.subarray(4 + len);
      if (body[0] === T.VERSION) {
        const r = new SshReader(body, 1);
        const version = r.u32();
        const extensions: [string, string][] = [];
        while (r.remaining > 0) extensions.push([r.utf8(), r.utf8()]);
        this.#version?.({ version, extensions });
        continue;
      }
      const reply = decodeReply(Buffer.from(body));
      this.order.push(reply.id);
      const w = this.#waiting.get(reply.id);
      if (w === undefined) this.unexpected.push(reply);
      else {
        this.#waiting.delete(reply.id);
        w(reply);
      }
    }
  }

  init(version = 3): Promise<Version> {
    const p = new Promise<Version>((resolve) => (this.#version = resolve));
    this.raw(packet(T.INIT, (w) => w.u32(version)));
    return p;
  }

  raw(bytes: Buffer): void {
    this.stream.write(bytes);
  }

  nextId(): number {
    return this.#nextId++;
  }

  /** Sends a request with the next id; resolves with its reply. */
  request(type: number, fields: (w: SshWriter) => void = () => {}): Promise<Reply> {
    return this.requestWithId(this.nextId(), type, fields);
  }

  requestWithId(id: number, type: number, fields: (w: SshWriter) => void = () => {}): Promise<Reply> {
    const p = this.expect(id);
    this.raw(
      packet(type, (w) => {
        w.u32(id);
        fields(w);
      }),
    );
    return p;
  }

  /** Resolves with the reply to `id` (for requests sent with raw()). */
  expect(id: number): Promise<Reply> {
    return new Promise((resolve) => this.#waiting.set(id, resolve));
  }

  // ---- one method per request, as OpenSSH's sftp-client.c sends them

  open(path: string, pflags: number, attrs: TestAttrs = {}) {
    return this.request(T.OPEN, (w) => {
      w.string(path).u32(pflags);
      writeAttrs(w, attrs);
    });
  }
  close(h: Buffer) {
    return this.request(T.CLOSE, (w) => w.string(h));
  }
  read(h: Buffer, offset: number, len: number) {
    return this.request(T.READ, (w) => w.string(h).u64(offset).u32(len));
  }
  write(h: Buffer, offset: number, data: Buffer) {
    return this.request(T.WRITE, (w) => w.string(h).u64(offset).string(data));
  }
  stat(path: string) {
    return this.request(T.STAT, (w) => w.string(path));
  }
  lstat(path: string) {
    return this.request(T.LSTAT, (w) => w.string(path));
  }
  fstat(h: Buffer) {
    return this.request(T.FSTAT, (w) => w.string(h));
  }
  setstat(path: string, attrs: TestAttrs) {
    return this.request(T.SETSTAT, (w) => {
      w.string(path);
      writeAttrs(w, attrs);
    });
  }
  fsetstat(h: Buffer, attrs: TestAttrs) {
    return this.request(T.FSETSTAT, (w) => {
      w.string(h);
      writeAttrs(w, attrs);
    });
  }
  opendir(path: string) {
    return this.request(T.OPENDIR, (w) => w.string(path));
  }
  readdir(h: Buffer) {
    return this.request(T.READDIR, (w) => w.string(h));
  }
  remove(path: string) {
    return this.request(T.REMOVE, (w) => w.string(path));
  }
  mkdir(path: string, attrs: TestAttrs = {}) {
    return this.request(T.MKDIR, (w) => {
      w.string(path);
      writeAttrs(w, attrs);
    });
  }
  rmdir(path: string) {
    return this.request(T.RMDIR, (w) => w.string(path));
  }
  realpath(path: string) {
    return this.request(T.REALPATH, (w) => w.string(path));
  }
  rename(from: string, to: string) {
    return this.request(T.RENAME, (w) => w.string(from).string(to));
  }
  readlink(path: string) {
    return this.request(T.READLINK, (w) => w.string(path));
  }
  symlink(target: string, link: string) {
    return this.request(T.SYMLINK, (w) => w.string(target).string(link));
  }
  extended(name: string, fields: (w: SshWriter) => void = () => {}) {
    return this.request(T.EXTENDED, (w) => {
      w.string(name);
      fields(w);
    });
  }

  // ---- conveniences that assert the expected reply type

  async handle(p: Promise<Reply>): Promise<Buffer> {
    const r = await p;
    if (r.type !== 'handle') throw new Error(`expected HANDLE, got ${JSON.stringify(summary(r))}`);
    return r.handle;
  }

  /** Uploads `data` in `chunk`-sized sequential writes, all in flight at once, then CLOSE. */
  async upload(path: string, data: Buffer, chunk = 32 * 1024, pflags = F.WRITE | F.CREAT | F.TRUNC): Promise<Reply> {
    const h = await this.handle(this.open(path, pflags));
    const writes: Promise<Reply>[] = [];
    for (let off = 0; off < data.length; off += chunk) writes.push(this.write(h, off, data.subarray(off, off + chunk)));
    for (const w of await Promise.all(writes)) {
      if (w.type !== 'status' || w.code !== S.OK) throw new Error(`write failed: ${JSON.stringify(summary(w))}`);
    }
    return this.close(h);
  }

  /** Downloads a whole file with `inflight` READs outstanding; returns the bytes. */
  async download(path: string, chunk = 32 * 1024, inflight = 8): Promise<Buffer> {
    const h = await this.handle(this.open(path, F.READ));
    const parts: Buffer[] = [];
    let offset = 0;
    for (;;) {
      const batch: Promise<Reply>[] = [];
      for (let i = 0; i < inflight; i++) batch.push(this.read(h, offset + i * chunk, chunk));
      const replies = await Promise.all(batch);
      let eof = false;
      for (const r of replies) {
        if (r.type === 'data') parts.push(r.data);
        else if (r.type === 'status' && r.code === S.EOF) eof = true;
        else throw new Error(`read failed: ${JSON.stringify(summary(r))}`);
      }
      if (eof) break;
      offset += inflight * chunk;
    }
    await this.close(h);
    return Buffer.concat(parts);
  }

  /** Every entry of a directory, READDIR until EOF. */
  async list(path: string): Promise<{ filename: string; longname: string; attrs: TestAttrs }[][]> {
    const h = await this.handle(this.opendir(path));
    const pages = [];
    for (;;) {
      const r = await this.readdir(h);
      if (r.type === 'status' && r.code === S.EOF) break;
      if (r.type !== 'name') throw new Error(`readdir failed: ${JSON.stringify(summary(r))}`);
      pages.push(r.entries);
    }
    await this.close(h);
    return pages;
  }
}

/** A reply without bulky fields, for assertion messages. */
export function summary(r: Reply): unknown {
  if (r.type === 'data') return { type: 'data', id: r.id, bytes: r.data.length };
  if (r.type === 'handle' || r.type === 'extended') return { ...r, [r.type === 'handle' ? 'handle' : 'data']: '…' };
  return r;
}

/** Lets pending I/O and promise chains run (several macrotask turns). */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}
