/**
 * The gateway end to end with paramiko 3.5.1's SFTP client (spec/gateway/paramiko_gateway.py):
 * the operations Python tools use, the server's status messages as a client sees them, and the
 * upload sequence WinSCP uses by default, scripted.
 *
 * paramiko's `put` STATs the file right after CLOSE and fails unless the size matches, so it
 * also proves that CLOSE is answered only once the object exists in S3.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { killStrayChildren } from '../helpers/openssh.js';
import {
  BUCKET,
  OTHER_BUCKET,
  assertAbsent,
  assertStored,
  e2ePrefix,
  paramiko,
  payload,
  removePrefix,
  startGateway,
  tempDir,
  type Gateway,
  type UserName,
} from '../helpers/gateway.js';
import { putAsAdmin } from '../s3/fixture.js';

const PREFIX = e2ePrefix('paramiko');
const ROOT = `/${BUCKET}/${PREFIX}`;

type Op = Record<string, unknown> & { op: string };
type OpResult =
  | { op: string; ok: true; value: unknown }
  | { op: string; ok: false; errno: number | null; message: string; type: string };
interface Run {
  client: { version: string; remoteVersion: string };
  results: OpResult[];
}
interface Attrs {
  size: number;
  mode: number;
  mtime: number;
  atime: number;
}

const ENOENT = 2;
const EACCES = 13;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

const test = suite<{ gw: Gateway }>('gateway: paramiko', { gw: undefined as unknown as Gateway });

test.before(async (ctx) => {
  ctx.gw = await startGateway();
});

test.after(async (ctx) => {
  killStrayChildren();
  await ctx.gw?.close();
  await removePrefix(BUCKET, PREFIX + '/');
  await removePrefix(OTHER_BUCKET, PREFIX + '/');
});

async function ops(gw: Gateway, user: UserName, list: Op[]): Promise<OpResult[]> {
  const run = await paramiko<Run>(gw, user, 'ops', { ops: list });
  assert.is(run.results.length, list.length);
  return run.results;
}

function value<T>(r: OpResult | undefined, what: string): T {
  assert.ok(r, `${what}: no result`);
  if (!r.ok) assert.unreachable(`${what} failed: [${r.errno}] ${r.message}`);
  return (r as { value: T }).value;
}

function failure(r: OpResult | undefined, what: string): { errno: number | null; message: string } {
  assert.ok(r, `${what}: no result`);
  if (r.ok) assert.unreachable(`${what} should have failed, got ${JSON.stringify(r.value)}`);
  return r as { errno: number | null; message: string };
}

test('put (with its STAT right after CLOSE), get, listdir_attr, rename, remove, mkdir and rmdir', async ({ gw }) => {
  const p = await payload(300_001);
  const local = tempDir('paramiko-basic');
  const d = `${ROOT}/basic`;
  const r = await ops(gw, 'least', [
    { op: 'mkdir', path: d },
    { op: 'put', local: p.path, remote: `${d}/a.bin` },
    { op: 'writeThenStat', local: p.path, remote: `${d}/b.bin` },
    { op: 'get', remote: `${d}/a.bin`, local: path.join(local, 'a.bin') },
    { op: 'mkdir', path: `${d}/sub` },
    { op: 'listdir_attr', path: d },
    { op: 'rename', from: `${d}/b.bin`, to: `${d}/sub/c.bin` },
    { op: 'listdir', path: `${d}/sub` },
    { op: 'stat', path: `${d}/sub/c.bin` },
    { op: 'stat', path: `${d}/sub` },
    { op: 'remove', path: `${d}/sub/c.bin` },
    { op: 'rmdir', path: `${d}/sub` },
    { op: 'listdir', path: d },
    { op: 'remove', path: `${d}/a.bin` },
    { op: 'rmdir', path: d },
    { op: 'stat', path: d },
  ]);
  value(r[0], 'mkdir');
  assert.is(value<Attrs>(r[1], 'put').size, p.size, 'put: the STAT after CLOSE sees the whole file');
  assert.is(value<Attrs>(r[2], 'write, close, stat').size, p.size);
  const got = value<{ sha256: string; size: number }>(r[3], 'get');
  assert.equal(got, { sha256: p.sha256, size: p.size });
  value(r[4], 'mkdir sub');
  const listing = value<Array<Attrs & { filename: string; longname: string }>>(r[5], 'listdir_attr');
  assert.equal(
    listing.map((e) => e.filename),
    ['a.bin', 'b.bin', 'sub'],
  );
  for (const e of listing) {
    if (e.filename === 'sub') {
      assert.is(e.mode & S_IFMT, S_IFDIR, 'sub is a directory');
      assert.match(e.longname, /^d/);
    } else {
      assert.is(e.mode & S_IFMT, S_IFREG, `${e.filename} is a file`);
      assert.is(e.size, p.size);
      assert.match(e.longname, new RegExp(`^-.*\\s${p.size}\\s.*${e.filename.replace('.', '\\.')}$`));
      assert.ok(Math.abs(e.mtime - Date.now() / 1000) < 600, 'mtime is about now');
    }
  }
  value(r[6], 'rename');
  assert.equal(value(r[7], 'listdir sub'), ['c.bin']);
  assert.is(value<Attrs>(r[8], 'stat renamed').size, p.size);
  assert.is(value<Attrs>(r[9], 'stat dir').mode & S_IFMT, S_IFDIR);
  value(r[10], 'remove');
  value(r[11], 'rmdir');
  assert.equal(value(r[12], 'listdir after'), ['a.bin']);
  value(r[13], 'remove a');
  value(r[14], 'rmdir d');
  assert.is(failure(r[15], 'stat of the removed directory').errno, ENOENT, 'the directory is gone');
  await assertAbsent(BUCKET, `${PREFIX}/basic/a.bin`);
  await assertAbsent(BUCKET, `${PREFIX}/basic/`);
});

test('random reads: seeks backwards and forwards across part boundaries return the right bytes', async ({ gw }) => {
  const p = await payload(3 * 5 * 1024 * 1024 + 17);
  const key = `${ROOT}/random.bin`;
  const MiB = 1024 * 1024;
  const ranges: Array<[number, number]> = [
    [10 * MiB - 100, 200], // across a 5 MiB boundary
    [0, 1000],
    [p.size - 17, 100], // the tail, asking past the end
    [7 * MiB, 64 * 1024],
    [3, 1],
    [15 * MiB, 17],
  ];
  const r = await ops(gw, 'least', [
    { op: 'put', local: p.path, remote: key, expectError: false },
    { op: 'readRanges', path: key, ranges },
  ]);
  const got = value<Array<{ offset: number; bytes: number; sha256: string }>>(r[1], 'readRanges');
  const whole = await fs.promises.readFile(p.path);
  ranges.forEach(([off, len], i) => {
    const want = whole.subarray(off, Math.min(off + len, whole.length));
    assert.is(got[i]!.bytes, want.length, `range ${off}+${len}: length`);
    assert.is(got[i]!.sha256, createHash('sha256').update(want).digest('hex'), `range ${off}+${len}: bytes`);
  });
});

test('every uploaded object carries SSE; a rename keeps it', async ({ gw }) => {
  const p = await payload(5 * 1024 * 1024 + 1);
  const d = `${ROOT}/sse`;
  const r = await ops(gw, 'least', [
    { op: 'put', local: p.path, remote: `${d}/multipart.bin` },
    { op: 'rename', from: `${d}/multipart.bin`, to: `${d}/renamed.bin` },
    { op: 'mkdir', path: `${d}/dir` },
  ]);
  for (const x of r) value(x, x.op);
  await assertStored(BUCKET, `${PREFIX}/sse/renamed.bin`, p.size);
  await assertStored(BUCKET, `${PREFIX}/sse/dir/`, 0);
});

test('errors carry messages that say why', async ({ gw }) => {
  const p = await payload(1);
  const d = `${ROOT}/errors`;
  const r = await ops(gw, 'least', [
    { op: 'mkdir', path: d, expectError: false },
    { op: 'put', local: p.path, remote: `${d}/one`, expectError: false },
    { op: 'put', local: p.path, remote: `${d}/two`, expectError: false },
    { op: 'rmdir', path: d }, // 3
    { op: 'rename', from: d, to: `${ROOT}/errors-renamed` }, // 4
    { op: 'remove', path: `/${BUCKET}` }, // 5
    { op: 'rmdir', path: `/${BUCKET}` }, // 6
    { op: 'rename', from: `/${BUCKET}`, to: `/${BUCKET}-renamed/x` }, // 7
    { op: 'symlink', target: `${d}/one`, path: `${d}/link` }, // 8
    { op: 'readlink', path: `${d}/one` }, // 9
    { op: 'get', remote: `${d}/missing`, local: path.join(tempDir('paramiko-errors'), 'missing') }, // 10
    { op: 'stat', path: `${d}/missing` }, // 11
    { op: 'remove', path: `${d}/missing` }, // 12
    { op: 'rename', from: `${d}/one`, to: `${d}/two` }, // 13: plain RENAME onto an existing file
    { op: 'remove', path: d }, // 14: a directory
    { op: 'mkdir', path: `/${BUCKET}/` + 'x'.repeat(1100) }, // 15: longer than S3 allows
    { op: 'mkdir', path: `/s3gw-e2e-new-bucket-${process.pid}` }, // 16
    { op: 'posix_rename', from: `${d}/one`, to: `${d}/two` }, // 17: replaces
    { op: 'listdir', path: d }, // 18
  ]);
  const msg = (i: number) => failure(r[i], (r[i] as OpResult).op + ` #${i}`);
  assert.match(msg(3).message, /directory not empty/);
  assert.match(msg(4).message, /renaming a directory is not supported/);
  assert.match(msg(5).message, /deleting a bucket is not supported/);
  assert.match(msg(6).message, /deleting a bucket is not supported/);
  assert.match(msg(7).message, /renaming a bucket is not supported/);
  assert.match(msg(8).message, /symbolic links are not supported/);
  assert.match(msg(9).message, /symbolic links are not supported/);
  assert.is(msg(10).errno, ENOENT, 'get of a missing file: ENOENT');
  assert.match(msg(10).message, /no such file/);
  assert.is(msg(11).errno, ENOENT);
  assert.is(msg(12).errno, ENOENT);
  assert.match(msg(13).message, /file exists/);
  assert.match(msg(14).message, /is a directory/);
  assert.match(msg(15).message, /too long/);
  assert.match(msg(16).message, /creating a bucket is not supported/);
  value(r[17], 'posix_rename replaces');
  assert.equal(value(r[18], 'listdir'), ['two']);
  await assertStored(BUCKET, `${PREFIX}/errors/two`, 1);
  await assertAbsent(BUCKET, `${PREFIX}/errors/link`);
});

test('the one-bucket user is denied in other-bucket with PERMISSION_DENIED, for an object that exists too', async ({ gw }) => {
  const p = await payload(1000);
  const key = `${PREFIX}/denied/admins-file`;
  await putAsAdmin(OTHER_BUCKET, key, 'written by the admin');
  const r = await ops(gw, 'oneBucket', [
    { op: 'listdir', path: `/${OTHER_BUCKET}` },
    { op: 'stat', path: `/${OTHER_BUCKET}/${key}` },
    { op: 'openRead', path: `/${OTHER_BUCKET}/${key}` },
    { op: 'put', local: p.path, remote: `/${OTHER_BUCKET}/${PREFIX}/denied/mine` },
    { op: 'remove', path: `/${OTHER_BUCKET}/${key}` },
    { op: 'put', local: p.path, remote: `${ROOT}/denied/mine`, expectError: false },
  ]);
  for (const i of [0, 1, 2, 3, 4]) {
    const f = failure(r[i], `${r[i]!.op} in other-bucket`);
    assert.is(f.errno, EACCES, `${r[i]!.op} in other-bucket: EACCES, got [${f.errno}] ${f.message}`);
    assert.match(f.message, /access denied/);
  }
  await assertAbsent(OTHER_BUCKET, `${PREFIX}/denied/mine`);
  await assertStored(BUCKET, `${PREFIX}/denied/mine`, p.size);
});

test('WinSCP-style upload: .filepart, remove the target, RENAME, SETSTAT mtime; stat shows the mtime', async ({ gw }) => {
  const first = await payload(70_000);
  const second = await payload(5 * 1024 * 1024 + 1);
  const remote = `${ROOT}/winscp/report.pdf`;
  const mtime1 = 1_600_000_000;
  const mtime2 = 1_700_000_123;
  const r = await ops(gw, 'least', [
    { op: 'mkdir', path: `${ROOT}/winscp`, expectError: false },
    { op: 'winscp', local: first.path, remote, mtime: mtime1, expectError: false },
    // Again over the existing file (WinSCP removes it first), this time multipart.
    { op: 'winscp', local: second.path, remote, mtime: mtime2, expectError: false },
    { op: 'listdir_attr', path: `${ROOT}/winscp` },
    { op: 'chmod', path: remote, mode: 0o600 },
    { op: 'stat', path: remote },
  ]);
  const one = value<{ existed: boolean; stat: Attrs; partGone: boolean }>(r[1], 'first upload');
  assert.is(one.existed, false);
  assert.is(one.partGone, true, 'the .filepart is gone after the rename');
  assert.is(one.stat.mtime, mtime1);
  assert.is(one.stat.size, first.size);
  const two = value<{ existed: boolean; stat: Attrs; partGone: boolean }>(r[2], 'second upload');
  assert.is(two.existed, true);
  assert.is(two.partGone, true);
  assert.is(two.stat.mtime, mtime2);
  assert.is(two.stat.size, second.size);
  const names = value<Array<{ filename: string }>>(r[3], 'listdir_attr').map((e) => e.filename);
  assert.equal(names, ['report.pdf']);
  value(r[4], 'chmod is accepted without harm');
  const st = value<Attrs>(r[5], 'stat after chmod');
  assert.is(st.mtime, mtime2, 'the mtime survives a chmod');
  assert.is(st.size, second.size);
  const stored = await assertStored(BUCKET, `${PREFIX}/winscp/report.pdf`, second.size);
  assert.is(stored.metadata.mtime, String(mtime2), 'the mtime is kept as object metadata');
  await assertAbsent(BUCKET, `${PREFIX}/winscp/report.pdf.filepart`);
});

test.run();
