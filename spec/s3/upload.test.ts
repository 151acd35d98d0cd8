/**
 * Streaming uploads against the real S3: exact bytes at every size boundary, SSE on every object,
 * the memory budget, sequential offsets, exclusive create, abort and failed parts leaving nothing.
 */
import { createHash } from 'node:crypto';
import zlib from 'node:zlib';
import { AbortMultipartUploadCommand, S3Client } from '@aws-sdk/client-s3';
import type { WriteHandle } from '../../src/backend.js';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { silentLogger } from '../../src/log.js';
import { createS3Backend } from '../../src/s3/backend.js';
import type { S3BackendOptions } from '../../src/s3/options.js';
import { SLAB_SIZE, slabsInUse } from '../../src/s3/slabs.js';
import {
  BUCKET,
  MiB,
  admin,
  backend,
  closeBackends,
  headAsAdmin,
  keysUnder,
  pattern,
  pendingUploads,
  putAsAdmin,
  readAll,
  rejectsWith,
  removePrefix,
  runPrefix,
  s3env,
  sha256Of,
  writePattern,
} from './fixture.js';

const PREFIX = runPrefix('upload');
const DIR = `/${BUCKET}/${PREFIX}`;
const PART = 5 * MiB;

const test = suite('s3 backend: uploads');

test.before(async () => {
  await s3env();
});

test.after(async () => {
  await closeBackends();
  await removePrefix(BUCKET, PREFIX + '/');
});

const sizes: Array<[string, number]> = [
  ['0', 0],
  ['1', 1],
  ['part-1', PART - 1],
  ['part', PART],
  ['part+1', PART + 1],
  ['2 parts', 2 * PART],
  ['2 parts + 1', 2 * PART + 1],
  ['3 parts + 17', 3 * PART + 17],
];

for (const [label, size] of sizes) {
  test(`sha256 round trip, ${label} bytes (${size}), encrypted`, async () => {
    const b = await backend();
    const path = `${DIR}/size-${size}`;
    const h = await b.openWrite(path, { exclusive: true });
    const sum = await writePattern(h, size, size + 1);
    assert.is(h.bytesWritten, size);
    await h.commit();
    // commit resolves only once the object exists.
    const head = await headAsAdmin(BUCKET, `${PREFIX}/size-${size}`);
    assert.is(head.ContentLength, size);
    assert.is(head.ServerSideEncryption, 'AES256');
    const parts = Math.ceil(size / PART);
    if (size > PART) assert.match(head.ETag ?? '', new RegExp(`-${parts}"$`), 'multipart above one part');
    else assert.not.match(head.ETag ?? '', /-\d+"$/, 'a single PutObject up to one part');
    const back = await readAll(b, path, 64 * 1024);
    assert.is(back.size, size);
    assert.is(back.sha256, sum);
  });
}

test('SSE-KMS uploads carry aws:kms with the configured key', async () => {
  const b = await backend('least', { sse: { mode: 'aws:kms', kmsKeyId: 's3gw-key' } });
  for (const size of [10, PART + 10]) {
    const h = await b.openWrite(`${DIR}/kms-${size}`, { exclusive: false });
    await writePattern(h, size);
    await h.commit();
    const head = await headAsAdmin(BUCKET, `${PREFIX}/kms-${size}`);
    assert.is(head.ServerSideEncryption, 'aws:kms');
    assert.match(head.SSEKMSKeyId ?? '', /s3gw-key$/);
    assert.is((await readAll(b, `${DIR}/kms-${size}`)).sha256, sha256Of(size));
  }
});

test('with the SDK checksums on (WHEN_SUPPORTED) uploads and ranged reads still work', async () => {
  const b = await backend('least', { checksums: 'WHEN_SUPPORTED' });
  for (const size of [0, 1000, PART + 1000, 2 * PART + 1000]) {
    const h = await b.openWrite(`${DIR}/crc-${size}`, { exclusive: false });
    const sum = await writePattern(h, size, 6);
    await h.commit();
    assert.is((await readAll(b, `${DIR}/crc-${size}`)).sha256, sum);
  }
});

test('an upload holds at most its memory budget of slabs', async () => {
  const b = await backend();
  const budget = 6 * MiB;
  const before = slabsInUse();
  const h = await b.openWrite(`${DIR}/budget`, { exclusive: false });
  let peak = 0;
  const size = 40 * MiB + 5;
  let off = 0;
  for (const chunk of pattern(size, 9, 32 * 1024)) {
    await h.write(off, chunk);
    off += chunk.length;
    peak = Math.max(peak, slabsInUse() - before);
  }
  await h.commit();
  assert.ok(peak * SLAB_SIZE <= budget, `peak ${peak} slabs of ${SLAB_SIZE} bytes exceeds ${budget}`);
  assert.ok(peak * SLAB_SIZE > PART, `peak ${peak} slabs: the next part should fill while one uploads`);
  assert.is(slabsInUse(), before, 'every slab is released after commit');
  assert.is((await readAll(b, `${DIR}/budget`, 256 * 1024)).sha256, sha256Of(size, 9));
});

test('parts after the first stream to S3 while they fill; a short last part goes again at its length', async () => {
  let h: WriteHandle | undefined;
  const starts: Array<{ part: number; length: number; written: number }> = [];
  const factory: NonNullable<S3BackendOptions['clientFactory']> = (config) => {
    const c = new S3Client(config);
    c.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'UploadPartCommand') {
          const input = args.input as { PartNumber: number; ContentLength: number };
          starts.push({ part: input.PartNumber, length: input.ContentLength, written: h!.bytesWritten });
        }
        return next(args);
      },
      { step: 'initialize', name: 's3gwRecordParts' },
    );
    return c;
  };
  const b = await backend('least', { clientFactory: factory });
  h = await b.openWrite(`${DIR}/live`, { exclusive: false });
  const size = 3 * PART + 17;
  const sum = await writePattern(h, size, 21);
  await h.commit();
  const first = (n: number) => starts.find((s) => s.part === n);
  // Part 1 is buffered whole (the file might have been a single PutObject).
  assert.is(first(1)?.length, PART);
  assert.ok(first(1)!.written >= PART, `part 1 sent after it filled (${first(1)!.written})`);
  // Parts 2 and 3 start with their first bytes, announcing a whole part.
  for (const n of [2, 3]) {
    const s = first(n);
    assert.is(s?.length, PART, `part ${n} announced at the part size`);
    assert.ok(s!.written < (n - 1) * PART + MiB, `part ${n} started at ${s!.written} bytes, before it filled`);
    assert.is(starts.filter((x) => x.part === n).length, 1, `part ${n} sent once`);
  }
  // The last part started live too, was cut short, and went again with its real length.
  assert.equal(
    starts.filter((x) => x.part === 4).map((x) => x.length),
    [PART, 17],
  );
  const head = await headAsAdmin(BUCKET, `${PREFIX}/live`);
  assert.is(head.ContentLength, size);
  assert.match(head.ETag ?? '', /-4"$/);
  assert.is((await readAll(b, `${DIR}/live`, 256 * 1024)).sha256, sum);
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/live`), []);
});

test('a write at an unexpected offset is EINVAL and says why', async () => {
  const b = await backend();
  const h = await b.openWrite(`${DIR}/seq`, { exclusive: false });
  await h.write(0, Buffer.from('abc'));
  const msg = await rejectsWith(h.write(10, Buffer.from('x')), 'EINVAL');
  assert.match(msg, /sequential/);
  await rejectsWith(h.write(0, Buffer.from('x')), 'EINVAL');
  await h.write(3, Buffer.from('def'));
  await h.commit();
  const r = await b.openRead(`${DIR}/seq`);
  assert.is((await r.read(0, 100)).toString(), 'abcdef');
  await r.close();
});

test('mtime given at open and set before commit is stored and reported', async () => {
  const b = await backend();
  const h1 = await b.openWrite(`${DIR}/mtime-small`, { exclusive: false, mtime: 1_000_000_000 });
  await h1.write(0, Buffer.from('x'));
  await h1.commit();
  assert.is((await b.stat(`${DIR}/mtime-small`)).mtime, 1_000_000_000);
  assert.is((await headAsAdmin(BUCKET, `${PREFIX}/mtime-small`)).Metadata?.['mtime'], '1000000000');

  // Set after the multipart upload began (FSETSTAT before CLOSE): stored by a copy at commit.
  const h2 = await b.openWrite(`${DIR}/mtime-big`, { exclusive: false, mtime: 1_100_000_000 });
  await writePattern(h2, PART + 100, 4);
  h2.setMtime(1_200_000_000);
  await h2.commit();
  assert.is((await b.stat(`${DIR}/mtime-big`)).mtime, 1_200_000_000);
  const head = await headAsAdmin(BUCKET, `${PREFIX}/mtime-big`);
  assert.is(head.ServerSideEncryption, 'AES256');
  assert.is((await readAll(b, `${DIR}/mtime-big`)).sha256, sha256Of(PART + 100, 4));
});

test('exclusive create: EEXIST at open, and at commit when someone else created it meanwhile', async () => {
  const b = await backend();
  await putAsAdmin(BUCKET, `${PREFIX}/excl`, 'there');
  await rejectsWith(b.openWrite(`${DIR}/excl`, { exclusive: true }), 'EEXIST');

  const small = await b.openWrite(`${DIR}/excl-race`, { exclusive: true });
  await small.write(0, Buffer.from('mine'));
  await putAsAdmin(BUCKET, `${PREFIX}/excl-race`, 'theirs');
  await rejectsWith(small.commit(), 'EEXIST');

  const big = await b.openWrite(`${DIR}/excl-race-mp`, { exclusive: true });
  await writePattern(big, PART + 1);
  await putAsAdmin(BUCKET, `${PREFIX}/excl-race-mp`, 'theirs');
  await rejectsWith(big.commit(), 'EEXIST');
  const r = await b.openRead(`${DIR}/excl-race-mp`);
  assert.is((await r.read(0, 100)).toString(), 'theirs');
  await r.close();
  // The refused commit aborted the multipart upload.
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/excl-race-mp`), []);
});

test('abort leaves no object and no pending multipart upload', async () => {
  const b = await backend();
  const h = await b.openWrite(`${DIR}/aborted`, { exclusive: false });
  await writePattern(h, 3 * PART + 5);
  assert.ok((await pendingUploads(BUCKET, `${PREFIX}/aborted`)).length === 1, 'a multipart upload is under way');
  await h.abort();
  await h.abort(); // twice is fine
  await rejectsWith(b.stat(`${DIR}/aborted`), 'ENOENT');
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/aborted`), []);
  await rejectsWith(h.write(h.bytesWritten, Buffer.from('x')), 'EIO');
  await rejectsWith(h.commit(), 'EIO');

  const small = await b.openWrite(`${DIR}/aborted-small`, { exclusive: false });
  await small.write(0, Buffer.from('never'));
  await small.abort();
  await rejectsWith(b.stat(`${DIR}/aborted-small`), 'ENOENT');
});

test('closing the backend (session end) aborts uploads left open', async () => {
  const env = await s3env();
  const b = createS3Backend({
    credentials: env.admin,
    endpoint: env.endpoint,
    region: env.region,
    forcePathStyle: true,
    sse: { mode: 'AES256' },
    log: silentLogger,
  });
  const open = await b.openWrite(`${DIR}/left-open`, { exclusive: false });
  await writePattern(open, 2 * PART + 5);
  const done = await b.openWrite(`${DIR}/committed`, { exclusive: false });
  await done.write(0, Buffer.from('kept'));
  await done.commit();
  assert.is((await pendingUploads(BUCKET, `${PREFIX}/left-open`)).length, 1);
  await b.close();
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/left-open`), []);
  const check = await backend();
  await rejectsWith(check.stat(`${DIR}/left-open`), 'ENOENT');
  assert.is((await check.stat(`${DIR}/committed`)).size, 4);
});

test('a failed part fails the next write or commit with EIO and aborts the upload', async () => {
  const b = await backend();
  const h = await b.openWrite(`${DIR}/failing`, { exclusive: false });
  await writePattern(h, PART + 10);
  const [pending] = await pendingUploads(BUCKET, `${PREFIX}/failing`);
  assert.ok(pending, 'multipart upload started');
  // Pull the upload out from under the handle: the next UploadPart fails for real (NoSuchUpload).
  await (await admin()).send(
    new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: pending!.key, UploadId: pending!.uploadId }),
  );
  let err: unknown;
  try {
    await writePattern(h, 2 * PART, 5);
    await h.commit();
  } catch (e) {
    err = e;
  }
  const e = err as { code?: string; message?: string };
  assert.is(e?.code, 'EIO', String(e?.message));
  assert.match(e.message!, /part \d+ failed/);
  await h.abort();
  await rejectsWith(b.stat(`${DIR}/failing`), 'ENOENT');
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/failing`), []);
});

test('a finished handle refuses more writes; commit twice and abort after commit are harmless', async () => {
  const b = await backend();
  const h = await b.openWrite(`${DIR}/done`, { exclusive: false });
  await h.write(0, Buffer.from('done'));
  await h.commit();
  await h.commit();
  await h.abort();
  await rejectsWith(h.write(4, Buffer.from('x')), 'EINVAL');
  assert.is((await b.stat(`${DIR}/done`)).size, 4);
});

test('openWrite on a bucket or the root is EISDIR; in a missing bucket ENOENT', async () => {
  const b = await backend();
  await rejectsWith(b.openWrite(`/${BUCKET}`, { exclusive: false }), 'EISDIR');
  await rejectsWith(b.openWrite('/', { exclusive: false }), 'EISDIR');
  await rejectsWith(b.openWrite('/no-such-bucket-s3gw/f', { exclusive: false }), 'ENOENT');
});

test('a known size beyond parts × part size gets larger parts when they fit the memory budget', async () => {
  const b = await backend('least', { maxParts: 4, uploadBudget: 8 * MiB });
  // 4 parts of 5 MiB are too few for 20 MiB + 1: the parts grow to 6 MiB (whole MiB), 7.2 MiB ≤ 8.
  const size = 4 * PART + 1;
  const big = await b.openWrite(`${DIR}/known-big`, { exclusive: false, expectedSize: size });
  const sum = await writePattern(big, size, 31);
  await big.commit();
  const head = await headAsAdmin(BUCKET, `${PREFIX}/known-big`);
  assert.is(head.ContentLength, size);
  assert.match(head.ETag ?? '', /-4"$/, 'four parts of 6 MiB');
  assert.is((await readAll(b, `${DIR}/known-big`, 256 * 1024)).sha256, sum);
});

test('past the part limit an upload continues into segments: exact object, no temporaries left', async () => {
  // Unknown size (SFTP) and known size (SCP, parts that do not fit the 6 MiB budget), 4 parts of 5 MiB.
  for (const [name, size, known] of [
    ['seg-unknown', 13 * PART + 3, false],
    ['seg-known', 9 * PART + 5, true],
  ] as const) {
    const b = await backend('least', { maxParts: 4 });
    const h = await b.openWrite(`${DIR}/${name}`, { exclusive: false, ...(known ? { expectedSize: size } : {}) });
    const sum = await writePattern(h, size, 41);
    await h.commit();
    const head = await headAsAdmin(BUCKET, `${PREFIX}/${name}`);
    assert.is(head.ContentLength, size, name);
    assert.match(head.ETag ?? '', /-[1-4]"$/, `${name}: at most 4 parts in the final object`);
    assert.is(head.ServerSideEncryption, 'AES256');
    assert.is((await readAll(b, `${DIR}/${name}`, 256 * 1024)).sha256, sum, name);
    assert.equal(await keysUnder(BUCKET, `${PREFIX}/${name}`), [`${PREFIX}/${name}`], `${name}: no temporaries`);
    assert.equal(await pendingUploads(BUCKET, `${PREFIX}/${name}`), [], `${name}: no uploads left open`);
  }
});

test('an abort in segment mode removes the final upload, the segments and their temporaries', async () => {
  const b = await backend('least', { maxParts: 2 });
  const h = await b.openWrite(`${DIR}/seg-abort`, { exclusive: false });
  await writePattern(h, 9 * PART, 43);
  await h.abort();
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/seg-abort`), []);
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/seg-abort`), []);
});

test('beyond the object limit or what the parts can reach: known sizes fail at open, unknown at the write', async () => {
  const b = await backend('least', { maxParts: 4 });
  // 4 parts of at most 5 GiB cannot hold 20 GiB + 1, nor can S3 hold more than 5 TiB.
  const msg = await rejectsWith(b.openWrite(`${DIR}/huge`, { exclusive: false, expectedSize: 4 * 5 * 1024 ** 3 + 1 }), 'EINVAL');
  assert.match(msg, /too large/);
  const wide = await backend('least');
  await rejectsWith(wide.openWrite(`${DIR}/huge`, { exclusive: false, expectedSize: 5 * 1024 ** 4 + 1 }), 'EINVAL');
  // A configured limit: the write that passes it fails, and nothing is left behind.
  const capped = await backend('least', { maxObjectSize: 3 * PART });
  await rejectsWith(capped.openWrite(`${DIR}/huge`, { exclusive: false, expectedSize: 3 * PART + 1 }), 'EINVAL');
  const h = await capped.openWrite(`${DIR}/huge2`, { exclusive: false });
  const tooMuch = await rejectsWith(writePattern(h, 3 * PART + 1), 'EINVAL');
  assert.match(tooMuch, /file too large: the limit is 15728640 bytes/);
  await h.abort();
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/huge`), []);
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/huge`), []);
});

// ---- resume: continue and append ------------------------------------------------------------

/** Writes `extra` pattern bytes (seed) at the handle's size; returns the sha256 of old + new. */
async function continueWith(h: WriteHandle, oldSize: number, oldSeed: number, extra: number, seed: number): Promise<string> {
  const hash = createHash('sha256');
  for (const c of pattern(oldSize, oldSeed)) hash.update(c);
  for (const chunk of pattern(extra, seed)) {
    hash.update(chunk);
    for (let at = 0; at < chunk.length; at += 32 * 1024) await h.write(h.size, chunk.subarray(at, Math.min(chunk.length, at + 32 * 1024)));
  }
  return hash.digest('hex');
}

async function existingFile(name: string, size: number, seed: number): Promise<void> {
  const b = await backend('least');
  const h = await b.openWrite(`${DIR}/${name}`, { exclusive: false });
  await writePattern(h, size, seed);
  await h.commit();
}

for (const [label, oldSize, extra] of [
  ['a head under 5 MiB is read back into the first part', 1 * MiB + 7, 3 * MiB],
  ['a head under 5 MiB, new data past a part', 2 * MiB, 9 * MiB + 1],
  ['a head of 5 MiB or more is copied by S3', 12 * MiB + 5, 7 * MiB],
  ['a copied head and one new byte', 6 * MiB, 1],
] as const) {
  test(`continue at the end: ${label}`, async () => {
    const name = `resume-${oldSize}-${extra}`;
    await existingFile(name, oldSize, 51);
    const b = await backend('least');
    const h = await b.openWrite(`${DIR}/${name}`, { exclusive: false, mode: 'continue' });
    assert.is(h.size, oldSize, 'the handle starts at the existing size');
    const sum = await continueWith(h, oldSize, 51, extra, 52);
    assert.is(h.bytesWritten, extra);
    assert.is(h.size, oldSize + extra);
    // Until the commit, readers see the old object.
    assert.is((await headAsAdmin(BUCKET, `${PREFIX}/${name}`)).ContentLength, oldSize);
    await h.commit();
    const back = await readAll(b, `${DIR}/${name}`, 256 * 1024);
    assert.is(back.size, oldSize + extra);
    assert.is(back.sha256, sum);
    assert.equal(await pendingUploads(BUCKET, `${PREFIX}/${name}`), []);
  });
}

test('append: every write goes to the end, whatever its offset', async () => {
  await existingFile('append', 2 * MiB, 61);
  const b = await backend('least');
  const h = await b.openWrite(`${DIR}/append`, { exclusive: false, mode: 'append' });
  const hash = createHash('sha256');
  for (const c of pattern(2 * MiB, 61)) hash.update(c);
  for (const c of pattern(6 * MiB, 62)) {
    hash.update(c);
    await h.write(0, c); // offsets are ignored in append mode
  }
  await h.commit();
  const back = await readAll(b, `${DIR}/append`, 256 * 1024);
  assert.is(back.size, 8 * MiB);
  assert.is(back.sha256, hash.digest('hex'));
});

test('continue: a first write at 0 replaces the file; anywhere else fails and changes nothing', async () => {
  await existingFile('cont-zero', 3 * MiB, 71);
  const b = await backend('least');
  const h = await b.openWrite(`${DIR}/cont-zero`, { exclusive: false, mode: 'continue' });
  const hash = createHash('sha256');
  let first = true;
  for (const c of pattern(MiB, 72)) {
    hash.update(c);
    await h.write(first ? 0 : h.size, c); // the first write at 0: the size starts again from 0
    first = false;
  }
  const sum = hash.digest('hex');
  await h.commit();
  const back = await readAll(b, `${DIR}/cont-zero`);
  assert.is(back.size, MiB);
  assert.is(back.sha256, sum);

  const bad = await b.openWrite(`${DIR}/cont-zero`, { exclusive: false, mode: 'continue' });
  const msg = await rejectsWith(bad.write(100, Buffer.alloc(10)), 'EINVAL');
  assert.match(msg, /must start at 0 \(to replace it\) or at its end, offset 1048576 \(to continue it\); got offset 100/);
  await bad.abort();
  assert.is((await readAll(b, `${DIR}/cont-zero`)).sha256, sum, 'unchanged');
});

test('continue with nothing written leaves the file as it is', async () => {
  await existingFile('cont-none', 2 * MiB + 3, 81);
  const b = await backend('least');
  const before = await headAsAdmin(BUCKET, `${PREFIX}/cont-none`);
  const h = await b.openWrite(`${DIR}/cont-none`, { exclusive: false, mode: 'continue' });
  await h.commit();
  const after = await headAsAdmin(BUCKET, `${PREFIX}/cont-none`);
  assert.is(after.ETag, before.ETag);
  assert.is(after.ContentLength, 2 * MiB + 3);
});

test('continue fails cleanly when the file changed after the open', async () => {
  await existingFile('cont-changed', 6 * MiB, 91);
  const b = await backend('least');
  const h = await b.openWrite(`${DIR}/cont-changed`, { exclusive: false, mode: 'continue' });
  await putAsAdmin(BUCKET, `${PREFIX}/cont-changed`, Buffer.alloc(6 * MiB, 1));
  await h.write(6 * MiB, Buffer.alloc(1000, 2)).catch(() => {});
  const msg = await rejectsWith(h.commit(), 'EIO');
  assert.match(msg, /changed since it was opened/);
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/cont-changed`), []);
  assert.is((await headAsAdmin(BUCKET, `${PREFIX}/cont-changed`)).ContentLength, 6 * MiB);
});

test('commitPartial keeps a new file and a continued one, never replaces an existing file, and obeys discard', async () => {
  const b = await backend('least');
  // A new file: kept as far as it arrived.
  const h1 = await b.openWrite(`${DIR}/partial-new`, { exclusive: false });
  const sum1 = await writePattern(h1, 7 * MiB + 11, 101);
  assert.is(await h1.commitPartial(), true);
  assert.is((await readAll(b, `${DIR}/partial-new`, 256 * 1024)).sha256, sum1);
  // Continued: kept (the old bytes are its start).
  const h2 = await b.openWrite(`${DIR}/partial-new`, { exclusive: false, mode: 'continue' });
  const sum2 = await continueWith(h2, 7 * MiB + 11, 101, 2 * MiB, 102);
  assert.is(await h2.commitPartial(), true);
  assert.is((await readAll(b, `${DIR}/partial-new`, 256 * 1024)).sha256, sum2);
  // Replacing an existing file: discarded, the old file stays.
  const h3 = await b.openWrite(`${DIR}/partial-new`, { exclusive: false });
  await writePattern(h3, 6 * MiB, 103);
  assert.is(await h3.commitPartial(), false);
  assert.is((await readAll(b, `${DIR}/partial-new`, 256 * 1024)).sha256, sum2);
  // The discard setting keeps nothing.
  const d = await backend('least', { partialUploads: 'discard' });
  const h4 = await d.openWrite(`${DIR}/partial-discard`, { exclusive: false });
  await writePattern(h4, MiB, 104);
  assert.is(await h4.commitPartial(), false);
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/partial-`), [`${PREFIX}/partial-new`]);
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/partial-`), []);
});

// ---- integrity: the CRC32 stored with every object --------------------------------------------

function crcOf(...pieces: Array<[number, number]>): string {
  let crc = 0;
  for (const [size, seed] of pieces) for (const c of pattern(size, seed)) crc = zlib.crc32(c, crc) >>> 0;
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc);
  return b.toString('hex');
}

test('every upload stores the whole file CRC32: one part, multipart, segments, and resumed heads', async () => {
  const cases: Array<{ name: string; size: number; opts?: Partial<S3BackendOptions> }> = [
    { name: 'crc-small', size: 1000 },
    { name: 'crc-multi', size: 3 * PART + 17 },
    { name: 'crc-seg', size: 9 * PART + 1, opts: { maxParts: 2 } },
  ];
  for (const c of cases) {
    const b = await backend('least', c.opts ?? {});
    const h = await b.openWrite(`${DIR}/${c.name}`, { exclusive: false });
    await writePattern(h, c.size, 111);
    await h.commit();
    const got = await b.checksum!(`${DIR}/${c.name}`);
    assert.ok(got, `${c.name}: a checksum is stored`);
    assert.is(got!.value.toString('hex'), crcOf([c.size, 111]), c.name);
  }
  // Resumed: a small head read back, and a large head copied (its stored CRC combined with the new bytes').
  for (const [name, oldSize] of [['crc-resume-small', MiB + 3], ['crc-resume-big', 6 * MiB + 5]] as const) {
    await existingFile(name, oldSize, 112);
    const b = await backend('least');
    const h = await b.openWrite(`${DIR}/${name}`, { exclusive: false, mode: 'continue' });
    await continueWith(h, oldSize, 112, 2 * MiB + 1, 113);
    await h.commit();
    const got = await b.checksum!(`${DIR}/${name}`);
    assert.ok(got, `${name}: a checksum is stored`);
    assert.is(got!.value.toString('hex'), crcOf([oldSize, 112], [2 * MiB + 1, 113]), name);
  }
});

test('with the checksum set to none, nothing is stored', async () => {
  const b = await backend('least', { uploadChecksum: 'none' });
  for (const [name, size] of [['nocrc-small', 10], ['nocrc-multi', 2 * PART + 1]] as const) {
    const h = await b.openWrite(`${DIR}/${name}`, { exclusive: false });
    await writePattern(h, size, 114);
    await h.commit();
    assert.is(await b.checksum!(`${DIR}/${name}`), undefined, name);
  }
});

test.run();
