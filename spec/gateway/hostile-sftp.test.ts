/**
 * Malformed and out-of-order SFTP packets over a real SSH connection to the gateway, with the raw
 * client of spec/helpers/raw-client.ts: after login it opens the `sftp` subsystem and writes
 * bytes of our choosing into the channel. Each case ends in one of the two outcomes draft-02
 * leaves a server: a STATUS for the request (BAD_MESSAGE for one it cannot parse, FAILURE for a
 * WRITE at the wrong offset), or the channel closed when there is no request to answer (a bad
 * length prefix, anything before INIT). Never a crash: the same connection opens a new channel
 * afterwards, and new logins with real clients still work.
 *
 * The SFTP codec here is written from draft-ietf-secsh-filexfer-02 with its own constants, not
 * src/sftp's, so a mistake there is not mirrored.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { SshReader } from '../../src/wire/reader.js';
import { SshWriter } from '../../src/wire/writer.js';
import { MSG } from '../../src/transport/constants.js';
import { RawClient, destroyAllClients, type OpenedChannel } from '../helpers/raw-client.js';
import { killStrayChildren } from '../helpers/openssh.js';
import {
  BUCKET,
  assertOk,
  assertStored,
  creds,
  e2ePrefix,
  eventually,
  headOrNull,
  logTail,
  paramiko,
  pendingUploads,
  removePrefix,
  sftpBatch,
  startGateway,
  type Gateway,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('hostile');

// draft-ietf-secsh-filexfer-02 §3, §7
const SSH_FXP = { INIT: 1, VERSION: 2, OPEN: 3, CLOSE: 4, READ: 5, WRITE: 6, REALPATH: 16, STATUS: 101, HANDLE: 102, NAME: 104 } as const;
const SSH_FX = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, BAD_MESSAGE: 5, OP_UNSUPPORTED: 8 } as const;
const SSH_FXF = { READ: 1, WRITE: 2, CREAT: 8, TRUNC: 16 } as const;

/** uint32 length ‖ body. */
function frame(body: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

const init = () => frame(new SshWriter(16).u8(SSH_FXP.INIT).u32(3).bytes());

function open(id: number, path: string, pflags: number): Buffer {
  return frame(new SshWriter(64 + path.length).u8(SSH_FXP.OPEN).u32(id).string(path).u32(pflags).u32(0).bytes());
}

function write(id: number, handle: Uint8Array, offset: number, data: Uint8Array): Buffer {
  return frame(
    new SshWriter(64 + data.length).u8(SSH_FXP.WRITE).u32(id).string(handle).u64(BigInt(offset)).string(data).bytes(),
  );
}

const close = (id: number, handle: Uint8Array) =>
  frame(new SshWriter(32 + handle.length).u8(SSH_FXP.CLOSE).u32(id).string(handle).bytes());
const read = (id: number, handle: Uint8Array, offset: number, len: number) =>
  frame(new SshWriter(32 + handle.length).u8(SSH_FXP.READ).u32(id).string(handle).u64(BigInt(offset)).u32(len).bytes());
const realpath = (id: number, p: string) =>
  frame(new SshWriter(32 + p.length).u8(SSH_FXP.REALPATH).u32(id).string(p).bytes());

interface Status {
  id: number;
  code: number;
  message: string;
}

type Event = { kind: 'packet'; body: Buffer } | { kind: 'close' };

/** One sftp channel on a raw SSH connection: bytes in, SFTP packets and channel ends out. */
class RawSftp {
  #buf = Buffer.alloc(0);
  /** Bytes the server lets us send (RFC 4254 §5.2): a client that overruns it is in the wrong. */
  #window: number;
  eof = false;
  closed = false;
  exitStatus: number | null = null;

  readonly c: RawClient;
  readonly ch: OpenedChannel;

  constructor(c: RawClient, ch: OpenedChannel) {
    this.c = c;
    this.ch = ch;
    this.#window = ch.window;
  }

  static async open(c: RawClient): Promise<RawSftp> {
    const ch = await c.openSession();
    const ok = await c.subsystem(ch, 'sftp');
    assert.ok(ok, 'the sftp subsystem starts');
    return new RawSftp(c, ch);
  }

  /** Sends within the window the server granted, waiting for WINDOW_ADJUST when it is used up. */
  async send(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.length; ) {
      while (this.#window === 0) {
        if (this.closed) throw new Error('the channel closed while we waited for window');
        await this.#recvOne();
      }
      const n = Math.min(bytes.length - off, this.#window, this.ch.maxPacket);
      this.c.sendChannelData(this.ch.remoteId, bytes.subarray(off, off + n));
      this.#window -= n;
      off += n;
    }
  }

  /** Handles one SSH message for this channel. */
  async #recvOne(): Promise<void> {
    const p = await this.c.recv('a message on the sftp channel');
    const type = p[0];
    const r = new SshReader(p, 1);
    if (type === MSG.CHANNEL_SUCCESS || type === MSG.CHANNEL_FAILURE) return;
    const recipient = r.u32();
    if (recipient !== this.ch.localId) return; // another channel's late traffic
    if (type === MSG.CHANNEL_WINDOW_ADJUST) {
      this.#window += r.u32();
    } else if (type === MSG.CHANNEL_DATA) {
      this.#buf = Buffer.concat([this.#buf, r.bytes()]);
    } else if (type === MSG.CHANNEL_EOF) {
      this.eof = true;
    } else if (type === MSG.CHANNEL_CLOSE) {
      this.closed = true;
      // RFC 4254 §5.3: answer with our own CLOSE.
      this.c.send(new SshWriter(16).u8(MSG.CHANNEL_CLOSE).u32(this.ch.remoteId).bytes());
    } else if (type === MSG.CHANNEL_REQUEST) {
      if (r.ascii() === 'exit-status') {
        r.bool();
        this.exitStatus = r.u32();
      }
    } else {
      throw new Error(`unexpected message ${type} on the sftp channel`);
    }
  }

  /** The next SFTP packet, or the channel's CLOSE. */
  async next(): Promise<Event> {
    for (;;) {
      if (this.#buf.length >= 4) {
        const len = this.#buf.readUInt32BE(0);
        if (this.#buf.length >= 4 + len) {
          const body = this.#buf.subarray(4, 4 + len);
          this.#buf = this.#buf.subarray(4 + len);
          return { kind: 'packet', body };
        }
      }
      if (this.closed) return { kind: 'close' };
      await this.#recvOne();
    }
  }

  async packet(what: string): Promise<Buffer> {
    const e = await this.next();
    if (e.kind !== 'packet') throw new Error(`expected ${what}, got the channel's ${e.kind}`);
    return e.body;
  }

  async status(what: string): Promise<Status> {
    const body = await this.packet(what);
    assert.is(body[0], SSH_FXP.STATUS, `${what}: a STATUS (got type ${body[0]})`);
    const r = new SshReader(body, 1);
    return { id: r.u32(), code: r.u32(), message: r.utf8() };
  }

  async handle(what: string): Promise<Buffer> {
    const body = await this.packet(what);
    if (body[0] === SSH_FXP.STATUS) {
      const r = new SshReader(body, 1);
      r.u32();
      throw new Error(`${what}: status ${r.u32()} ${r.utf8()}`);
    }
    assert.is(body[0], SSH_FXP.HANDLE, `${what}: a HANDLE`);
    const r = new SshReader(body, 1);
    r.u32();
    return Buffer.from(r.bytes());
  }

  async start(): Promise<void> {
    await this.send(init());
    const v = await this.packet('VERSION');
    assert.is(v[0], SSH_FXP.VERSION);
    assert.is(v.readUInt32BE(1), 3);
  }

  /** Waits for the channel to be closed by the server, skipping anything before (EOF, exit-status). */
  async closedByServer(what: string): Promise<void> {
    const e = await this.next();
    if (e.kind === 'packet') throw new Error(`${what}: expected the channel to close, got SFTP packet type ${e.body[0]}`);
  }

  /** A request that must still be answered: the session is alive. */
  async alive(id: number): Promise<void> {
    await this.send(realpath(id, '/'));
    const body = await this.packet('the NAME for REALPATH');
    assert.is(body[0], SSH_FXP.NAME, 'REALPATH answered with NAME');
    assert.is(body.readUInt32BE(1), id);
  }
}

interface Ctx {
  gw: Gateway;
  c: RawClient;
}

const test = suite<Ctx>('gateway: malformed and out-of-order SFTP packets over SSH', {} as Ctx);

test.before(async (ctx) => {
  ctx.gw = await startGateway();
  const least = await creds('least');
  ctx.c = await RawClient.login(ctx.gw.port, least.accessKeyId, least.secretAccessKey);
});

test.after(async (ctx) => {
  destroyAllClients();
  killStrayChildren();
  await ctx.gw?.close();
  await removePrefix(BUCKET, PREFIX + '/');
});

test('a request before INIT closes the channel; the connection opens another', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.send(realpath(1, '/'));
  await s.closedByServer('a REALPATH before INIT');
  const again = await RawSftp.open(c);
  await again.start();
  await again.alive(2);
});

test('a length prefix over the cap closes the channel, with nothing allocated for it', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.start();
  const huge = Buffer.alloc(8);
  huge.writeUInt32BE(0xffff_fff0, 0);
  huge[4] = SSH_FXP.REALPATH;
  await s.send(huge);
  await s.closedByServer('a 4 GiB length prefix');
});

test('raw garbage after INIT closes the channel', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.start();
  // "GET " read as a length prefix is 0x47455420, about 1.2 GB: over the cap.
  await s.send(Buffer.from('GET / HTTP/1.1\r\nHost: s3gw\r\n\r\n'));
  await s.closedByServer('an HTTP request after INIT');
});

test('an empty packet (length 0, no type, no id) closes the channel', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.start();
  await s.send(Buffer.alloc(4));
  await s.closedByServer('a zero-length packet');
});

test('a second INIT closes the channel', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.start();
  await s.send(init());
  await s.closedByServer('a second INIT');
});

test('a request whose string length overruns its packet gets BAD_MESSAGE, and the session goes on', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.start();
  // OPEN id 7 whose filename claims 65535 bytes but the packet ends after 3.
  await s.send(frame(new SshWriter(32).u8(SSH_FXP.OPEN).u32(7).u32(0xffff).raw(Buffer.from('abc')).bytes()));
  const st = await s.status('the answer to a truncated OPEN');
  assert.is(st.id, 7);
  assert.is(st.code, SSH_FX.BAD_MESSAGE, `status ${st.code}: ${st.message}`);
  // Trailing bytes after a complete request are malformed too.
  await s.send(frame(new SshWriter(32).u8(SSH_FXP.REALPATH).u32(8).string('/').raw(Buffer.from([1, 2, 3])).bytes()));
  const st2 = await s.status('the answer to a REALPATH with trailing bytes');
  assert.is(st2.id, 8);
  assert.is(st2.code, SSH_FX.BAD_MESSAGE, `status ${st2.code}: ${st2.message}`);
  // A packet type no version of draft-02 defines, with an id: answered, not fatal.
  await s.send(frame(new SshWriter(16).u8(0xee).u32(9).raw(Buffer.from('garbage')).bytes()));
  const st3 = await s.status('the answer to packet type 238');
  assert.is(st3.id, 9);
  assert.ok(
    st3.code === SSH_FX.BAD_MESSAGE || st3.code === SSH_FX.OP_UNSUPPORTED,
    `an unknown type: BAD_MESSAGE or OP_UNSUPPORTED, got ${st3.code} ${st3.message}`,
  );
  await s.alive(10);
});

test('out-of-order requests: READ and CLOSE of a handle never opened, CLOSE twice', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.start();
  await s.send(read(1, Buffer.from('nope'), 0, 100));
  const r1 = await s.status('READ of an unknown handle');
  assert.is(r1.id, 1);
  assert.is(r1.code, SSH_FX.FAILURE, r1.message);
  assert.match(r1.message, /handle/);
  await s.send(open(2, `/${BUCKET}/${PREFIX}/never-there`, SSH_FXF.READ));
  const r2 = await s.status('OPEN of a missing file');
  assert.is(r2.code, SSH_FX.NO_SUCH_FILE, r2.message);
  await s.send(close(3, Buffer.from('00000000')));
  const r3 = await s.status('CLOSE of an unknown handle');
  assert.is(r3.code, SSH_FX.FAILURE, r3.message);
  // A handle used after its CLOSE: the CLOSE commits (an empty object), what follows fails.
  const key = `${PREFIX}/closed-twice`;
  await s.send(open(4, `/${BUCKET}/${key}`, SSH_FXF.WRITE | SSH_FXF.CREAT | SSH_FXF.TRUNC));
  const h = await s.handle('OPEN for writing');
  await s.send(close(5, h));
  assert.is((await s.status('CLOSE')).code, SSH_FX.OK);
  await s.send(close(6, h));
  const again = await s.status('a second CLOSE');
  assert.is(again.id, 6);
  assert.is(again.code, SSH_FX.FAILURE, again.message);
  await s.send(write(7, h, 0, Buffer.from('late')));
  const late = await s.status('a WRITE after CLOSE');
  assert.is(late.code, SSH_FX.FAILURE, late.message);
  await assertStored(BUCKET, key, 0);
  await s.alive(8);
});

test('a WRITE at the wrong offset fails with the "sequential" message and nothing is stored', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.start();
  const key = `${PREFIX}/out-of-order.bin`;
  await s.send(open(1, `/${BUCKET}/${key}`, SSH_FXF.WRITE | SSH_FXF.CREAT | SSH_FXF.TRUNC));
  const h = await s.handle('OPEN for writing');
  await s.send(write(2, h, 0, Buffer.alloc(1000, 1)));
  const w1 = await s.status('the first WRITE');
  assert.is(w1.code, SSH_FX.OK, w1.message);
  await s.send(write(3, h, 5000, Buffer.alloc(1000, 2)));
  const w2 = await s.status('a WRITE past a hole');
  assert.is(w2.id, 3);
  assert.is(w2.code, SSH_FX.FAILURE, w2.message);
  assert.match(w2.message, /sequential/);
  assert.match(w2.message, /offset 5000/);
  // The handle is poisoned: even the right offset fails now, and CLOSE does not commit.
  await s.send(write(4, h, 1000, Buffer.alloc(10, 3)));
  const w3 = await s.status('a WRITE after the failed one');
  assert.is(w3.code, SSH_FX.FAILURE, w3.message);
  await s.send(close(5, h));
  const cl = await s.status('CLOSE of the failed upload');
  assert.is.not(cl.code, SSH_FX.OK, `CLOSE must not report success for an upload with a hole: ${cl.message}`);
  assert.is(await headOrNull(BUCKET, key), null, 'no object');
  assert.equal(await pendingUploads(BUCKET, key), [], 'no pending upload');
  await s.alive(6);
});

test('a WRITE that rewinds to offset 0 fails too', async ({ c }) => {
  const s = await RawSftp.open(c);
  await s.start();
  const key = `${PREFIX}/rewind.bin`;
  await s.send(open(1, `/${BUCKET}/${key}`, SSH_FXF.WRITE | SSH_FXF.CREAT | SSH_FXF.TRUNC));
  const h = await s.handle('OPEN for writing');
  await s.send(write(2, h, 0, Buffer.alloc(100, 1)));
  assert.is((await s.status('WRITE 0')).code, SSH_FX.OK);
  await s.send(write(3, h, 0, Buffer.alloc(100, 1)));
  const w = await s.status('WRITE 0 again');
  assert.is(w.code, SSH_FX.FAILURE, w.message);
  assert.match(w.message, /sequential/);
  await s.send(close(4, h));
  await s.status('CLOSE');
  assert.is(await headOrNull(BUCKET, key), null);
});

test('an upload left open when the connection drops is aborted (--partial-uploads discard)', async () => {
  // With the default (keep), what arrived would be kept for resume: spec/gateway/resume.test.ts.
  const gw = await startGateway(['--partial-uploads', 'discard']);
  try {
    await dropMidUpload(gw);
  } finally {
    await gw.close();
  }
});

async function dropMidUpload(gw: Gateway): Promise<void> {
  const least = await creds('least');
  const c2 = await RawClient.login(gw.port, least.accessKeyId, least.secretAccessKey);
  const s = await RawSftp.open(c2);
  await s.start();
  const key = `${PREFIX}/dropped.bin`;
  await s.send(open(1, `/${BUCKET}/${key}`, SSH_FXF.WRITE | SSH_FXF.CREAT | SSH_FXF.TRUNC));
  const h = await s.handle('OPEN');
  // 6 MiB in 30 KiB writes: past one part, so a multipart upload is under way.
  const chunk = Buffer.alloc(30 * 1024, 7);
  let id = 2;
  let off = 0;
  while (off < 6 * 1024 * 1024) {
    await s.send(write(id++, h, off, chunk));
    off += chunk.length;
    const st = await s.status('WRITE');
    assert.is(st.code, SSH_FX.OK, st.message);
  }
  await eventually('the multipart upload to start', async () => (await pendingUploads(BUCKET, key)).length > 0);
  c2.close();
  await eventually(
    'the gateway to abort the upload',
    async () => (await pendingUploads(BUCKET, key)).length === 0 && (await headOrNull(BUCKET, key)) === null,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${logTail(gw)}`);
  });
}

test('after all that, the gateway serves new logins with real clients', async ({ gw, c }) => {
  const r = await sftpBatch(gw, 'least', ['ls /']);
  assertOk(r);
  assert.match(r.out, /example-bucket/);
  const p = await paramiko<{ results: Array<{ ok: boolean; value: unknown }> }>(gw, 'least', 'ops', {
    ops: [{ op: 'listdir', path: '/' }],
  });
  assert.ok(p.results[0]!.ok);
  // And the hostile connection itself is still up.
  const s = await RawSftp.open(c);
  await s.start();
  await s.alive(1);
});

test.run();
