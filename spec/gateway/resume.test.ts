/**
 * Resumed transfers end to end (issue 5 §3 and §5), real clients against the gateway and MinIO,
 * with the default `--partial-uploads keep`:
 * - OpenSSH `put` killed mid-upload keeps what arrived (the file was new), and `reput` then
 *   yields the exact file: once with a head of several parts (continued by UploadPartCopy) and
 *   once cut before the first part was full (a head read back into the first part);
 * - `put -a` onto a shorter object, both sizes of head, without a kill;
 * - `reget` and `get -a` finish a partial local file (ranged reads);
 * - WinSCP's upload, scripted with paramiko: name.filepart written, REMOVE, RENAME, SETSTAT
 *   mtime; and its resume after the connection was cut: STAT the .filepart, reopen it
 *   WRITE|CREAT and write from its size;
 * - OPEN without TRUNC: a first WRITE at 0 replaces the object (scp ≥ 9.1 uploads so, an empty
 *   file included), at the size continues it, anywhere else fails with a clear message and
 *   changes nothing; APPEND writes at the end whatever the offset.
 * Every result is compared by sha256 of what the admin downloads from S3. The discard setting is
 * in spec/gateway/abort.test.ts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as assert from 'uvu/assert';
import {
  BUCKET,
  MiB,
  assertAbsent,
  assertOk,
  assertStored,
  e2ePrefix,
  eventually,
  gatewaySuite,
  headOrNull,
  killAfterWrite,
  killMidUpload,
  logTail,
  paramiko,
  payload,
  pendingUploads,
  scp,
  scpRemote,
  sftpBatch,
  sftpBatchStarted,
  sha256File,
  sha256Object,
  tempDir,
  type Gateway,
  type Payload,
} from '../helpers/gateway.js';

const PREFIX = e2ePrefix('resume');
/** The gateway's part size (the default): a head this long or longer is continued by copy. */
const PART = 5 * MiB;
const BIG = 40 * MiB + 4321;
const MEDIUM = 12 * MiB + 5;
/** Kbit/s for the killed uploads: about 2 MB/s, so a kill lands well inside the file. */
const RATE = '16000';
/** About 250 kB/s: the cut before the first part is full (5 MiB) has seconds to spare. */
const SLOW_RATE = '2000';

const test = gatewaySuite('gateway: resumed uploads and downloads', PREFIX);

/** The first `n` bytes of a payload as a local file. */
function headOf(f: Payload, n: number): string {
  const file = path.join(tempDir('head'), `head-${n}.bin`);
  const fd = fs.openSync(f.path, 'r');
  try {
    const buf = Buffer.alloc(n);
    fs.readSync(fd, buf, 0, n, 0);
    fs.writeFileSync(file, buf);
  } finally {
    fs.closeSync(fd);
  }
  return file;
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** The object is the payload, byte for byte, and no multipart upload is left pending for it. */
async function assertExact(key: string, f: Payload): Promise<void> {
  await assertStored(BUCKET, key, f.size);
  assert.equal(await sha256Object(BUCKET, key), { sha256: f.sha256, size: f.size }, `${key}: content`);
  assert.equal(await pendingUploads(BUCKET, key), [], `${key}: nothing pending`);
}

/** The object is now what arrived before the cut: a prefix of the payload, shorter than it. */
async function assertPrefixOf(key: string, f: Payload, size: number): Promise<void> {
  assert.ok(size > 0 && size < f.size, `kept ${size} of ${f.size} bytes`);
  const want = fs.readFileSync(f.path).subarray(0, size);
  assert.equal(await sha256Object(BUCKET, key), { sha256: sha256(want), size }, 'what was kept is the head of the file');
}

async function reput(gw: Gateway, f: Payload, key: string): Promise<void> {
  const r = await sftpBatch(gw, 'least', [`reput ${f.path} /${BUCKET}/${key}`], { timeoutMs: 120_000 });
  assertOk(r);
  await assertExact(key, f);
}

// ----------------------------------------------------------------------- OpenSSH reput

test('put killed mid-upload keeps what arrived; reput then yields the exact file', async ({ gw }) => {
  const f = await payload(BIG);
  const key = `${PREFIX}/killed-big.bin`;
  const run = await sftpBatchStarted(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`], { args: ['-l', RATE] });
  const kept = await killMidUpload(gw, key, run, true, 'object');
  await assertPrefixOf(key, f, kept!.size);
  await reput(gw, f, key);
});

test('put cut before the first part was full keeps a small head; reput then yields the exact file', async ({ gw }) => {
  const f = await payload(MEDIUM);
  const key = `${PREFIX}/killed-small-head.bin`;
  const mark = gw.logMark();
  const run = await sftpBatchStarted(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`], { args: ['-l', SLOW_RATE] });
  const kept = await killAfterWrite(gw, key, run, mark, 256 * 1024, 'object');
  assert.ok(kept!.size < PART, `the head (${kept!.size} bytes) is shorter than a part`);
  await assertPrefixOf(key, f, kept!.size);
  await reput(gw, f, key);
});

test('killing sftp only (ssh ends the channel) keeps what arrived too; reput finishes it', async ({ gw }) => {
  const f = await payload(BIG);
  const key = `${PREFIX}/killed-channel.bin`;
  const run = await sftpBatchStarted(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`], { args: ['-l', RATE] });
  const kept = await killMidUpload(gw, key, run, false, 'object');
  await assertPrefixOf(key, f, kept!.size);
  await reput(gw, f, key);
});

for (const [what, headSize] of [
  ['a head of more than a part (continued by copy)', PART + MiB + 1],
  ['a head shorter than a part (read back into the first part)', MiB + 7],
  ['a head of exactly one part', PART],
] as const) {
  test(`put -a onto ${what} yields the exact file`, async ({ gw }) => {
    const f = await payload(MEDIUM);
    const key = `${PREFIX}/append-${headSize}.bin`;
    assertOk(await sftpBatch(gw, 'least', [`put ${headOf(f, headSize)} /${BUCKET}/${key}`]));
    await assertStored(BUCKET, key, headSize);
    assertOk(await sftpBatch(gw, 'least', [`put -a ${f.path} /${BUCKET}/${key}`], { timeoutMs: 120_000 }));
    await assertExact(key, f);
  });
}

test('reput of a file the object already matches in size is refused by sftp and changes nothing', async ({ gw }) => {
  const f = await payload(MiB);
  const key = `${PREFIX}/same-size.bin`;
  assertOk(await sftpBatch(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`]));
  const before = await headOrNull(BUCKET, key);
  const r = await sftpBatch(gw, 'least', [`reput ${f.path} /${BUCKET}/${key}`]);
  assert.is.not(r.code, 0, 'sftp refuses: the destination is not smaller');
  assert.is((await headOrNull(BUCKET, key))?.etag, before?.etag);
});

// ----------------------------------------------------------------------- reget, get -a

test('reget and get -a finish partial local files with ranged reads', async ({ gw }) => {
  const f = await payload(MEDIUM);
  const key = `${PREFIX}/download.bin`;
  assertOk(await sftpBatch(gw, 'least', [`put ${f.path} /${BUCKET}/${key}`]));
  const dir = tempDir('reget');
  const a = path.join(dir, 'a.bin');
  const b = path.join(dir, 'b.bin');
  fs.copyFileSync(headOf(f, PART + 3), a);
  fs.copyFileSync(headOf(f, 100), b);
  const r = await sftpBatch(gw, 'least', [`reget /${BUCKET}/${key} ${a}`, `get -a /${BUCKET}/${key} ${b}`]);
  assertOk(r);
  assert.is(await sha256File(a), f.sha256, 'reget');
  assert.is(await sha256File(b), f.sha256, 'get -a');
});

// ----------------------------------------------------------------------- WinSCP

interface Finished {
  existed: boolean;
  partGone: boolean;
  resumedFrom?: number;
  stat: { size: number; mtime: number };
}
type OpResult = { op: string; ok: true; value: unknown } | { op: string; ok: false; errno: number | null; message: string };

async function ops(gw: Gateway, list: Array<Record<string, unknown>>, clientVersion?: string): Promise<unknown[]> {
  const run = await paramiko<{ results: OpResult[] }>(gw, 'least', 'ops', { ops: list, ...(clientVersion ? { clientVersion } : {}) });
  return run.results.map((r) => {
    if (!r.ok) assert.unreachable(`${r.op} failed: [${r.errno}] ${r.message}\n--- gateway log\n${logTail(gw)}`);
    return (r as { value: unknown }).value;
  });
}

test('WinSCP: .filepart written and closed, the old file removed, renamed, mtime set', async ({ gw }) => {
  const f = await payload(MEDIUM);
  const key = `${PREFIX}/winscp/report.bin`;
  const remote = `/${BUCKET}/${key}`;
  assertOk(await sftpBatch(gw, 'least', [`put ${headOf(f, 1000)} ${remote}`]));
  const [done] = (await ops(gw, [{ op: 'winscp', local: f.path, remote, mtime: 1_600_000_000 }])) as [Finished];
  assert.ok(done.existed, 'the old file was there and removed');
  assert.ok(done.partGone, 'no .filepart left');
  assert.is(done.stat.size, f.size);
  assert.is(done.stat.mtime, 1_600_000_000);
  await assertExact(key, f);
  await assertAbsent(BUCKET, `${key}.filepart`);
});

test('WinSCP by its version string, onto a new name: the rename finishes the upload in place, copying nothing', async ({ gw }) => {
  const f = await payload(MEDIUM);
  const key = `${PREFIX}/winscp/new-name.bin`;
  const remote = `/${BUCKET}/${key}`;
  const mark = gw.logMark();
  const [done] = (await ops(gw, [{ op: 'winscp', local: f.path, remote, mtime: 1_600_000_001 }], 'SSH-2.0-WinSCP_release_6.3.5')) as [Finished];
  assert.not.ok(done.existed);
  assert.ok(done.partGone, 'no .filepart left');
  assert.is(done.stat.size, f.size);
  assert.is(done.stat.mtime, 1_600_000_001);
  const said = gw.logsSince(mark).join('\n');
  assert.match(said, /filepart parked/);
  assert.match(said, /filepart renamed without a copy/);
  await assertExact(key, f);
  await assertAbsent(BUCKET, `${key}.filepart`);
});

for (const [what, cutAt, existing] of [
  ['after several parts, onto a new name', 7 * MiB + 123, false],
  ['before the first part was full, replacing an old file', MiB + 5, true],
] as const) {
  test(`WinSCP: a .filepart cut off ${what} is resumed from its size`, async ({ gw }) => {
    const f = await payload(MEDIUM);
    const key = `${PREFIX}/winscp/cut-${cutAt}.bin`;
    const remote = `/${BUCKET}/${key}`;
    if (existing) assertOk(await sftpBatch(gw, 'least', [`put ${headOf(f, 333)} ${remote}`]));
    const [cut] = (await ops(gw, [{ op: 'winscpCut', local: f.path, remote, bytes: cutAt }])) as [{ sizeBeforeCut: number }];
    assert.is(cut.sizeBeforeCut, cutAt, 'FSTAT before the cut: every WRITE arrived');
    // The gateway notices the dropped connection and keeps the .filepart (it was new).
    await eventually(`${key}.filepart to be kept`, async () => (await headOrNull(BUCKET, `${key}.filepart`))?.size === cutAt);
    assert.equal(await pendingUploads(BUCKET, `${key}.filepart`), []);
    if (existing) await assertStored(BUCKET, key, 333);
    else await assertAbsent(BUCKET, key);

    const [done] = (await ops(gw, [{ op: 'winscpResume', local: f.path, remote, mtime: 1_600_000_123 }])) as [Finished];
    assert.is(done.resumedFrom, cutAt, 'STAT of the .filepart gave the size that was kept');
    assert.is(done.existed, existing);
    assert.ok(done.partGone, 'no .filepart left');
    assert.is(done.stat.size, f.size);
    assert.is(done.stat.mtime, 1_600_000_123);
    await assertExact(key, f);
    await assertAbsent(BUCKET, `${key}.filepart`);
  });
}

// ----------------------------------------------------------------------- OPEN without TRUNC

interface WriteAt {
  sizeAtOpen: number;
  writeError: string | null;
  closeError: string | null;
}

/** `length` bytes of the payload from `from`, written at `offset` on a handle opened with `flags`. */
async function writeAt(
  gw: Gateway,
  remote: string,
  flags: string[],
  f: Payload,
  offset: number,
  from: number,
  length: number,
): Promise<WriteAt> {
  const [r] = (await ops(gw, [{ op: 'openWriteAt', path: remote, flags, local: f.path, offset, from, length }])) as [WriteAt];
  return r;
}

test('WRITE|CREAT at an offset that neither continues nor starts at 0 fails clearly; the object is unchanged', async ({ gw }) => {
  const f = await payload(MiB);
  const key = `${PREFIX}/open/middle.bin`;
  assertOk(await sftpBatch(gw, 'least', [`put ${headOf(f, 1000)} /${BUCKET}/${key}`]));
  const before = await headOrNull(BUCKET, key);
  const r = await writeAt(gw, `/${BUCKET}/${key}`, ['WRITE', 'CREAT'], f, 500, 500, 100);
  assert.is(r.sizeAtOpen, 1000, 'FSTAT on the handle: the size it would continue');
  assert.ok(r.writeError, 'the WRITE failed');
  assert.match(r.writeError!, /500/, `the message names the offset: ${r.writeError}`);
  assert.match(r.writeError!, /1000/, `the message names the size: ${r.writeError}`);
  assert.match(r.closeError ?? '', /upload not stored because a write failed/);
  const after = await headOrNull(BUCKET, key);
  assert.is(after?.etag, before?.etag, 'the same object');
  assert.equal(await pendingUploads(BUCKET, key), []);
});

test('WRITE|CREAT at the object size continues it; at 0 replaces it with no old tail', async ({ gw }) => {
  const f = await payload(MiB);
  const key = `${PREFIX}/open/continue.bin`;
  assertOk(await sftpBatch(gw, 'least', [`put ${headOf(f, 1000)} /${BUCKET}/${key}`]));
  let r = await writeAt(gw, `/${BUCKET}/${key}`, ['WRITE', 'CREAT'], f, 1000, 1000, 500);
  assert.equal(r, { sizeAtOpen: 1000, writeError: null, closeError: null });
  const want = fs.readFileSync(f.path);
  assert.equal(await sha256Object(BUCKET, key), { sha256: sha256(want.subarray(0, 1500)), size: 1500 });
  r = await writeAt(gw, `/${BUCKET}/${key}`, ['WRITE'], f, 0, 0, 200);
  assert.equal(r, { sizeAtOpen: 1500, writeError: null, closeError: null });
  assert.equal(await sha256Object(BUCKET, key), { sha256: sha256(want.subarray(0, 200)), size: 200 });
});

test('WRITE|CREAT closed with nothing written leaves the object as it was', async ({ gw }) => {
  const f = await payload(MiB);
  const key = `${PREFIX}/open/untouched.bin`;
  assertOk(await sftpBatch(gw, 'least', [`put ${headOf(f, 1000)} /${BUCKET}/${key}`]));
  const before = await headOrNull(BUCKET, key);
  const r = await writeAt(gw, `/${BUCKET}/${key}`, ['WRITE', 'CREAT'], f, 0, 0, 0);
  assert.equal(r, { sizeAtOpen: 1000, writeError: null, closeError: null });
  assert.is((await headOrNull(BUCKET, key))?.etag, before?.etag);
});

test('APPEND writes at the end whatever the offset (paramiko mode "a" style)', async ({ gw }) => {
  const f = await payload(MiB);
  const key = `${PREFIX}/open/append.bin`;
  assertOk(await sftpBatch(gw, 'least', [`put ${headOf(f, 1000)} /${BUCKET}/${key}`]));
  const r = await writeAt(gw, `/${BUCKET}/${key}`, ['WRITE', 'APPEND'], f, 0, 1000, 3000);
  assert.equal(r, { sizeAtOpen: 1000, writeError: null, closeError: null });
  assert.equal(await sha256Object(BUCKET, key), { sha256: sha256(fs.readFileSync(f.path).subarray(0, 4000)), size: 4000 });
});

test('scp (SFTP mode, no TRUNC) over a longer object stores exactly the new file, an empty one included', async ({ gw }) => {
  const big = await payload(MEDIUM);
  const small = await payload(MiB);
  const key = `${PREFIX}/scp/over.bin`;
  assertOk(await sftpBatch(gw, 'least', [`put ${big.path} /${BUCKET}/${key}`]));
  assertOk(await scp(gw, 'least', [small.path, await scpRemote('least', `/${BUCKET}/${key}`)]));
  await assertExact(key, small);
  const empty = path.join(tempDir('scp'), 'empty.bin');
  fs.writeFileSync(empty, '');
  assertOk(await scp(gw, 'least', [empty, await scpRemote('least', `/${BUCKET}/${key}`)]));
  await assertStored(BUCKET, key, 0);
});

test.run();
