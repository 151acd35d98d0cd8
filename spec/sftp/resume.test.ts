/**
 * OPEN modes for writing and resumed uploads (issue 5 §3, §5), on the in-memory backend: which
 * pflags replace, continue or append to a file, what a WRITE at each offset does, what CLOSE and
 * FSETSTAT SIZE then do, and what the end of a session does to an upload never closed.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { F, openSession, S, summary, type Reply, type Session } from './client.js';
import type { MemoryBackendOptions } from '../helpers/memory-backend.js';
import { writeMode } from '../../src/sftp/files.js';

const Resume = suite('sftp/resume: OPEN modes, resumed uploads, uploads left open');

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

function sizeOf(r: Reply): number | undefined {
  assert.is(r.type, 'attrs', `expected ATTRS, got ${JSON.stringify(summary(r))}`);
  return r.type === 'attrs' ? r.attrs.size : undefined;
}

/** Sequential WRITEs of `data` from `offset`, in `chunk`s, all in flight; every one must be OK. */
async function writeFrom(s: Session, h: Buffer, offset: number, data: Buffer, chunk = 1000): Promise<void> {
  const writes: Promise<Reply>[] = [];
  for (let o = 0; o < data.length; o += chunk) writes.push(s.client.write(h, offset + o, data.subarray(o, o + chunk)));
  for (const r of await Promise.all(writes)) isStatus(r, S.OK);
}

const text = (s: Session, path: string): string | undefined => s.backend.file(path)?.toString();

// ----------------------------------------------------------------------- pflags → mode

Resume('pflags: TRUNC or EXCL replace, APPEND appends, WRITE[|CREAT] alone continues', () => {
  assert.is(writeMode(F.WRITE | F.CREAT | F.TRUNC), 'replace');
  assert.is(writeMode(F.WRITE | F.CREAT | F.EXCL), 'replace');
  assert.is(writeMode(F.WRITE | F.TRUNC), 'replace');
  assert.is(writeMode(F.WRITE | F.APPEND | F.TRUNC), 'replace', 'TRUNC wins over APPEND');
  assert.is(writeMode(F.WRITE | F.CREAT | F.APPEND), 'append');
  assert.is(writeMode(F.WRITE | F.APPEND), 'append');
  assert.is(writeMode(F.WRITE | F.CREAT), 'continue');
  assert.is(writeMode(F.WRITE), 'continue');
});

// ----------------------------------------------------------------------- append

Resume('APPEND: every WRITE goes to the end, whatever its offset (reput, put -a)', async () => {
  const s = await openSession();
  s.backend.putFile('/a', 'abc');
  const h = await s.client.handle(s.client.open('/a', F.WRITE | F.CREAT | F.APPEND));
  assert.is(sizeOf(await s.client.fstat(h)), 3, 'FSTAT: the size it appends to');
  isStatus(await s.client.write(h, 3, Buffer.from('de')), S.OK);
  isStatus(await s.client.write(h, 0, Buffer.from('f')), S.OK);
  isStatus(await s.client.write(h, 1_000_000, Buffer.from('g')), S.OK);
  assert.is(sizeOf(await s.client.fstat(h)), 7);
  assert.is(text(s, '/a'), 'abc', 'readers see the old file until CLOSE');
  isStatus(await s.client.close(h), S.OK);
  assert.is(text(s, '/a'), 'abcdefg');
  const up = s.events.find((e) => e.type === 'upload');
  assert.ok(up && up.type === 'upload' && up.ok && up.bytes === 4, 'the audit counts the bytes sent, not the file');
  await end(s);
});

Resume('APPEND to a missing file creates it with CREAT, and is NO_SUCH_FILE without', async () => {
  const s = await openSession();
  isStatus(await s.client.open('/missing', F.WRITE | F.APPEND), S.NO_SUCH_FILE, 'no such file: /missing');
  isStatus(await s.client.upload('/fresh', Buffer.from('new'), 2, F.WRITE | F.CREAT | F.APPEND), S.OK);
  assert.is(text(s, '/fresh'), 'new');
  s.backend.putFile('/empty', '');
  isStatus(await s.client.upload('/empty', Buffer.from('1'), 32, F.WRITE | F.APPEND), S.OK);
  assert.is(text(s, '/empty'), '1');
  await end(s);
});

Resume('APPEND|TRUNC replaces the file', async () => {
  const s = await openSession();
  s.backend.putFile('/t', 'old contents');
  isStatus(await s.client.upload('/t', Buffer.from('new'), 32, F.WRITE | F.APPEND | F.TRUNC), S.OK);
  assert.is(text(s, '/t'), 'new');
  await end(s);
});

// ----------------------------------------------------------------------- continue

Resume('continue: a first WRITE at the file size resumes it (WinSCP reopening its .filepart)', async () => {
  const s = await openSession();
  const head = randomBytes(5000);
  const tail = randomBytes(7001);
  s.backend.putFile('/c.filepart', head);
  const h = await s.client.handle(s.client.open('/c.filepart', F.WRITE | F.CREAT));
  assert.is(sizeOf(await s.client.fstat(h)), 5000, 'FSTAT before any WRITE: the existing size');
  await writeFrom(s, h, 5000, tail);
  assert.is(sizeOf(await s.client.fstat(h)), 12_001);
  assert.ok(s.backend.file('/c.filepart')!.equals(head), 'readers see the old file until CLOSE');
  isStatus(await s.client.close(h), S.OK);
  assert.ok(s.backend.file('/c.filepart')!.equals(Buffer.concat([head, tail])));
  await end(s);
});

Resume('continue: a first WRITE at 0 replaces the file, no old tail is kept (scp ≥ 9.1)', async () => {
  const s = await openSession();
  s.backend.putFile('/r', 'old contents that are longer');
  const h = await s.client.handle(s.client.open('/r', F.WRITE | F.CREAT));
  isStatus(await s.client.write(h, 0, Buffer.from('new')), S.OK);
  assert.is(sizeOf(await s.client.fstat(h)), 3);
  isStatus(await s.client.fsetstat(h, { size: 3 }), S.OK, undefined);
  isStatus(await s.client.close(h), S.OK);
  assert.is(text(s, '/r'), 'new');
  await end(s);
});

Resume('continue: a first WRITE at another offset fails clearly; CLOSE then fails and the file is unchanged', async () => {
  const s = await openSession();
  s.backend.putFile('/x', 'abcdef', 1_400_000_000);
  const h = await s.client.handle(s.client.open('/x', F.WRITE | F.CREAT));
  isStatus(
    await s.client.write(h, 3, Buffer.from('zz')),
    S.FAILURE,
    '/x: a write to an existing file must start at 0 (to replace it) or at its end, offset 6 (to continue it); got offset 3',
  );
  isStatus(await s.client.write(h, 6, Buffer.from('g')), S.FAILURE, /an earlier write on this handle failed \(\/x: a write to an existing file/);
  isStatus(await s.client.close(h), S.FAILURE, /upload not stored because a write failed: \/x: a write to an existing file.*got offset 3$/);
  assert.is(text(s, '/x'), 'abcdef');
  assert.is((await s.backend.stat('/x')).mtime, 1_400_000_000);
  assert.is(s.backend.aborted, 1);
  assert.is(s.backend.pending.size, 0);
  await end(s);
});

Resume('continue: after the first WRITE, later ones must follow on', async () => {
  const s = await openSession();
  s.backend.putFile('/y', 'abc');
  const h = await s.client.handle(s.client.open('/y', F.WRITE));
  isStatus(await s.client.write(h, 3, Buffer.from('d')), S.OK);
  isStatus(await s.client.write(h, 0, Buffer.from('e')), S.FAILURE, /writes must be sequential: got offset 0, expected 4/);
  isStatus(await s.client.close(h), S.FAILURE);
  assert.is(text(s, '/y'), 'abc');
  await end(s);
});

Resume('continue: CLOSE with nothing written leaves the file as it was', async () => {
  const s = await openSession();
  s.backend.putFile('/keep', 'precious', 1_300_000_000);
  const h = await s.client.handle(s.client.open('/keep', F.WRITE | F.CREAT));
  isStatus(await s.client.close(h), S.OK);
  assert.is(text(s, '/keep'), 'precious');
  assert.is((await s.backend.stat('/keep')).mtime, 1_300_000_000);
  // The same on a file that did not exist: it is created empty, as open(O_CREAT) would.
  const h2 = await s.client.handle(s.client.open('/new', F.WRITE | F.CREAT));
  isStatus(await s.client.close(h2), S.OK);
  assert.is(text(s, '/new'), '');
  await end(s);
});

Resume('continue: FSETSTAT SIZE 0 with nothing written empties the file (scp ≥ 9.1 sending an empty file)', async () => {
  const s = await openSession();
  s.backend.putFile('/e', 'not empty');
  const h = await s.client.handle(s.client.open('/e', F.WRITE | F.CREAT));
  isStatus(await s.client.fsetstat(h, { size: 0 }), S.OK);
  assert.is(sizeOf(await s.client.fstat(h)), 0);
  isStatus(await s.client.close(h), S.OK);
  assert.is(text(s, '/e'), '');
  await end(s);
});

Resume('append: FSETSTAT SIZE 0 is refused, the file is not emptied', async () => {
  const s = await openSession();
  s.backend.putFile('/ap0', 'abc');
  const h = await s.client.handle(s.client.open('/ap0', F.WRITE | F.APPEND));
  isStatus(await s.client.fsetstat(h, { size: 0 }), S.OP_UNSUPPORTED, /size 0, the upload holds 3 bytes/);
  isStatus(await s.client.close(h), S.OK);
  assert.is(text(s, '/ap0'), 'abc');
  await end(s);
});

Resume('continue: FSETSTAT SIZE other than the upload size is refused and names both', async () => {
  const s = await openSession();
  s.backend.putFile('/z', 'abcdef');
  const h = await s.client.handle(s.client.open('/z', F.WRITE | F.CREAT));
  isStatus(await s.client.fsetstat(h, { size: 6 }), S.OK, undefined);
  isStatus(await s.client.fsetstat(h, { size: 2 }), S.OP_UNSUPPORTED, /size 2, the upload holds 6 bytes/);
  isStatus(await s.client.write(h, 6, Buffer.from('g')), S.OK);
  isStatus(await s.client.fsetstat(h, { size: 7 }), S.OK, undefined);
  isStatus(await s.client.close(h), S.OK);
  assert.is(text(s, '/z'), 'abcdefg');
  await end(s);
});

Resume('TRUNC and EXCL replace whatever is there, at offset 0 only', async () => {
  const s = await openSession();
  s.backend.putFile('/t', 'abcdef');
  const h = await s.client.handle(s.client.open('/t', F.WRITE | F.CREAT | F.TRUNC));
  assert.is(sizeOf(await s.client.fstat(h)), 0);
  isStatus(await s.client.write(h, 6, Buffer.from('g')), S.FAILURE, /writes must be sequential: got offset 6, expected 0/);
  isStatus(await s.client.close(h), S.FAILURE);
  assert.is(text(s, '/t'), 'abcdef');
  await end(s);
});

Resume('without CREAT the file must exist; a directory is refused in every mode', async () => {
  const s = await openSession();
  s.backend.mkdirp('/d');
  isStatus(await s.client.open('/none', F.WRITE), S.NO_SUCH_FILE, 'no such file: /none');
  for (const flags of [F.WRITE, F.WRITE | F.CREAT, F.WRITE | F.APPEND, F.WRITE | F.CREAT | F.APPEND]) {
    isStatus(await s.client.open('/d', flags), S.FAILURE, /is a directory/);
  }
  await end(s);
});

// ----------------------------------------------------------------------- uploads left open

async function leftOpen(
  memory: MemoryBackendOptions,
  setup: (s: Session) => void,
  path: string,
  flags: number,
  offset: number,
  data: Buffer,
): Promise<Session> {
  const s = await openSession({ memory });
  setup(s);
  const h = await s.client.handle(s.client.open(path, flags));
  await writeFrom(s, h, offset, data);
  await end(s);
  assert.is(s.backend.pending.size, 0, 'no upload left pending');
  assert.is(s.backend.committed, 0);
  return s;
}

function uploadError(s: Session): string | undefined {
  const up = s.events.find((e) => e.type === 'upload');
  assert.ok(up && !up.ok, `a failed upload event: ${JSON.stringify(up)}`);
  return up?.error;
}

Resume('session end: a resumed upload keeps the old bytes and what arrived', async () => {
  const s = await leftOpen({}, (s) => s.backend.putFile('/p.filepart', 'head-'), '/p.filepart', F.WRITE | F.CREAT, 5, Buffer.from('tail'));
  assert.is(text(s, '/p.filepart'), 'head-tail');
  assert.is(s.backend.kept, 1);
  assert.is(uploadError(s), 'the session ended before the file was closed; 9 bytes kept for resume');
});

Resume('session end: an append upload keeps what arrived', async () => {
  const s = await leftOpen({}, (s) => s.backend.putFile('/ap', 'abc'), '/ap', F.WRITE | F.APPEND, 0, Buffer.from('de'));
  assert.is(text(s, '/ap'), 'abcde');
  assert.is(s.backend.kept, 1);
});

Resume('session end: an upload that replaces an existing file is discarded, the old file stays', async () => {
  for (const [flags, offset] of [[F.WRITE | F.CREAT | F.TRUNC, 0], [F.WRITE | F.CREAT, 0]] as const) {
    const s = await leftOpen({}, (s) => s.backend.putFile('/old', 'old file'), '/old', flags, offset, Buffer.from('new'));
    assert.is(text(s, '/old'), 'old file');
    assert.is(s.backend.aborted, 1);
    assert.is(uploadError(s), 'the session ended before the file was closed; discarded, nothing was stored');
  }
});

Resume('session end: with partial uploads discarded, even a new file is not kept', async () => {
  const s = await leftOpen({ partialUploads: 'discard' }, () => {}, '/new', F.WRITE | F.CREAT | F.TRUNC, 0, Buffer.from('x'));
  assert.not.ok(s.backend.exists('/new'));
  assert.is(s.backend.aborted, 1);
  const r = await leftOpen({ partialUploads: 'discard' }, (s) => s.backend.putFile('/f', 'ab'), '/f', F.WRITE, 2, Buffer.from('c'));
  assert.is(text(r, '/f'), 'ab');
});

Resume('session end: an upload whose WRITE failed is aborted, never kept', async () => {
  const s = await openSession();
  s.backend.putFile('/w', 'abc');
  const h = await s.client.handle(s.client.open('/w', F.WRITE | F.CREAT));
  isStatus(await s.client.write(h, 3, Buffer.from('d')), S.OK);
  isStatus(await s.client.write(h, 9, Buffer.from('e')), S.FAILURE);
  await end(s);
  assert.is(text(s, '/w'), 'abc');
  assert.is(s.backend.kept, 0);
  assert.is(s.backend.aborted, 1);
  assert.match(uploadError(s) ?? '', /^the session ended before the file was closed; an earlier write failed \(writes must be sequential.*\), nothing was stored$/);
});

Resume('session end: keeping that fails is reported and the upload aborted', async () => {
  const s = await leftOpen(
    {
      before: (op) => {
        if (op === 'commitPartial') throw new Error('the store failed');
      },
    },
    () => {},
    '/k',
    F.WRITE | F.CREAT | F.TRUNC,
    0,
    Buffer.from('x'),
  );
  assert.not.ok(s.backend.exists('/k'));
  assert.is(s.backend.aborted, 1);
  assert.is(uploadError(s), 'the session ended before the file was closed; keeping what arrived failed, nothing was stored');
});

// ----------------------------------------------------------------------- WinSCP

/** WinSCP's upload ("transfer to temporary file name"): .filepart, REMOVE, RENAME, SETSTAT mtime. */
async function winscpFinish(s: Session, name: string, mtime: number): Promise<void> {
  const existed = (await s.client.stat(name)).type === 'attrs';
  if (existed) isStatus(await s.client.remove(name), S.OK);
  isStatus(await s.client.rename(`${name}.filepart`, name), S.OK);
  isStatus(await s.client.setstat(name, { mtime }), S.OK);
}

Resume('WinSCP: .filepart written and closed, target removed, renamed, mtime set', async () => {
  const s = await openSession();
  s.backend.putFile('/w.bin', 'the previous version');
  const data = randomBytes(20_000);
  isStatus(await s.client.upload('/w.bin.filepart', data, 4096, F.WRITE | F.CREAT | F.TRUNC), S.OK);
  await winscpFinish(s, '/w.bin', 1_600_000_000);
  assert.ok(s.backend.file('/w.bin')!.equals(data));
  assert.is((await s.backend.stat('/w.bin')).mtime, 1_600_000_000);
  assert.not.ok(s.backend.exists('/w.bin.filepart'));
  await end(s);
});

Resume('WinSCP: a .filepart cut off mid-upload is resumed in a new session from its size', async () => {
  const data = randomBytes(30_000);
  const first = await openSession();
  const h = await first.client.handle(first.client.open('/v.bin.filepart', F.WRITE | F.CREAT | F.TRUNC));
  await writeFrom(first, h, 0, data.subarray(0, 12_288), 4096);
  first.client.stream.destroy();
  await first.served;
  assert.is(first.backend.file('/v.bin.filepart')?.length, 12_288, 'what arrived was kept');

  const s = await openSession({ backend: first.backend });
  const st = await s.client.stat('/v.bin.filepart');
  const size = sizeOf(st)!;
  const h2 = await s.client.handle(s.client.open('/v.bin.filepart', F.WRITE | F.CREAT));
  await writeFrom(s, h2, size, data.subarray(size), 4096);
  isStatus(await s.client.close(h2), S.OK);
  await winscpFinish(s, '/v.bin', 1_600_000_001);
  assert.ok(s.backend.file('/v.bin')!.equals(data));
  assert.not.ok(s.backend.exists('/v.bin.filepart'));
  await end(s);
});

Resume.run();
