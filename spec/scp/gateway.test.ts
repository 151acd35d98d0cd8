/**
 * Legacy SCP through the whole gateway (issue #4): OpenSSH `scp -O` (exec `scp -t` / `scp -f`)
 * and curl's scp:// (libssh2) against the real S3 of spec/helpers/s3-env.ts. Files at the sizes
 * around the 5 MiB part boundary both ways with sha256 checks, -r trees, -p times, several
 * sources, a glob the gateway expands itself, errors the client must report (missing file, a
 * bucket the user may not write, targets where no object can live), a client killed mid-upload,
 * and exec commands that are not scp.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ListBucketsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import * as assert from 'uvu/assert';
import { runSsh } from '../helpers/openssh.js';
import {
  BUCKET,
  MiB,
  OTHER_BUCKET,
  admin,
  assertAbsent,
  assertStored,
  creds,
  e2ePrefix,
  headOrNull,
  killMidUpload,
  logTail,
  payload,
  pendingUploads,
  sftpBatch,
  sha256File,
  show,
  sshClientEnv,
  tempDir,
  type ClientRun,
  type Gateway,
  gatewaySuite,
} from '../helpers/gateway.js';
import {
  curlScp,
  curlScpUrl,
  listTree,
  scpLegacy,
  scpLegacyStarted,
  sshExec,
  writeTree,
} from '../helpers/scp.js';

const PREFIX = e2ePrefix('scp-legacy');
const PART = 5 * MiB;
const SIZES = [0, 1, PART - 1, PART, PART + 1, 3 * PART + 17, 200 * MiB];

const test = gatewaySuite('gateway: legacy scp (scp -O, curl scp://)', PREFIX);

/** `user@127.0.0.1:path` for scp. */
async function remote(user: 'least' | 'oneBucket', p: string): Promise<string> {
  return `${(await creds(user)).accessKeyId}@127.0.0.1:${p}`;
}

function ok(r: ClientRun, gw: Gateway): void {
  assert.not.ok(r.timedOut, `hung: ${show(r)}\n--- gateway log\n${logTail(gw)}`);
  assert.is(r.code, 0, `${show(r)}\n--- gateway log\n${logTail(gw, 15)}`);
}

/** A failure the client reported: a non-zero exit and something said on stderr, in time. */
function failed(r: ClientRun, gw: Gateway, said: RegExp): void {
  assert.not.ok(r.timedOut, `hung: ${show(r)}\n--- gateway log\n${logTail(gw)}`);
  assert.is.not(r.code, 0, `the client should fail\n${show(r)}`);
  assert.match(r.stderr, said, show(r));
}

// ------------------------------------------------------------------ single files

test('scp -O uploads and downloads single files at 0, 1, part-1, part, part+1, 3 parts + 17 bytes and 200 MiB', async ({ gw }) => {
  const back = tempDir('scp-o-sizes');
  for (const size of SIZES) {
    const f = await payload(size);
    const key = `${PREFIX}/sizes/${size}.bin`;
    ok(await scpLegacy(gw, 'least', [f.path, await remote('least', `/${BUCKET}/${key}`)]), gw);
    await assertStored(BUCKET, key, size);
    const local = path.join(back, `${size}.bin`);
    ok(await scpLegacy(gw, 'least', [await remote('least', `/${BUCKET}/${key}`), local]), gw);
    assert.is(fs.statSync(local).size, size, `${size}: size of the download`);
    assert.is(await sha256File(local), f.sha256, `${size} bytes: same sha256 after the round trip`);
  }
});

test('scp -O into a directory target keeps the file name; a download into a directory too', async ({ gw }) => {
  const f = await payload(1000);
  const name = path.basename(f.path);
  ok(await sftpBatch(gw, 'least', [`mkdir /${BUCKET}/${PREFIX}/into`]), gw);
  for (const target of [`/${BUCKET}/${PREFIX}/into`, `/${BUCKET}/${PREFIX}/into/`]) {
    ok(await scpLegacy(gw, 'least', [f.path, await remote('least', target)]), gw);
    await assertStored(BUCKET, `${PREFIX}/into/${name}`, 1000);
    assert.is(await headOrNull(BUCKET, `${PREFIX}/into`), null, `${target}: no object named like the directory`);
  }
  const dest = tempDir('scp-o-into');
  ok(await scpLegacy(gw, 'least', [await remote('least', `/${BUCKET}/${PREFIX}/into/${name}`), dest]), gw);
  assert.is(await sha256File(path.join(dest, name)), f.sha256);
});

test('scp -O to "dir/" that does not exist never stores an object named "dir"', async ({ gw }) => {
  // OpenSSH's sink fails here (open("dir/") is EISDIR or ENOENT); on S3, where a directory is
  // only a prefix, storing the file inside it would do too. Dropping the slash would not.
  const f = await payload(1000);
  const r = await scpLegacy(gw, 'least', [f.path, await remote('least', `/${BUCKET}/${PREFIX}/fresh/`)]);
  assert.not.ok(r.timedOut, show(r));
  assert.is(await headOrNull(BUCKET, `${PREFIX}/fresh`), null, `the trailing slash was dropped\n${show(r)}`);
  if (r.code === 0) await assertStored(BUCKET, `${PREFIX}/fresh/${path.basename(f.path)}`, 1000);
  else assert.match(r.stderr, /\S/, show(r));
});

test('scp -O with several sources: one upload command, one download command', async ({ gw }) => {
  const src = tempDir('scp-o-many');
  const files: Record<string, Buffer> = {
    'one.txt': Buffer.from('one\n'),
    'two.bin': Buffer.from(fs.readFileSync((await payload(PART + 1)).path)),
    'three.txt': Buffer.alloc(0),
  };
  writeTree(src, files);
  const names = Object.keys(files);
  // Several sources need a directory as the target (scp sends -d), as with OpenSSH's sink.
  ok(await sftpBatch(gw, 'least', [`mkdir /${BUCKET}/${PREFIX}/many`]), gw);
  const up = await scpLegacy(gw, 'least', [...names.map((n) => path.join(src, n)), await remote('least', `/${BUCKET}/${PREFIX}/many`)]);
  ok(up, gw);
  for (const n of names) await assertStored(BUCKET, `${PREFIX}/many/${n}`, files[n]!.length);
  const dest = tempDir('scp-o-many-back');
  const sources = await Promise.all(names.map((n) => remote('least', `/${BUCKET}/${PREFIX}/many/${n}`)));
  ok(await scpLegacy(gw, 'least', [...sources, dest]), gw);
  for (const n of names) assert.ok(fs.readFileSync(path.join(dest, n)).equals(files[n]!), `${n}: same bytes`);
});

// ------------------------------------------------------------------ trees, times, globs

test('scp -O -r copies a tree up and down (nested directories, an empty file, a multipart file)', async ({ gw }) => {
  const src = path.join(tempDir('scp-o-tree'), 'tree');
  const big = fs.readFileSync((await payload(PART + 1)).path);
  const files: Record<string, Buffer> = {
    'a.txt': Buffer.from('alpha\n'),
    'empty': Buffer.alloc(0),
    'sub/b.bin': big,
    'sub/deeper/c.txt': Buffer.from('gamma\n'),
    'other/d.txt': Buffer.from('delta\n'),
  };
  writeTree(src, files);
  ok(await scpLegacy(gw, 'least', ['-r', src, await remote('least', `/${BUCKET}/${PREFIX}/`)]), gw);
  for (const [name, data] of Object.entries(files)) await assertStored(BUCKET, `${PREFIX}/tree/${name}`, data.length);

  const dest = tempDir('scp-o-tree-back');
  ok(await scpLegacy(gw, 'least', ['-r', await remote('least', `/${BUCKET}/${PREFIX}/tree`), dest]), gw);
  assert.equal(listTree(path.join(dest, 'tree')), Object.keys(files).sort(), 'the same files came back');
  for (const [name, data] of Object.entries(files)) {
    assert.ok(fs.readFileSync(path.join(dest, 'tree', name)).equals(data), `${name}: same bytes`);
  }
});

test('scp -O -p keeps the modification time: up with -p, down with -p', async ({ gw }) => {
  const src = path.join(tempDir('scp-o-times'), 'dated.txt');
  fs.writeFileSync(src, 'from 2001\n');
  const mtime = 981_173_106; // 2001-02-03T04:05:06Z
  fs.utimesSync(src, mtime, mtime);
  const key = `${PREFIX}/times/dated.txt`;
  ok(await scpLegacy(gw, 'least', ['-p', src, await remote('least', `/${BUCKET}/${key}`)]), gw);
  await assertStored(BUCKET, key, 10);
  const dest = tempDir('scp-o-times-back');
  ok(await scpLegacy(gw, 'least', ['-p', await remote('least', `/${BUCKET}/${key}`), dest]), gw);
  const st = fs.statSync(path.join(dest, 'dated.txt'));
  assert.is(Math.floor(st.mtimeMs / 1000), mtime, 'mtime of the download');
  // Without -p on the way down, the file is simply new.
  const plain = tempDir('scp-o-times-plain');
  ok(await scpLegacy(gw, 'least', [await remote('least', `/${BUCKET}/${key}`), plain]), gw);
  assert.ok(fs.statSync(path.join(plain, 'dated.txt')).mtimeMs / 1000 > mtime + 86_400 * 365, 'no times without -p');
});

test("scp -O host:'/bucket/dir/*.txt' . downloads what the glob matches, nothing else", async ({ gw }) => {
  const src = tempDir('scp-o-glob');
  const files: Record<string, Buffer> = {
    'a.txt': Buffer.from('a\n'),
    'b.txt': Buffer.from('bb\n'),
    'c.bin': Buffer.from('c\n'),
    'd.txt.gz': Buffer.from('d\n'),
  };
  writeTree(src, files);
  ok(await sftpBatch(gw, 'least', [`mkdir /${BUCKET}/${PREFIX}/glob`]), gw);
  ok(await scpLegacy(gw, 'least', [...Object.keys(files).map((n) => path.join(src, n)), await remote('least', `/${BUCKET}/${PREFIX}/glob`)]), gw);
  const dest = tempDir('scp-o-glob-back');
  // One argument: scp sends `scp -f /bucket/dir/*.txt` unquoted, as sshd's shell would expand it.
  const r = await scpLegacy(gw, 'least', [await remote('least', `/${BUCKET}/${PREFIX}/glob/*.txt`), '.'], { cwd: dest });
  ok(r, gw);
  assert.equal(listTree(dest), ['a.txt', 'b.txt'], show(r));
  assert.ok(fs.readFileSync(path.join(dest, 'b.txt')).equals(files['b.txt']!));
});

// ------------------------------------------------------------------ errors the client reports

test('scp -O of a missing file fails with "No such file"', async ({ gw }) => {
  const dest = tempDir('scp-o-missing');
  const r = await scpLegacy(gw, 'least', [await remote('least', `/${BUCKET}/${PREFIX}/no-such-file`), dest]);
  failed(r, gw, /no such file|not found/i);
  assert.equal(fs.readdirSync(dest), [], 'nothing written locally');
});

test('scp -O into a bucket the user may not write is denied and stores nothing', async ({ gw }) => {
  const f = await payload(1000);
  const key = `${PREFIX}/denied.bin`;
  const r = await scpLegacy(gw, 'oneBucket', [f.path, await remote('oneBucket', `/${OTHER_BUCKET}/${key}`)]);
  failed(r, gw, /denied|permission/i);
  await assertAbsent(OTHER_BUCKET, key);
  // Reading from it is refused too (S3 answers 403 whether or not the key exists).
  const down = await scpLegacy(gw, 'oneBucket', [await remote('oneBucket', `/${OTHER_BUCKET}/${key}`), tempDir('scp-o-denied')]);
  failed(down, gw, /denied|permission/i);
});

test('scp -O with a target at the root (where only buckets live) fails and creates no bucket', async ({ gw }) => {
  const f = await payload(1000);
  const bucketsBefore = await bucketNames();
  // The root itself as a directory target: the file would be an object without a bucket.
  failed(await scpLegacy(gw, 'least', [f.path, await remote('least', '/')]), gw, /\S/);
  // A name at the root as a file target: that is a bucket, not an object.
  const name = `s3gw-scp-not-a-bucket-${process.pid}`;
  failed(await scpLegacy(gw, 'least', [f.path, await remote('least', `/${name}`)]), gw, /\S/);
  assert.equal(await bucketNames(), bucketsBefore, 'no bucket was created');
  // A bucket root as a source without -r is a directory, not a file.
  const dest = tempDir('scp-o-bucket-root');
  failed(await scpLegacy(gw, 'least', [await remote('least', `/${BUCKET}`), dest]), gw, /not a regular file|directory/i);
  assert.equal(fs.readdirSync(dest), [], 'nothing written locally');
});

async function bucketNames(): Promise<string[]> {
  const out = await (await admin()).send(new ListBucketsCommand({}));
  return (out.Buckets ?? []).map((b) => b.Name!).sort();
}

// ------------------------------------------------------------------ curl scp:// (libssh2)

test('curl scp:// downloads (libssh2, scp -f), across the part boundary', async ({ gw }) => {
  const dir = tempDir('curl-scp-down');
  for (const size of [0, 9_999, PART + 1]) {
    const f = await payload(size);
    const key = `${PREFIX}/curl-down/${size}.bin`;
    ok(await scpLegacy(gw, 'least', [f.path, await remote('least', `/${BUCKET}/${key}`)]), gw);
    const back = path.join(dir, `${size}.bin`);
    ok(await curlScp(['--output', back, await curlScpUrl(gw, 'least', `/${BUCKET}/${key}`)]), gw);
    assert.is(await sha256File(back), f.sha256, `${size} bytes`);
  }
});

test('curl scp:// uploads (libssh2, scp -t: it ends the file with EOF, not the trailing NUL)', async ({ gw }) => {
  const dir = tempDir('curl-scp-up');
  for (const size of [0, 9_999, PART + 1]) {
    const f = await payload(size);
    const key = `${PREFIX}/curl-up/${size}.bin`;
    const url = await curlScpUrl(gw, 'least', `/${BUCKET}/${key}`);
    const up = await curlScp(['--upload-file', f.path, url]);
    ok(up, gw);
    const stored = await headOrNull(BUCKET, key);
    assert.ok(stored, `${size} bytes: curl reported success but ${key} is not in S3\n${show(up)}\n--- gateway log\n${logTail(gw, 12)}`);
    await assertStored(BUCKET, key, size);
    const back = path.join(dir, `${size}.bin`);
    ok(await curlScp(['--output', back, url]), gw);
    assert.is(await sha256File(back), f.sha256, `${size} bytes`);
  }
});

test('curl scp:// of a missing file fails; a wrong host key pin is refused before login', async ({ gw }) => {
  const missing = await curlScp(['--output', '/dev/null', await curlScpUrl(gw, 'least', `/${BUCKET}/${PREFIX}/curl-down/none`)]);
  assert.not.ok(missing.timedOut, show(missing));
  assert.is.not(missing.code, 0, show(missing));
  const wrongPin = await curlScp(['--output', '/dev/null', await curlScpUrl(gw, 'least', `/${BUCKET}/${PREFIX}/curl-down/0.bin`)], {
    pin: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  });
  assert.not.ok(wrongPin.timedOut, show(wrongPin));
  // curl 60: "SSL peer certificate or SSH remote key was not OK".
  assert.is(wrongPin.code, 60, show(wrongPin));
});

// ------------------------------------------------------------------ a client killed mid-upload

async function killScpMidUpload(gw: Gateway, name: string, killSsh: boolean): Promise<void> {
  const f = await payload(3 * PART + 17);
  const key = `${PREFIX}/killed/${name}.bin`;
  // -l 16000 Kbit/s: about 2 MB/s, so the upload is surely in its middle when killed.
  const run = await scpLegacyStarted(gw, 'least', ['-l', '16000', f.path, await remote('least', `/${BUCKET}/${key}`)]);
  await killMidUpload(gw, key, run, killSsh);
}

test('killing ssh under scp -O mid-upload (the connection drops) leaves no object and no pending multipart upload', async ({ gw }) => {
  await killScpMidUpload(gw, 'connection-dropped', true);
});

test('killing scp -O mid-upload (ssh ends the channel with EOF) leaves no object and no pending multipart upload', async ({ gw }) => {
  await killScpMidUpload(gw, 'channel-ended', false);
});

// ------------------------------------------------------------------ exec requests that are not scp

test('exec of anything but scp -t / scp -f gets a message on stderr and exit status 1, never a shell', async ({ gw }) => {
  for (const command of ['ls', 'sh -c id', 'scp', `scp /${BUCKET}/x`, 'scp -r', 'id; scp -t /x', 'bash']) {
    const r = await sshExec(gw, 'least', command);
    assert.not.ok(r.timedOut, `hung: ${show(r)}`);
    assert.is(r.code, 1, `${command}: exit status\n${show(r)}`);
    assert.match(r.stderr, /\S/, `${command}: a message on stderr\n${show(r)}`);
    assert.is(r.out, '', `${command}: nothing on stdout`);
    assert.not.match(r.stderr, /uid=|exec request failed/, `${command}: ran nothing, and the request was not refused\n${show(r)}`);
  }
});

test('hostile C/D/T records sent to scp -t are refused with an error record and exit 1, and store nothing', async ({ gw }) => {
  const c = await creds('least');
  const target = `/${BUCKET}/${PREFIX}/hostile`;
  const cases: Array<[string, Buffer]> = [
    ['D0755 0 ..', Buffer.from('D0755 0 ..\n')],
    ['D0755 0 .', Buffer.from('D0755 0 .\n')],
    ['a name with /', Buffer.from('C0644 5 a/b\nhello\0')],
    ['a size out of range', Buffer.from('C0644 99999999999999999999 big\n')],
    ['a negative size', Buffer.from('C0644 -1 neg\n')],
    ['a mode that is not octal', Buffer.from('C0999 5 mode\nhello\0')],
    ['a T line out of range', Buffer.from('T99999999999999999999 0 1 0\nC0644 5 t\nhello\0')],
    ['an unknown record', Buffer.from('X what\n')],
    ['an endless line', Buffer.alloc(256 * 1024, 0x41)],
  ];
  for (const [label, input] of cases) {
    const r = await runSsh(sshClientEnv(), {
      port: gw.port,
      user: c.accessKeyId,
      password: c.secretAccessKey,
      command: `scp -t -r -- ${target}`,
      stdin: input,
      timeoutMs: 30_000,
    });
    assert.not.ok(r.timedOut, `${label}: hung\n${r.stderr}`);
    assert.is(r.code, 1, `${label}: exit status 1\n${r.stderr}`);
    assert.is(r.stdout[0], 0, `${label}: the sink said it was ready first`);
    assert.ok(r.stdout.subarray(1).some((b) => b === 1 || b === 2), `${label}: an error record came back: ${JSON.stringify(r.stdout.toString('latin1'))}`);
  }
  // A client that ends in the middle of a file hears nothing more (it is gone): exit 1, nothing kept.
  const cut = await runSsh(sshClientEnv(), {
    port: gw.port,
    user: c.accessKeyId,
    password: c.secretAccessKey,
    command: `scp -t -- ${target}-cut`,
    stdin: Buffer.from('C0644 10 short\nhello'),
    timeoutMs: 30_000,
  });
  assert.not.ok(cut.timedOut, `cut short: hung\n${cut.stderr}`);
  assert.is(cut.code, 1, `cut short: exit status 1\n${cut.stderr}`);
  const listed = await (await admin()).send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}/hostile` }));
  assert.equal((listed.Contents ?? []).map((o) => o.Key), [], 'nothing stored under the target');
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/hostile`), [], 'no multipart upload left');
});

test('the gateway still serves scp -O after the failures above', async ({ gw }) => {
  const f = await payload(1);
  ok(await scpLegacy(gw, 'least', [f.path, await remote('least', `/${BUCKET}/${PREFIX}/after.bin`)]), gw);
  await assertStored(BUCKET, `${PREFIX}/after.bin`, 1);
});

test.run();
