import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { BackendError } from '../../src/backend.js';
import { F, openSession, S, settle, startSession, summary, T, type Reply, type Session } from './client.js';

const Server = suite('sftp/server: every request over an in-process stream');

/** Ends the client side and waits for the server to finish (every test ends this way). */
async function end(s: Session): Promise<void> {
  s.client.stream.end();
  await s.served;
}

function isStatus(r: Reply, code: number, message?: RegExp | string): void {
  assert.is(r.type, 'status', `expected STATUS ${code}, got ${JSON.stringify(summary(r))}`);
  if (r.type !== 'status') return;
  assert.is(r.code, code, `status ${r.code} "${r.message}", expected ${code}`);
  if (typeof message === 'string') assert.is(r.message, message);
  else if (message) assert.match(r.message, message);
}

function attrsOf(r: Reply) {
  assert.is(r.type, 'attrs', `expected ATTRS, got ${JSON.stringify(summary(r))}`);
  return r.type === 'attrs' ? r.attrs : {};
}

// ----------------------------------------------------------------------- INIT, REALPATH

Server('INIT gets VERSION 3 with the five OpenSSH extensions and check-file (crc32)', async () => {
  const s = startSession();
  assert.equal(await s.client.init(), {
    version: 3,
    extensions: [
      ['posix-rename@openssh.com', '1'],
      ['statvfs@openssh.com', '2'],
      ['fstatvfs@openssh.com', '2'],
      ['limits@openssh.com', '1'],
      ['fsync@openssh.com', '1'],
      ['check-file-handle', 'crc32'],
      ['check-file-name', 'crc32'],
    ],
  });
  await end(s);
});

Server('a client speaking a later version gets VERSION 3 (the client adapts, draft-02 §4)', async () => {
  const s = startSession();
  assert.is((await s.client.init(6)).version, 3);
  await end(s);
});

Server('REALPATH normalises without asking the backend', async () => {
  const s = await openSession();
  const want: [string, string][] = [
    ['.', '/'],
    ['', '/'],
    ['bucket/../../x/./y/', '/x/y'],
    ['/missing/dir', '/missing/dir'],
  ];
  for (const [p, n] of want) {
    const r = await s.client.realpath(p);
    assert.equal(r.type === 'name' ? r.entries : r, [{ filename: n, longname: n, attrs: {} }]);
  }
  assert.equal(s.backend.calls, []);
  await end(s);
});

// ----------------------------------------------------------------------- uploads

Server('upload: OPEN WRITE|CREAT|TRUNC, sequential WRITEs, CLOSE stores the object', async () => {
  const s = await openSession();
  const data = randomBytes(100_000);
  isStatus(await s.client.upload('/up.bin', data, 32 * 1024), S.OK);
  assert.ok(s.backend.file('/up.bin')!.equals(data));
  assert.is(s.backend.committed, 1);
  assert.is(attrsOf(await s.client.stat('/up.bin')).size, data.length);
  const up = s.events.find((e) => e.type === 'upload');
  assert.ok(up && up.type === 'upload' && up.ok && up.bytes === data.length && up.path === '/up.bin');
  await end(s);
});

Server('relative and dotted paths reach the backend normalised', async () => {
  const s = await openSession();
  isStatus(await s.client.mkdir('b'), S.OK);
  isStatus(await s.client.upload('./b/../b//x/', Buffer.from('hi')), S.OK);
  assert.is(s.backend.file('/b/x')!.toString(), 'hi');
  isStatus(await s.client.upload('../../../b/y', Buffer.from('yo')), S.OK);
  assert.is(s.backend.file('/b/y')!.toString(), 'yo');
  await end(s);
});

Server('the object appears only at CLOSE, and CLOSE is answered after the commit', async () => {
  let release!: () => void;
  const commitGate = new Promise<void>((r) => (release = r));
  const s = await openSession({ memory: { before: (op) => (op === 'commit' ? commitGate : undefined) } });
  const h = await s.client.handle(s.client.open('/late', F.WRITE | F.CREAT | F.TRUNC));
  isStatus(await s.client.write(h, 0, Buffer.from('abc')), S.OK);
  assert.not.ok(s.backend.exists('/late'), 'not visible before CLOSE');
  let closed = false;
  const close = s.client.close(h).then((r) => ((closed = true), r));
  // paramiko STATs right after CLOSE; sent before the CLOSE reply, it must still see the file.
  const stat = s.client.stat('/late');
  await settle();
  assert.ok(s.backend.calls.includes('commit /late'), 'the commit has started');
  assert.not.ok(closed, 'CLOSE waits for the commit');
  release();
  isStatus(await close, S.OK);
  assert.is(attrsOf(await stat).size, 3);
  await end(s);
});

Server('FSTAT on a write handle reports the size of the upload so far', async () => {
  const s = await openSession();
  const h = await s.client.handle(s.client.open('/f', F.WRITE | F.CREAT, { mtime: 1_600_000_000 }));
  await s.client.write(h, 0, Buffer.alloc(10));
  await s.client.write(h, 10, Buffer.alloc(5));
  const a = attrsOf(await s.client.fstat(h));
  assert.is(a.size, 15);
  assert.is(a.permissions, 0o100644);
  assert.is(a.mtime, 1_600_000_000);
  isStatus(await s.client.close(h), S.OK);
  assert.is(attrsOf(await s.client.stat('/f')).mtime, 1_600_000_000, 'OPEN attrs mtime is stored');
  await end(s);
});

Server('a WRITE at an unexpected offset fails, and CLOSE then stores nothing', async () => {
  const s = await openSession();
  const h = await s.client.handle(s.client.open('/seq', F.WRITE | F.CREAT | F.TRUNC));
  isStatus(await s.client.write(h, 0, Buffer.alloc(100)), S.OK);
  isStatus(
    await s.client.write(h, 200, Buffer.alloc(10)),
    S.FAILURE,
    'writes must be sequential: got offset 200, expected 100 (S3 objects cannot be written out of order)',
  );
  isStatus(await s.client.write(h, 100, Buffer.alloc(10)), S.FAILURE, /earlier write on this handle failed/);
  isStatus(await s.client.close(h), S.FAILURE, /upload not stored because a write failed: writes must be sequential/);
  assert.not.ok(s.backend.exists('/seq'));
  assert.is(s.backend.aborted, 1);
  assert.is(s.backend.pending.size, 0);
  const up = s.events.find((e) => e.type === 'upload');
  assert.ok(up && !up.ok && /sequential/.test(up.error ?? ''));
  await end(s);
});

Server('a backend write failure fails that WRITE and the upload', async () => {
  const s = await openSession({
    memory: {
      before: (op) => {
        if (op === 'write') throw new BackendError('EIO', 'the store failed');
      },
    },
  });
  const h = await s.client.handle(s.client.open('/w', F.WRITE | F.CREAT));
  isStatus(await s.client.write(h, 0, Buffer.from('x')), S.FAILURE, 'the store failed');
  isStatus(await s.client.close(h), S.FAILURE, /the store failed/);
  assert.not.ok(s.backend.exists('/w'));
  await end(s);
});

Server('a failed commit is FAILURE with its message, and the upload is aborted', async () => {
  const s = await openSession({
    memory: {
      before: (op) => {
        if (op === 'commit') throw new BackendError('EACCES', 'access denied by the bucket policy');
      },
    },
  });
  const h = await s.client.handle(s.client.open('/c', F.WRITE | F.CREAT | F.TRUNC));
  await s.client.write(h, 0, Buffer.from('data'));
  isStatus(await s.client.close(h), S.PERMISSION_DENIED, 'access denied by the bucket policy');
  assert.not.ok(s.backend.exists('/c'));
  assert.is(s.backend.pending.size, 0);
  isStatus(await s.client.fstat(h), S.FAILURE, /invalid handle/);
  await end(s);
});

Server('WRITE without CREAT: a missing file is NO_SUCH_FILE, an existing one is replaced', async () => {
  const s = await openSession();
  isStatus(await s.client.open('/none', F.WRITE), S.NO_SUCH_FILE, 'no such file: /none');
  s.backend.putFile('/old', 'old contents that are long');
  isStatus(await s.client.upload('/old', Buffer.from('new'), 32, F.WRITE), S.OK);
  assert.is(s.backend.file('/old')!.toString(), 'new', 'no tail of the old object is kept');
  await end(s);
});

Server('OPEN for writing on a directory fails', async () => {
  const s = await openSession();
  s.backend.mkdirp('/d');
  isStatus(await s.client.open('/d', F.WRITE | F.CREAT | F.TRUNC), S.FAILURE, /is a directory/);
  isStatus(await s.client.open('/d', F.WRITE), S.FAILURE, /is a directory/);
  isStatus(await s.client.open('/d', F.READ), S.FAILURE, /is a directory/);
  await end(s);
});

Server('EXCL on an existing file fails; on a new one it creates', async () => {
  const s = await openSession();
  s.backend.putFile('/x', 'x');
  isStatus(await s.client.open('/x', F.WRITE | F.CREAT | F.EXCL), S.FAILURE, /already exists/);
  isStatus(await s.client.upload('/new', Buffer.from('n'), 32, F.WRITE | F.CREAT | F.EXCL), S.OK);
  await end(s);
});

Server('READ|WRITE together is OP_UNSUPPORTED with a clear message', async () => {
  const s = await openSession();
  isStatus(await s.client.open('/rw', F.READ | F.WRITE | F.CREAT), S.OP_UNSUPPORTED, /both reading and writing/);
  await end(s);
});

Server('FSETSTAT on an upload: SIZE = its size is a no-op, another SIZE is refused, mtime is kept', async () => {
  const s = await openSession();
  const h = await s.client.handle(s.client.open('/scp', F.WRITE | F.CREAT));
  await s.client.write(h, 0, Buffer.alloc(42));
  isStatus(await s.client.fsetstat(h, { size: 42 }), S.OK);
  isStatus(await s.client.fsetstat(h, { size: 10 }), S.OP_UNSUPPORTED, /size 10, the upload holds 42 bytes/);
  isStatus(await s.client.fsetstat(h, { permissions: 0o600, uid: 5, gid: 6, mtime: 1_500_000_000 }), S.OK);
  isStatus(await s.client.close(h), S.OK, undefined);
  const a = attrsOf(await s.client.stat('/scp'));
  assert.is(a.size, 42);
  assert.is(a.mtime, 1_500_000_000);
  assert.ok(s.events.some((e) => e.type === 'setstat' && e.ok && e.path === '/scp'));
  await end(s);
});

// ----------------------------------------------------------------------- downloads

Server('download: READs return the data, EOF at the end, short reads clamp to the limit', async () => {
  const s = await openSession();
  const data = randomBytes(600_000);
  s.backend.putFile('/big', data);
  assert.ok((await s.client.download('/big', 65536, 4)).equals(data));
  const h = await s.client.handle(s.client.open('/big', F.READ));
  const r = await s.client.read(h, 0, 1 << 20);
  assert.is(r.type === 'data' && r.data.length, 261120, 'clamped to max-read-length');
  const last = await s.client.read(h, data.length - 5, 100);
  assert.ok(last.type === 'data' && last.data.equals(data.subarray(-5)));
  isStatus(await s.client.read(h, data.length, 100), S.EOF);
  isStatus(await s.client.read(h, data.length + 1000, 100), S.EOF);
  const zero = await s.client.read(h, 0, 0);
  assert.ok(zero.type === 'data' && zero.data.length === 0);
  isStatus(await s.client.read(h, data.length, 0), S.EOF);
  isStatus(await s.client.close(h), S.OK);
  const downloads = s.events.filter((e) => e.type === 'download');
  assert.is(downloads.length, 2);
  assert.ok(downloads[0]!.type === 'download' && downloads[0]!.ok && downloads[0]!.bytes === data.length);
  await end(s);
});

Server('download: a backend answering reads in pieces (readv) gives the same bytes, never more than asked', async () => {
  const s = await openSession({ memory: { readv: true } });
  const data = randomBytes(300_000);
  s.backend.putFile('/pieces', data);
  assert.ok((await s.client.download('/pieces', 32768, 8)).equals(data));
  const h = await s.client.handle(s.client.open('/pieces', F.READ));
  for (const [off, len] of [[0, 1], [1, 2], [5, 100], [data.length - 3, 100], [0, 1 << 20]] as const) {
    const r = await s.client.read(h, off, len);
    const want = data.subarray(off, off + Math.min(len, 261120));
    assert.ok(r.type === 'data' && r.data.equals(want), `read ${off}+${len}`);
  }
  isStatus(await s.client.read(h, data.length, 10), S.EOF);
  isStatus(await s.client.close(h), S.OK);
  const d = s.events.find((e) => e.type === 'download');
  assert.ok(d && d.type === 'download' && d.ok && d.bytes === data.length);
  await end(s);
});

Server('random reads work and FSTAT on a read handle reports the size', async () => {
  const s = await openSession();
  const data = randomBytes(10_000);
  s.backend.putFile('/r', data, 1_234_567);
  const h = await s.client.handle(s.client.open('/r', F.READ));
  for (const off of [9000, 10, 5000, 0]) {
    const r = await s.client.read(h, off, 100);
    assert.ok(r.type === 'data' && r.data.equals(data.subarray(off, off + 100)), `offset ${off}`);
  }
  const a = attrsOf(await s.client.fstat(h));
  assert.is(a.size, 10_000);
  assert.is(a.mtime, 1_234_567);
  await s.client.close(h);
  await end(s);
});

Server('OPEN READ of a missing file is NO_SUCH_FILE and is reported as a failed download', async () => {
  const s = await openSession();
  isStatus(await s.client.open('/nope', F.READ), S.NO_SUCH_FILE);
  assert.ok(s.events.some((e) => e.type === 'download' && !e.ok && e.path === '/nope'));
  await end(s);
});

Server('requests on the wrong kind of handle fail with a reason', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'abc');
  const r = await s.client.handle(s.client.open('/f', F.READ));
  const w = await s.client.handle(s.client.open('/g', F.WRITE | F.CREAT));
  const d = await s.client.handle(s.client.opendir('/'));
  isStatus(await s.client.write(r, 0, Buffer.from('x')), S.FAILURE, /open for reading, not open for writing/);
  isStatus(await s.client.read(w, 0, 10), S.FAILURE, /open for writing, not open for reading/);
  isStatus(await s.client.read(d, 0, 10), S.FAILURE, /directory handle/);
  isStatus(await s.client.readdir(r), S.FAILURE, /not a directory handle/);
  isStatus(await s.client.extended('fsync@openssh.com', (x) => x.string(d)), S.FAILURE, /file handle/);
  for (const h of [r, w, d]) isStatus(await s.client.close(h), S.OK);
  await end(s);
});

// ----------------------------------------------------------------------- handles

Server('unknown, malformed-length and closed handles are FAILURE "invalid handle"', async () => {
  const s = await openSession();
  isStatus(await s.client.close(Buffer.from('nope')), S.FAILURE, /invalid handle/);
  isStatus(await s.client.read(Buffer.from('toolonghandle'), 0, 1), S.FAILURE, /invalid handle/);
  s.backend.putFile('/f', 'x');
  const h = await s.client.handle(s.client.open('/f', F.READ));
  isStatus(await s.client.close(h), S.OK);
  isStatus(await s.client.close(h), S.FAILURE, /invalid handle/);
  isStatus(await s.client.read(h, 0, 1), S.FAILURE, /invalid handle/);
  await end(s);
});

Server('handles are 4 opaque bytes and never reused within a session', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'x');
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const h = await s.client.handle(s.client.open('/f', F.READ));
    assert.is(h.length, 4);
    assert.not.ok(seen.has(h.toString('hex')), 'reused');
    seen.add(h.toString('hex'));
    await s.client.close(h);
  }
  await end(s);
});

Server('requests sent after CLOSE on the same handle are refused, those before it still run', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'abcdef');
  const h = await s.client.handle(s.client.open('/f', F.READ));
  const before = s.client.read(h, 0, 3);
  const close = s.client.close(h);
  const after = s.client.read(h, 3, 3);
  const b = await before;
  assert.ok(b.type === 'data' && b.data.toString() === 'abc');
  isStatus(await close, S.OK);
  isStatus(await after, S.FAILURE, /invalid handle/);
  await end(s);
});

Server('too many open handles: FAILURE, and a slot frees on CLOSE', async () => {
  const s = await openSession({ maxHandles: 3 });
  s.backend.putFile('/f', 'x');
  const hs = [];
  for (let i = 0; i < 3; i++) hs.push(await s.client.handle(s.client.open('/f', F.READ)));
  isStatus(await s.client.open('/f', F.READ), S.FAILURE, 'too many open handles (the limit is 3)');
  isStatus(await s.client.opendir('/'), S.FAILURE, /too many open handles/);
  // Many OPENs in flight at once cannot overshoot either.
  await s.client.close(hs.pop()!);
  const burst = await Promise.all(Array.from({ length: 5 }, () => s.client.open('/f', F.READ)));
  assert.is(burst.filter((r) => r.type === 'handle').length, 1);
  const lim = await s.client.extended('limits@openssh.com');
  assert.ok(lim.type === 'extended' && Number(lim.data.readBigUInt64BE(24)) === 3);
  await end(s);
});

// ----------------------------------------------------------------------- attributes

Server('STAT and LSTAT report type, size, mode and times; missing is NO_SUCH_FILE', async () => {
  const s = await openSession();
  s.backend.putFile('/d/f', 'hello', 1_700_000_000);
  const f = attrsOf(await s.client.stat('/d/f'));
  assert.equal(f, { size: 5, permissions: 0o100644, atime: 1_700_000_000, mtime: 1_700_000_000 });
  assert.equal(attrsOf(await s.client.lstat('d/f')), f);
  assert.is(attrsOf(await s.client.stat('/d')).permissions, 0o040755);
  assert.is(attrsOf(await s.client.stat('/')).permissions, 0o040755);
  isStatus(await s.client.stat('/d/missing'), S.NO_SUCH_FILE, /no such file/);
  await end(s);
});

Server('SETSTAT keeps the mtime, accepts permissions and owners, refuses a size change', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'hello');
  isStatus(await s.client.setstat('/f', { mtime: 1_111_111_111, permissions: 0o600, uid: 1, gid: 1 }), S.OK);
  assert.is(attrsOf(await s.client.stat('/f')).mtime, 1_111_111_111);
  isStatus(await s.client.setstat('/f', { size: 5 }), S.OK, undefined);
  isStatus(await s.client.setstat('/f', { size: 0 }), S.OP_UNSUPPORTED, /changing the size/);
  isStatus(await s.client.setstat('/missing', { mtime: 1 }), S.NO_SUCH_FILE);
  isStatus(await s.client.setstat('/f', {}), S.OK);
  const ev = s.events.filter((e) => e.type === 'setstat');
  assert.equal(ev.map((e) => e.ok), [true, true, false, false, true]);
  await end(s);
});

Server('FSETSTAT on a read handle goes to the path', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'hello');
  const h = await s.client.handle(s.client.open('/f', F.READ));
  isStatus(await s.client.fsetstat(h, { mtime: 1_000_000_000 }), S.OK);
  await s.client.close(h);
  assert.is(attrsOf(await s.client.stat('/f')).mtime, 1_000_000_000);
  await end(s);
});

// ----------------------------------------------------------------------- directories

Server('MKDIR, OPENDIR, READDIR, RMDIR', async () => {
  const s = await openSession();
  isStatus(await s.client.mkdir('/d', { permissions: 0o700 }), S.OK);
  isStatus(await s.client.mkdir('/d'), S.FAILURE, /already exists/);
  isStatus(await s.client.mkdir('/no/such/parent'), S.NO_SUCH_FILE);
  s.backend.putFile('/d/b.txt', 'bb');
  s.backend.mkdirp('/d/a');
  const pages = await s.client.list('/d');
  const entries = pages.flat();
  assert.equal(entries.map((e) => e.filename), ['a', 'b.txt'], 'no "." or ".."');
  assert.match(entries[0]!.longname, /^drwxr-xr-x    2 s3       s3              0 \w{3} [ \d]\d (\d\d:\d\d| \d{4}) a$/);
  assert.match(entries[1]!.longname, /^-rw-r--r--    1 s3       s3              2 .* b\.txt$/);
  assert.equal(entries[1]!.attrs.size, 2);
  isStatus(await s.client.rmdir('/d'), S.FAILURE, /not empty/);
  isStatus(await s.client.remove('/d/b.txt'), S.OK);
  isStatus(await s.client.rmdir('/d/a'), S.OK);
  isStatus(await s.client.rmdir('/d'), S.OK);
  isStatus(await s.client.rmdir('/d'), S.NO_SUCH_FILE);
  assert.equal(
    s.events.filter((e) => e.type === 'mkdir' || e.type === 'rmdir').map((e) => `${e.type} ${e.ok}`),
    ['mkdir true', 'mkdir false', 'mkdir false', 'rmdir false', 'rmdir true', 'rmdir true', 'rmdir false'],
  );
  await end(s);
});

Server('OPENDIR of a file or a missing path fails', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'x');
  isStatus(await s.client.opendir('/f'), S.FAILURE, /not a directory/);
  isStatus(await s.client.opendir('/none'), S.NO_SUCH_FILE);
  await end(s);
});

Server('READDIR streams backend pages: at most 100 entries per NAME, each name once, then EOF', async () => {
  const s = await openSession({ memory: { pageSize: 70 } });
  const names: string[] = [];
  for (let i = 0; i < 250; i++) {
    const n = `file-${String(i).padStart(4, '0')}`;
    names.push(n);
    s.backend.putFile(`/big/${n}`, '');
  }
  const pages = await s.client.list('/big');
  for (const p of pages) assert.ok(p.length >= 1 && p.length <= 100, `page of ${p.length}`);
  assert.equal(pages.flat().map((e) => e.filename), names);
  // Pages are handed out as the backend delivers them, never waiting to fill a reply.
  assert.equal(pages.map((p) => p.length), [70, 70, 70, 40]);
  await end(s);
});

Server('READDIR after EOF stays EOF; an empty directory is EOF at once', async () => {
  const s = await openSession();
  s.backend.mkdirp('/empty');
  const h = await s.client.handle(s.client.opendir('/empty'));
  isStatus(await s.client.readdir(h), S.EOF);
  isStatus(await s.client.readdir(h), S.EOF);
  isStatus(await s.client.close(h), S.OK);
  await end(s);
});

Server('FSTAT on a directory handle stats the directory', async () => {
  const s = await openSession();
  s.backend.mkdirp('/d');
  const h = await s.client.handle(s.client.opendir('/d'));
  assert.is(attrsOf(await s.client.fstat(h)).permissions, 0o040755);
  await s.client.close(h);
  await end(s);
});

// ----------------------------------------------------------------------- rename, remove

Server('REMOVE deletes a file; a directory or a missing file fails', async () => {
  const s = await openSession();
  s.backend.putFile('/d/f', 'x');
  isStatus(await s.client.remove('/d'), S.FAILURE, /is a directory/);
  isStatus(await s.client.remove('/d/f'), S.OK);
  isStatus(await s.client.remove('/d/f'), S.NO_SUCH_FILE);
  assert.equal(s.events.filter((e) => e.type === 'remove').map((e) => e.ok), [false, true, false]);
  await end(s);
});

Server('RENAME refuses an existing target; posix-rename replaces it', async () => {
  const s = await openSession();
  s.backend.putFile('/a', 'A');
  s.backend.putFile('/b', 'B');
  isStatus(await s.client.rename('/a', '/b'), S.FAILURE, /exists/);
  isStatus(await s.client.rename('/a', '/c'), S.OK);
  assert.not.ok(s.backend.exists('/a'));
  assert.is(s.backend.file('/c')!.toString(), 'A');
  isStatus(await s.client.extended('posix-rename@openssh.com', (w) => w.string('/c').string('/b')), S.OK);
  assert.is(s.backend.file('/b')!.toString(), 'A');
  assert.not.ok(s.backend.exists('/c'));
  s.backend.mkdirp('/dir');
  isStatus(await s.client.rename('/dir', '/dir2'), S.OP_UNSUPPORTED, /renaming a directory/);
  isStatus(await s.client.rename('/missing', '/x'), S.NO_SUCH_FILE);
  assert.equal(
    s.events.filter((e) => e.type === 'rename').map((e) => (e.type === 'rename' ? `${e.from}>${e.to} ${e.overwrite} ${e.ok}` : '')),
    ['/a>/b false false', '/a>/c false true', '/c>/b true true', '/dir>/dir2 false false', '/missing>/x false false'],
  );
  await end(s);
});

Server('READLINK and SYMLINK are OP_UNSUPPORTED with a clear message', async () => {
  const s = await openSession();
  isStatus(await s.client.readlink('/x'), S.OP_UNSUPPORTED, 'symbolic links are not supported on S3');
  isStatus(await s.client.symlink('/x', '/y'), S.OP_UNSUPPORTED, 'symbolic links are not supported on S3');
  await end(s);
});

// ----------------------------------------------------------------------- extensions

Server('statvfs and fstatvfs report the backend statfs', async () => {
  const s = await openSession();
  s.backend.putFile('/f', 'x');
  const check = (r: Reply) => {
    assert.is(r.type, 'extended');
    if (r.type !== 'extended') return;
    const v = Array.from({ length: 11 }, (_, i) => Number(r.data.readBigUInt64BE(i * 8)));
    assert.equal(v, [4096, 4096, 1 << 30, 1 << 29, 1 << 29, 1 << 20, 1 << 19, 1 << 19, 0, 2, 1024]);
  };
  check(await s.client.extended('statvfs@openssh.com', (w) => w.string('/')));
  const h = await s.client.handle(s.client.open('/f', F.READ));
  check(await s.client.extended('fstatvfs@openssh.com', (w) => w.string(h)));
  isStatus(await s.client.extended('statvfs@openssh.com', (w) => w.string('/missing')), S.NO_SUCH_FILE);
  await end(s);
});

Server('limits@openssh.com reports OpenSSH-compatible limits', async () => {
  const s = await openSession();
  const r = await s.client.extended('limits@openssh.com');
  assert.is(r.type, 'extended');
  if (r.type === 'extended') {
    assert.is(r.data.length, 32);
    assert.equal([0, 8, 16, 24].map((o) => Number(r.data.readBigUInt64BE(o))), [262144, 261120, 261120, 64]);
  }
  await end(s);
});

Server('fsync@openssh.com answers OK on a file handle', async () => {
  const s = await openSession();
  const h = await s.client.handle(s.client.open('/f', F.WRITE | F.CREAT));
  await s.client.write(h, 0, Buffer.from('abc'));
  isStatus(await s.client.extended('fsync@openssh.com', (w) => w.string(h)), S.OK, /stored in S3 when its handle is closed/);
  isStatus(await s.client.close(h), S.OK);
  await end(s);
});

Server('an unknown EXTENDED request and an unknown packet type are OP_UNSUPPORTED', async () => {
  const s = await openSession();
  isStatus(await s.client.extended('copy-data', (w) => w.string('x')), S.OP_UNSUPPORTED, 'the extension "copy-data" is not supported');
  isStatus(await s.client.extended('hardlink@openssh.com', (w) => w.string('/a').string('/b')), S.OP_UNSUPPORTED);
  isStatus(await s.client.request(99, (w) => w.string('x')), S.OP_UNSUPPORTED, /packet type 99/);
  isStatus(await s.client.request(T.VERSION), S.OP_UNSUPPORTED, /packet type 2/);
  await end(s);
});

Server('the backend only ever saw normalised absolute paths (checked by MemoryBackend throughout)', async () => {
  const s = await openSession();
  for (const p of ['', '.', '..', '//', 'a/./b/../', '/../..//x/.']) {
    await s.client.stat(p);
    await s.client.opendir(p);
    await s.client.remove(p);
  }
  for (const c of s.backend.calls) assert.match(c, /^\w+ \/(\S*)$/);
  await end(s);
});

Server.run();
