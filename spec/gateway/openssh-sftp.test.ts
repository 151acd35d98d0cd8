/**
 * The gateway end to end with OpenSSH's `sftp -b` (9.2): the whole path from the SSH client
 * through IAM login to objects in the real MinIO, checked from both ends — what sftp prints,
 * and what the admin sees in S3 (size, SSE-S3).
 *
 * OpenSSH's sftp prints only the text of an SFTP status code ("Failure", "Operation
 * unsupported", ...), never the server's message, so these tests check the code it shows; the
 * messages themselves are checked with paramiko (spec/gateway/paramiko.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { killStrayChildren } from '../helpers/openssh.js';
import {
  BUCKET,
  OTHER_BUCKET,
  assertAbsent,
  assertOk,
  assertStored,
  creds,
  e2ePrefix,
  headOrNull,
  logLines,
  payload,
  removePrefix,
  sftpBatch,
  sha256File,
  show,
  startGateway,
  tempDir,
  type Gateway,
} from '../helpers/gateway.js';
import { putAsAdmin } from '../s3/fixture.js';

const PREFIX = e2ePrefix('sftp');

const test = suite<{ gw: Gateway }>('gateway: OpenSSH sftp -b sessions', { gw: undefined as unknown as Gateway });

test.before(async (ctx) => {
  ctx.gw = await startGateway();
});

test.after(async (ctx) => {
  killStrayChildren();
  await ctx.gw?.close();
  await removePrefix(BUCKET, PREFIX + '/');
  await removePrefix(OTHER_BUCKET, PREFIX + '/');
});

test('put, ls, ls -l, get, mkdir, rename, rm, rmdir and df in one session', async ({ gw }) => {
  const p = await payload(100_003);
  const dir = tempDir('sftp-session');
  const back = path.join(dir, 'back.bin');
  const d = `${PREFIX}/session`;
  const r = await sftpBatch(gw, 'least', [
    `cd /${BUCKET}`,
    `mkdir ${d}`,
    `mkdir ${d}/sub`,
    `put ${p.path} ${d}/file.bin`,
    `ls ${d}`,
    `ls -l ${d}`,
    `get ${d}/file.bin ${back}`,
    `rename ${d}/file.bin ${d}/sub/renamed.bin`,
    `ls -l ${d}/sub`,
    'df',
    'df -h',
    'pwd',
  ]);
  assertOk(r);
  assert.is(await sha256File(back), p.sha256, 'get returns the bytes put');
  // ls prints the names under the directory, the marker of "sub" as a directory.
  const ls = r.out.split('sftp> ')[5]!;
  assert.match(ls, `${d}/file.bin`);
  assert.match(ls, `${d}/sub`);
  // ls -l: a long name with the size, for the file, and a "d" line for the directory.
  const long = r.out.split('sftp> ')[6]!;
  assert.match(long, new RegExp(`^-rw-r--r--.*\\s${p.size}\\s.*\\sfile\\.bin$`, 'm'), long);
  assert.match(long, /^d[rwx-]{9}.*\ssub$/m, long);
  const long2 = r.out.split('sftp> ')[9]!;
  assert.match(long2, new RegExp(`\\s${p.size}\\s.*\\srenamed\\.bin$`, 'm'), long2);
  // df (statvfs@openssh.com): a header and a line of numbers.
  assert.match(r.out, /Size\s+Used\s+Avail\s+\(root\)\s+%Capacity\n\s*\d+\s+\d+\s+\d+\s+\d+\s+\d+%/);
  assert.match(r.out, /Remote working directory: \/example-bucket\n/);

  // S3 holds what the session left: the renamed file with SSE, the marker, nothing at the old key.
  await assertStored(BUCKET, `${d}/sub/renamed.bin`, p.size);
  await assertStored(BUCKET, `${d}/`, 0);
  await assertAbsent(BUCKET, `${d}/file.bin`);

  const r2 = await sftpBatch(gw, 'least', [
    `cd /${BUCKET}/${d}`,
    'rm sub/renamed.bin',
    'rmdir sub',
    'ls -la',
    `rmdir /${BUCKET}/${d}`,
  ]);
  assertOk(r2);
  await assertAbsent(BUCKET, `${d}/sub/renamed.bin`);
  await assertAbsent(BUCKET, `${d}/sub/`);
  await assertAbsent(BUCKET, `${d}/`);
});

test('put -p keeps the mtime (as object metadata) and get -p gives it back', async ({ gw }) => {
  const p = await payload(3000);
  const dir = tempDir('sftp-preserve');
  const local = path.join(dir, 'old.bin');
  fs.copyFileSync(p.path, local);
  const mtime = 981_173_106; // 2001-02-03T04:05:06Z
  fs.utimesSync(local, mtime, mtime);
  const back = path.join(dir, 'back.bin');
  const key = `${PREFIX}/preserve/old.bin`;
  const r = await sftpBatch(gw, 'least', [`put -p ${local} /${BUCKET}/${key}`, `get -p /${BUCKET}/${key} ${back}`]);
  assertOk(r);
  const stored = await assertStored(BUCKET, key, p.size);
  assert.is(stored.metadata.mtime, String(mtime), 'x-amz-meta-mtime');
  assert.is(Math.floor(fs.statSync(back).mtimeMs / 1000), mtime, 'get -p sets the stored mtime locally');
  assert.is(await sha256File(back), p.sha256);
});

test('errors: rmdir of a non-empty directory, rename of a directory, rm of a bucket, symlink, get of a missing file', async ({ gw }) => {
  const p = await payload(1);
  const d = `${PREFIX}/errors`;
  const back = path.join(tempDir('sftp-errors'), 'missing.bin');
  const r = await sftpBatch(gw, 'least', [
    `cd /${BUCKET}`,
    `mkdir ${d}`,
    `put ${p.path} ${d}/one`,
    `-rmdir ${d}`,
    `-rename ${d} ${PREFIX}/errors-renamed`,
    `-rm /${BUCKET}`,
    `-rmdir /${BUCKET}`,
    `-ln -s ${d}/one ${d}/link`,
    `-get ${d}/no-such-file ${back}`,
    `-rm ${d}/no-such-file`,
    `ls ${d}`,
  ]);
  assertOk(r);
  const err = r.stderr;
  assert.match(err, `remote rmdir "/${BUCKET}/${d}": Failure`, show(r));
  assert.match(err, `remote rename "/${BUCKET}/${d}" to "/${BUCKET}/${PREFIX}/errors-renamed": Operation unsupported`, show(r));
  assert.match(err, `remote delete /${BUCKET}: Operation unsupported`, show(r));
  assert.match(err, `remote rmdir "/${BUCKET}": Operation unsupported`, show(r));
  assert.match(err, /remote symlink .*: Operation unsupported/, show(r));
  assert.match(err, `File "/${BUCKET}/${d}/no-such-file" not found.`, show(r));
  assert.match(err, `remote delete /${BUCKET}/${d}/no-such-file: No such file or directory`, show(r));
  assert.not.ok(fs.existsSync(back), 'a failed get leaves no local file');
  // Nothing was harmed: the directory and its file are still there, nothing was renamed or linked.
  assert.match(r.out, `${d}/one`);
  await assertStored(BUCKET, `${d}/one`, 1);
  await assertAbsent(BUCKET, `${PREFIX}/errors-renamed/one`);
  await assertAbsent(BUCKET, `${d}/link`);
});

test('a user whose ListBuckets is denied sees an empty / and can still cd into a bucket by name', async ({ gw }) => {
  const r = await sftpBatch(gw, 'noRights', ['ls /', 'ls -l /', `cd ${BUCKET}`, 'pwd', '-ls', `cd /${OTHER_BUCKET}`, 'pwd']);
  assertOk(r);
  const parts = r.out.split('sftp> ');
  assert.is(parts[1], 'ls /\n', 'an empty listing of /, not an error');
  assert.is(parts[2], 'ls -l /\n');
  assert.match(r.out, `Remote working directory: /${BUCKET}\n`);
  assert.match(r.out, `Remote working directory: /${OTHER_BUCKET}\n`);
  // Inside, the store decides: this user may not list.
  assert.match(r.stderr, /Couldn't read directory: Permission denied/, show(r));
  assert.not.match(r.stderr, /ls \//);
});

test('the root lists both buckets; cd into a bucket that does not exist fails', async ({ gw }) => {
  const r = await sftpBatch(gw, 'least', ['ls /', '-cd /no-such-bucket-s3gw-e2e', 'pwd']);
  assertOk(r);
  assert.match(r.out, /\/example-bucket\s+\/other-bucket/);
  // sftp's cd STATs the target: the bucket does not exist, so the STAT fails and cd with it.
  assert.match(r.stderr, /stat remote: No such file or directory/, show(r));
  assert.match(r.out, 'Remote working directory: /\n');
});

test('the one-bucket user lists and writes example-bucket and is denied on other-bucket', async ({ gw }) => {
  const p = await payload(4096);
  const d = `${PREFIX}/onebucket`;
  await putAsAdmin(OTHER_BUCKET, `${d}/admins-file`, 'written by the admin');
  const back = path.join(tempDir('onebucket'), 'x');
  const r = await sftpBatch(gw, 'oneBucket', [
    'ls /',
    `cd /${BUCKET}`,
    `put ${p.path} ${d}/mine`,
    `ls -l ${d}`,
    `cd /${OTHER_BUCKET}`,
    '-ls',
    `-ls ${d}`,
    `-put ${p.path} ${d}/not-mine`,
    `-get ${d}/admins-file ${back}`,
    `-rm ${d}/admins-file`,
    `-mkdir ${d}/newdir`,
  ]);
  assertOk(r);
  assert.match(r.out, /\/example-bucket\s+\/other-bucket/, 'ListAllMyBuckets shows both');
  assert.match(r.out, new RegExp(`\\s${p.size}\\s.*\\smine$`, 'm'));
  await assertStored(BUCKET, `${d}/mine`, p.size);

  // ls, put (refused when the object would be made: a small file is one PutObject at CLOSE), rm
  // and mkdir each say "Permission denied". `ls PATH` and `get` glob the path first and print
  // "not found" whatever the STAT failed with (OpenSSH's remote_glob); paramiko sees the status.
  assert.match(r.stderr, /Couldn't read directory: Permission denied/, show(r));
  assert.match(r.stderr, /close remote: Permission denied/, show(r));
  assert.match(r.stderr, /Can't ls: .*onebucket" not found/, show(r));
  assert.match(r.stderr, /File ".*admins-file" not found/, show(r));
  assert.match(r.stderr, /remote delete .*admins-file: Permission denied/, show(r));
  assert.match(r.stderr, /remote mkdir .*newdir": Permission denied/, show(r));
  assert.not.ok(fs.existsSync(back) && fs.statSync(back).size > 0, 'nothing was downloaded');
  await assertAbsent(OTHER_BUCKET, `${d}/not-mine`);
  await assertAbsent(OTHER_BUCKET, `${d}/newdir/`);
  assert.ok(await headOrNull(OTHER_BUCKET, `${d}/admins-file`), 'the admin’s file is still there');
});

test('the one-bucket user putting a multipart-sized file into other-bucket is told "Permission denied"', async ({ gw }) => {
  // The first part upload (CreateMultipartUpload) is denied, so one WRITE fails with
  // PERMISSION_DENIED and the WRITEs after it fail as well. OpenSSH's sftp prints the status of the
  // *last* WRITE acknowledged (sftp-client.c keeps overwriting `status` in its ack loop), so the
  // later WRITEs must carry the same status for the user to read why.
  const p = await payload(3 * 5 * 1024 * 1024 + 17);
  const key = `${PREFIX}/onebucket/big.bin`;
  const r = await sftpBatch(gw, 'oneBucket', [`put ${p.path} /${OTHER_BUCKET}/${key}`]);
  assert.not.ok(r.timedOut, show(r));
  assert.is.not(r.code, 0, show(r));
  await assertAbsent(OTHER_BUCKET, key);
  assert.match(r.stderr, /write remote .*big\.bin": Permission denied/, show(r));
});

test('wrong secret, unknown access key and malformed user names are refused with "Permission denied"', async ({ gw }) => {
  const least = await creds('least');
  const cases: Array<{ what: string; userName?: string; secret?: string; reason: RegExp }> = [
    { what: 'wrong secret', secret: 'wR0ng+secret/with=odd+chars', reason: /SignatureDoesNotMatch/ },
    { what: 'unknown access key', userName: 'AKIAS3GWNOSUCHKEY000', reason: /InvalidAccessKeyId/ },
    { what: 'malformed user name', userName: 'AKIA/NOT=A,KEY', reason: /malformed access key/ },
    { what: 'too short a user name', userName: 'ab', reason: /malformed access key/ },
  ];
  for (const c of cases) {
    const before = gw.logMark();
    const r = await sftpBatch(gw, 'least', ['ls /'], { userName: c.userName, secret: c.secret });
    assert.not.ok(r.timedOut, `${c.what}: hung\n${show(r)}`);
    assert.is(r.code, 255, `${c.what}: exit 255\n${show(r)}`);
    assert.match(r.stderr, /Permission denied \(/, `${c.what}\n${show(r)}`);
    assert.not.match(r.out, /example-bucket/);
    const logged = gw.logsSince(before).filter((l) => /login failed/.test(l) && /"method":"password"/.test(l));
    assert.ok(logged.length > 0, `${c.what}: the failure is logged`);
    assert.match(logged.join('\n'), c.reason, `${c.what}: the logged reason`);
  }
  // The right key still works afterwards, and no secret ever reached the log.
  const ok = await sftpBatch(gw, 'least', ['ls /']);
  assertOk(ok);
  const all = gw.logs.join('\n');
  assert.not.ok(all.includes(least.secretAccessKey), 'the secret is never logged');
  assert.not.ok(all.includes('wR0ng+secret/with=odd+chars'), 'a wrong secret is never logged');
  assert.ok(logLines(gw, /login failed/).length >= cases.length);
});

test.run();
