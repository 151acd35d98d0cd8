import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError } from '../../src/backend.js';
import { silentLogger } from '../../src/log.js';
import { parseScpCommand } from '../../src/scp/command.js';
import { serveScp } from '../../src/scp/server.js';
import type { SftpEvent } from '../../src/sftp/events.js';
import { MemoryBackend, type MemoryBackendOptions } from '../helpers/memory-backend.js';
import { duplexPair, type PipeEnd } from '../sftp/client.js';

/**
 * A test-side SCP peer over an in-memory pipe with real backpressure: it writes raw protocol
 * bytes and reads what the server sends, byte-exact. Written from protocol-notes §3, not from
 * src/scp, so the two do not share a misunderstanding.
 */
class Peer {
  readonly end: PipeEnd;
  #buf = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | null = null;
  stderr = '';

  constructor(end: PipeEnd) {
    this.end = end;
    end.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
      this.#wake?.();
    });
    end.on('end', () => {
      this.#ended = true;
      this.#wake?.();
    });
  }

  send(data: string | Buffer): void {
    this.end.write(data);
  }

  async #need(n: number): Promise<void> {
    while (this.#buf.length < n) {
      if (this.#ended) throw new Error(`server output ended after ${this.#buf.length} bytes, ${n} wanted`);
      await new Promise<void>((r) => (this.#wake = r));
    }
  }

  async take(n: number): Promise<Buffer> {
    await this.#need(n);
    const b = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return b;
  }

  async line(): Promise<string> {
    for (;;) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl >= 0) return (await this.take(nl + 1)).toString('utf8');
      await this.#need(this.#buf.length + 1);
    }
  }

  /** One reply: "" for \0, or the \x01/\x02 line. */
  async reply(): Promise<string> {
    const [b] = await this.take(1);
    if (b === 0) return '';
    this.#buf = Buffer.concat([Buffer.from([b!]), this.#buf]);
    return this.line();
  }

  /** Everything the server sends until the end, once it is done. */
  async rest(): Promise<string> {
    while (!this.#ended) await new Promise<void>((r) => (this.#wake = r));
    return this.#buf.toString('utf8');
  }
}

interface Run {
  peer: Peer;
  backend: MemoryBackend;
  events: SftpEvent[];
  /** The exit status; the server's end is then closed as the gateway's Channel.exit would. */
  status: Promise<number>;
}

function start(command: string, backend = new MemoryBackend(), opts: MemoryBackendOptions = {}): Run {
  Object.assign(backend, opts);
  const cmd = parseScpCommand(command);
  if ('error' in cmd) throw new Error(cmd.error);
  const [server, client] = duplexPair();
  const peer = new Peer(client);
  const channel = Object.assign(server, { writeStderr: (t: string | Buffer) => (peer.stderr += t.toString()) });
  const events: SftpEvent[] = [];
  const status = serveScp(channel, backend, cmd, { log: silentLogger, onEvent: (e) => events.push(e) }).then((s) => {
    server.end();
    return s;
  });
  return { peer, backend, events, status };
}

function withBucket(): MemoryBackend {
  const b = new MemoryBackend();
  b.mkdirp('/b');
  return b;
}

const Sink = suite('scp/server sink (-t): uploads');

Sink('one file into a directory: \\0 to start, after the C line, after the data', async () => {
  const r = start('scp -t /b', withBucket());
  assert.is(await r.peer.reply(), '');
  r.peer.send('C0644 5 a.txt\n');
  assert.is(await r.peer.reply(), '');
  r.peer.send('hello\0');
  assert.is(await r.peer.reply(), '');
  r.peer.end.end();
  assert.is(await r.status, 0);
  assert.is(r.backend.file('/b/a.txt')?.toString(), 'hello');
  assert.is(r.events.length, 1);
  const e = r.events[0]!;
  assert.ok(e.type === 'upload' && e.ok && e.bytes === 5 && e.path === '/b/a.txt');
  assert.ok(r.backend.calls.includes('openWrite /b/a.txt'));
});

Sink('the size is passed to the backend in advance; T times become the mtime', async () => {
  const b = withBucket();
  const seen: unknown[] = [];
  const openWrite = b.openWrite.bind(b);
  b.openWrite = (p, o) => {
    seen.push(o);
    return openWrite(p, o);
  };
  const r = start('scp -p -t /b', b);
  await r.peer.reply();
  r.peer.send('T1234567890 0 1234567891 0\n');
  assert.is(await r.peer.reply(), '');
  r.peer.send('C0600 3 t\n');
  await r.peer.reply();
  r.peer.send('abc\0');
  assert.is(await r.peer.reply(), '');
  r.peer.end.end();
  assert.is(await r.status, 0);
  assert.equal(seen, [{ exclusive: false, expectedSize: 3, mtime: 1234567890 }]);
  assert.is((await b.stat('/b/t')).mtime, 1234567890);
});

Sink('a target that is not a directory is the file name; zero-byte files are stored', async () => {
  const r = start('scp -t /b/new', withBucket());
  await r.peer.reply();
  r.peer.send('C0644 0 whatever\n');
  assert.is(await r.peer.reply(), '');
  r.peer.send('\0');
  assert.is(await r.peer.reply(), '');
  r.peer.end.end();
  assert.is(await r.status, 0);
  assert.is(r.backend.file('/b/new')?.length, 0);
});

Sink('-r: D makes missing directories, E leaves them, files land inside', async () => {
  const b = withBucket();
  b.mkdirp('/b/top'); // exists already: no mkdir
  const r = start('scp -r -t /b', b);
  await r.peer.reply();
  for (const [line, data] of [
    ['D0755 0 top', null],
    ['C0644 2 f1', 'f1'],
    ['D0755 0 sub', null],
    ['C0644 2 f2', 'f2'],
    ['E', null],
    ['E', null],
    ['D0700 0 other', null],
    ['E', null],
  ] as const) {
    r.peer.send(line + '\n');
    assert.is(await r.peer.reply(), '', line);
    if (data !== null) {
      r.peer.send(data + '\0');
      assert.is(await r.peer.reply(), '');
    }
  }
  r.peer.end.end();
  assert.is(await r.status, 0);
  assert.is(b.file('/b/top/f1')?.toString(), 'f1');
  assert.is(b.file('/b/top/sub/f2')?.toString(), 'f2');
  assert.ok(b.exists('/b/other'));
  assert.ok(!b.calls.includes('mkdir /b/top'));
  assert.ok(b.calls.includes('mkdir /b/top/sub'));
});

Sink('-r into a missing target: the first D becomes the target itself (scp -r dir host:new)', async () => {
  const r = start('scp -r -t /b/new', withBucket());
  await r.peer.reply();
  r.peer.send('D0755 0 dir\n');
  assert.is(await r.peer.reply(), '');
  r.peer.send('C0644 1 x\n');
  await r.peer.reply();
  r.peer.send('x\0');
  await r.peer.reply();
  r.peer.send('E\n');
  await r.peer.reply();
  r.peer.end.end();
  assert.is(await r.status, 0);
  assert.is(r.backend.file('/b/new/x')?.toString(), 'x');
});

Sink('-d: a target that is not a directory is a fatal \\x02 before anything starts', async () => {
  const b = withBucket();
  b.putFile('/b/file', 'x');
  const r = start('scp -d -t /b/file', b);
  assert.match(await r.peer.reply(), /^\x02scp: \/b\/file: Not a directory\n$/);
  assert.is(await r.status, 1);
});

Sink('a file that cannot be opened gets \\x01; the client skips it and the next one works', async () => {
  const r = start('scp -t /b', withBucket(), {
    before: (op, p) => {
      if (op === 'openWrite' && p === '/b/denied') throw new BackendError('EACCES', 'denied');
    },
  });
  await r.peer.reply();
  r.peer.send('C0644 3 denied\n');
  assert.is(await r.peer.reply(), '\x01scp: /b/denied: Permission denied\n');
  r.peer.send('C0644 2 ok\n');
  assert.is(await r.peer.reply(), '');
  r.peer.send('ok\0');
  assert.is(await r.peer.reply(), '');
  r.peer.end.end();
  assert.is(await r.status, 1);
  assert.is(r.backend.file('/b/ok')?.toString(), 'ok');
  assert.equal(r.events.map((e) => e.type === 'upload' && e.ok), [false, true]);
});

Sink('a write that fails: the rest of the file is read and dropped, the upload aborted, \\x01 sent', async () => {
  const r = start('scp -t /b', withBucket(), {
    before: (op) => {
      if (op === 'write') throw new BackendError('EIO', 'S3 said no');
    },
  });
  await r.peer.reply();
  r.peer.send('C0644 6 bad\n');
  await r.peer.reply();
  r.peer.send('abc');
  r.peer.send('def\0');
  assert.is(await r.peer.reply(), '\x01scp: /b/bad: S3 said no\n');
  r.peer.send('C0644 0 next\n');
  assert.is(await r.peer.reply(), '');
  r.peer.end.end();
  assert.is(await r.status, 1);
  assert.ok(!r.backend.exists('/b/bad'));
  // 'next' (zero bytes) was complete when the client left without its trailing \0: stored.
  assert.is(r.backend.aborted, 1);
  assert.ok(r.backend.exists('/b/next'));
  assert.is(r.backend.pending.size, 0);
});

Sink('the client reporting a read error instead of the trailing \\0 leaves nothing stored', async () => {
  const r = start('scp -t /b', withBucket());
  await r.peer.reply();
  r.peer.send('C0644 3 f\n');
  await r.peer.reply();
  r.peer.send('abc\x01scp: f: Input/output error\n');
  assert.match(await r.peer.reply(), /^\x01scp: \/b\/f: /);
  r.peer.end.end();
  assert.is(await r.status, 1);
  assert.ok(!r.backend.exists('/b/f'));
  assert.is(r.backend.aborted, 1);
  assert.is(r.backend.pending.size, 0);
});

Sink('a client that disappears mid-file aborts the upload', async () => {
  const r = start('scp -t /b', withBucket());
  await r.peer.reply();
  r.peer.send('C0644 10 cut\n');
  await r.peer.reply();
  r.peer.send('abc');
  r.peer.end.end();
  assert.is(await r.status, 1);
  assert.ok(!r.backend.exists('/b/cut'));
  assert.is(r.backend.aborted, 1);
  assert.is(r.backend.pending.size, 0);
  const e = r.events[0]!;
  assert.ok(e.type === 'upload' && !e.ok && e.bytes === 3);
});

Sink('a file whose data is complete but the client ends without the trailing \\0 (libssh2, curl scp://) is stored', async () => {
  const r = start('scp -t /b/f', withBucket());
  await r.peer.reply();
  r.peer.send('C0644 3 f\n');
  await r.peer.reply();
  r.peer.send('abc');
  r.peer.end.end();
  assert.is(await r.status, 0);
  assert.is(r.backend.file('/b/f')?.toString(), 'abc');
});

Sink('-d or a trailing / on a target that does not exist yet: a new prefix, files keep their names', async () => {
  for (const cmd of ['scp -d -t /b/new', 'scp -t /b/new/']) {
    const r = start(cmd, withBucket());
    await r.peer.reply();
    r.peer.send('C0644 1 one\n');
    await r.peer.reply();
    r.peer.send('1\0');
    assert.is(await r.peer.reply(), '');
    r.peer.end.end();
    assert.is(await r.status, 0, cmd);
    assert.is(r.backend.file('/b/new/one')?.toString(), '1', cmd);
  }
});

Sink('a client that disappears inside a directory ends with status 1', async () => {
  const r = start('scp -r -t /b', withBucket());
  await r.peer.reply();
  r.peer.send('D0755 0 d\n');
  await r.peer.reply();
  r.peer.end.end();
  assert.is(await r.status, 1);
});

Sink('warnings from the client are counted (status 1), fatal ones end the session', async () => {
  let r = start('scp -t /b', withBucket());
  await r.peer.reply();
  r.peer.send('\x01scp: local: No such file or directory\n');
  r.peer.send('C0644 1 y\n');
  assert.is(await r.peer.reply(), '');
  r.peer.send('y\0');
  await r.peer.reply();
  r.peer.end.end();
  assert.is(await r.status, 1);
  assert.ok(r.backend.exists('/b/y'));

  r = start('scp -t /b', withBucket());
  await r.peer.reply();
  r.peer.send('\x02scp: giving up\n');
  assert.is(await r.status, 1);
});

const hostile: [string, string, RegExp][] = [
  ['-r -t /b', 'D0755 0 ..\n', /unexpected filename/],
  ['-r -t /b', 'D0755 0 .\n', /unexpected filename/],
  ['-t /b', 'C0644 1 a/b\n', /unexpected filename/],
  ['-t /b', 'C0644 1 /etc\n', /unexpected filename/],
  ['-t /b', 'C0644 1 \n', /unexpected filename/],
  ['-t /b', 'C0644 5497558138881 big\n', /size out of range/],
  ['-t /b', 'C0644 99999999999999999999999 big\n', /size out of range/],
  ['-t /b', 'C0644 -1 x\n', /size not present/],
  ['-t /b', 'C0644 +1 x\n', /size not present/],
  ['-t /b', 'C0644 0x10 x\n', /size not present/],
  ['-t /b', 'C0644 1\n', /size not delimited/],
  ['-t /b', 'C0999 1 x\n', /bad mode/],
  ['-t /b', 'C644 1 x\n', /mode not delimited|bad mode/],
  ['-t /b', 'C06444 1 x\n', /mode not delimited/],
  ['-t /b', 'Cabcd 1 x\n', /bad mode/],
  ['-t /b', 'D0755 0 d\n', /without -r/],
  ['-t /b', 'E\n', /E outside/],
  ['-t /b', 'X\n', /expected control record/],
  ['-t /b', '\n', /unexpected <newline>/],
  ['-t /b', 'C0644 1 a\x1b[31m\n', /control character/],
  ['-t /b', 'C0644 1 a\rb\n', /control character/],
  ['-t /b', 'C0644 1 a\0b\n', /control character/],
  ['-t /b', 'T1 0 1\n', /times not delimited/],
  ['-t /b', 'T1 1000000 1 0\n', /microseconds out of range/],
  ['-t /b', 'T-1 0 1 0\n', /time out of range/],
  ['-t /b', 'T9999999999999 0 1 0\n', /time out of range/],
  ['-t /b', 'E \n', /after E/],
  ['-t /b', Buffer.concat([Buffer.from('C0644 1 '), Buffer.from([0xff, 0xfe]), Buffer.from('\n')]).toString('latin1'), /UTF-8/],
];

for (const [flags, line, why] of hostile) {
  Sink(`hostile record ${JSON.stringify(line)}: \\x02, status 1, nothing stored`, async () => {
    const r = start(`scp ${flags}`, withBucket());
    await r.peer.reply();
    r.peer.send(Buffer.from(line, 'latin1'));
    const reply = await r.peer.reply();
    assert.match(reply, /^\x02scp: protocol error: /);
    assert.match(reply, why);
    assert.is(await r.status, 1);
    assert.equal([...r.backend.root.children.get('b')!.kind === 'dir' ? (r.backend.root.children.get('b') as { children: Map<string, unknown> }).children.keys() : []], []);
    assert.is(r.backend.pending.size, 0);
  });
}

Sink('an endless line without a newline is cut at the cap, not buffered', async () => {
  const r = start('scp -t /b', withBucket());
  await r.peer.reply();
  const junk = Buffer.alloc(64 * 1024, 'C');
  r.peer.send(junk);
  assert.match(await r.peer.reply(), /^\x02scp: protocol error: line longer than 4096 bytes\n$/);
  assert.is(await r.status, 1);
});

Sink('a bad record in the middle of a -r tree aborts nothing committed and ends the session', async () => {
  const r = start('scp -r -t /b', withBucket());
  await r.peer.reply();
  r.peer.send('D0755 0 d\n');
  await r.peer.reply();
  r.peer.send('C0644 1 ok\n');
  await r.peer.reply();
  r.peer.send('1\0');
  await r.peer.reply();
  r.peer.send('D0755 0 ..\n');
  assert.match(await r.peer.reply(), /^\x02/);
  assert.is(await r.status, 1);
  assert.ok(r.backend.exists('/b/d/ok'));
  assert.ok(!r.backend.exists('/ok'));
});

Sink('backpressure: while a write waits, the server stops taking data from the channel', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let writes = 0;
  const r = start('scp -t /b', withBucket(), {
    before: async (op) => {
      if (op === 'write' && ++writes === 1) await gate;
    },
  });
  await r.peer.reply();
  const size = 4 * 1024 * 1024;
  r.peer.send(`C0644 ${size} big\n`);
  await r.peer.reply();
  const data = Buffer.alloc(size, 7);
  let sent = 0;
  const pump = (async () => {
    for (let off = 0; off < size; off += 32 * 1024) {
      if (!r.peer.end.write(data.subarray(off, off + 32 * 1024))) {
        await new Promise((res) => r.peer.end.once('drain', res));
      }
      sent = off + 32 * 1024;
    }
    r.peer.end.write('\0');
  })();
  for (let i = 0; i < 50; i++) await new Promise((res) => setImmediate(res));
  assert.ok(sent < 512 * 1024, `the client got ${sent} bytes out while the backend was blocked`);
  release();
  await pump;
  assert.is(await r.peer.reply(), '');
  r.peer.end.end();
  assert.is(await r.status, 0);
  assert.is(r.backend.file('/b/big')?.length, size);
});

Sink.run();

const Source = suite('scp/server source (-f): downloads');

function filled(): MemoryBackend {
  const b = withBucket();
  b.putFile('/b/a.txt', 'hello', 1000);
  b.putFile('/b/c.txt', 'see', 2000);
  b.putFile('/b/b.bin', 'bin', 3000);
  b.putFile('/b/.hidden.txt', 'h', 4000);
  b.putFile('/b/dir/x', 'xx', 5000);
  b.putFile('/b/dir/sub/y', 'yyy', 6000);
  b.putFile('/b/star*', 'literal', 7000);
  return b;
}

/** Acks everything and returns the whole transcript once the server is done. */
async function transcript(command: string, backend = filled(), opts: MemoryBackendOptions = {}) {
  const r = start(command, backend, opts);
  r.peer.send('\0');
  const out: string[] = [];
  r.status.then(() => undefined);
  for (;;) {
    let line: string;
    try {
      line = await r.peer.line();
    } catch {
      break;
    }
    out.push(line);
    if (line.startsWith('C')) {
      const size = Number(line.split(' ')[1]);
      r.peer.send('\0');
      const data = await r.peer.take(size + 1);
      out.push(data.toString('latin1'));
      r.peer.send('\0');
    } else if (!line.startsWith('\x01')) r.peer.send('\0');
  }
  return { out, status: await r.status, events: r.events, backend: r.backend };
}

Source('one file: wait for \\0, C line, ack, data and \\0, ack', async () => {
  const r = start('scp -f /b/a.txt', filled());
  r.peer.send('\0');
  assert.is(await r.peer.line(), 'C0644 5 a.txt\n');
  r.peer.send('\0');
  assert.is((await r.peer.take(6)).toString(), 'hello\0');
  r.peer.send('\0');
  assert.is(await r.status, 0);
  assert.is(await r.peer.rest(), '');
  const e = r.events[0]!;
  assert.ok(e.type === 'download' && e.ok && e.bytes === 5 && e.path === '/b/a.txt');
});

Source('-p sends T before C with the stored mtime', async () => {
  const t = await transcript('scp -p -f /b/a.txt');
  assert.equal(t.out, ['T1000 0 1000 0\n', 'C0644 5 a.txt\n', 'hello\0']);
  assert.is(t.status, 0);
});

Source('-r sends a prefix as D, its files and subdirectories, then E', async () => {
  const t = await transcript('scp -r -f /b/dir');
  assert.equal(t.out, ['D0755 0 dir\n', 'D0755 0 sub\n', 'C0644 3 y\n', 'yyy\0', 'E\n', 'C0644 2 x\n', 'xx\0', 'E\n']);
  assert.is(t.status, 0);
  assert.is(t.events.length, 2);
});

Source('-r -p: T lines for directories and files', async () => {
  const t = await transcript('scp -r -p -f /b/dir/sub');
  assert.equal(t.out[1], 'D0755 0 sub\n');
  assert.match(t.out[0]!, /^T\d+ 0 \d+ 0\n$/);
  assert.equal(t.out.slice(2), ['T6000 0 6000 0\n', 'C0644 3 y\n', 'yyy\0', 'E\n']);
});

Source('missing paths and directories without -r get \\x01 each; the rest goes on; status 1', async () => {
  const t = await transcript('scp -f /b/missing /b/dir /b/a.txt');
  assert.equal(t.out, [
    '\x01scp: /b/missing: No such file or directory\n',
    '\x01scp: /b/dir: not a regular file\n',
    'C0644 5 a.txt\n',
    'hello\0',
  ]);
  assert.is(t.status, 1);
});

Source('permission errors are reported per path', async () => {
  const t = await transcript('scp -f /b/a.txt /b/c.txt', filled(), {
    before: (op, p) => {
      if (op === 'openRead' && p === '/b/a.txt') throw new BackendError('EACCES', 'denied');
    },
  });
  assert.equal(t.out, ['\x01scp: /b/a.txt: Permission denied\n', 'C0644 3 c.txt\n', 'see\0']);
  assert.is(t.status, 1);
  assert.equal(t.events.map((e) => e.type === 'download' && e.ok), [false, true]);
});

Source('globs expand against the parent listing; hidden names need an explicit dot', async () => {
  const t = await transcript('scp -f /b/*.txt');
  assert.equal(t.out, ['C0644 5 a.txt\n', 'hello\0', 'C0644 3 c.txt\n', 'see\0']);
  const h = await transcript('scp -f /b/.*.txt /b/[ab].*');
  assert.equal(h.out.filter((l) => l.startsWith('C')), ['C0644 1 .hidden.txt\n', 'C0644 5 a.txt\n', 'C0644 3 b.bin\n']);
  const d = await transcript('scp -f /b/d?r/*');
  assert.equal(d.out, ['\x01scp: /b/dir/sub: not a regular file\n', 'C0644 2 x\n', 'xx\0']);
});

Source('a quoted glob is literal; a pattern with no match is a per-path error', async () => {
  const t = await transcript("scp -f '/b/star*'");
  assert.equal(t.out, ['C0644 7 star*\n', 'literal\0']);
  const n = await transcript('scp -f /b/*.none /b/a.txt');
  assert.equal(n.out, ['\x01scp: /b/*.none: No such file or directory\n', 'C0644 5 a.txt\n', 'hello\0']);
  assert.is(n.status, 1);
});

Source('data comes through readv views when the backend offers them', async () => {
  const b = new MemoryBackend({ readv: true });
  const big = Buffer.alloc(600 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  b.putFile('/b/big', big);
  const t = await transcript('scp -f /b/big', b);
  assert.equal(t.out[0], `C0644 ${big.length} big\n`);
  assert.ok(Buffer.from(t.out[1]!, 'latin1').subarray(0, big.length).equals(big));
});

Source('a read that fails midway: zeros make up the size and \\x01 replaces the final \\0', async () => {
  const b = filled();
  b.putFile('/b/big', Buffer.alloc(600 * 1024, 1));
  let reads = 0;
  const t = await transcript('scp -f /b/big', b, {
    before: (op) => {
      if (op === 'read' && ++reads === 2) throw new BackendError('EIO', 'GET failed');
    },
  });
  const data = Buffer.from(t.out[1]!, 'latin1');
  assert.is(data.length, 600 * 1024 + 1);
  assert.is(data[256 * 1024 - 1], 1);
  assert.is(data[256 * 1024], 0);
  assert.is(data[600 * 1024], 1, 'the \\x01 of the error line');
  assert.match(t.out[2]!, /^scp: \/b\/big: GET failed\n$/);
  assert.is(t.status, 1);
  assert.ok(t.events[0]!.type === 'download' && !t.events[0]!.ok);
});

Source('a client \\x01 in answer to C skips that file; \\x02 ends the session', async () => {
  const r = start('scp -f /b/a.txt /b/c.txt', filled());
  r.peer.send('\0');
  assert.is(await r.peer.line(), 'C0644 5 a.txt\n');
  r.peer.send('\x01scp: a.txt: Permission denied\n');
  assert.is(await r.peer.line(), 'C0644 3 c.txt\n');
  r.peer.send('\x02scp: enough\n');
  assert.is(await r.status, 1);
  assert.is(await r.peer.rest(), '');
});

Source('a client that goes away mid-transfer ends the session with status 1', async () => {
  const b = filled();
  b.putFile('/b/big', Buffer.alloc(2 * 1024 * 1024, 1));
  const r = start('scp -f /b/big', b);
  r.peer.send('\0');
  await r.peer.line();
  r.peer.send('\0');
  await r.peer.take(1000);
  r.peer.end.destroy();
  assert.is(await r.status, 1);
});

Source('names that cannot be sent (newline, control characters) are skipped with a warning', async () => {
  const b = filled();
  b.putFile('/b/dir2/bad\nname', 'z');
  b.putFile('/b/dir2/ok', 'o');
  const t = await transcript('scp -r -f /b/dir2', b);
  assert.equal(t.out, ['D0755 0 dir2\n', '\x01scp: /b/dir2/bad?name: name has control characters; not sent\n', 'C0644 1 ok\n', 'o\0', 'E\n']);
});

Source.run();
