/**
 * Ranged downloads against the real S3: sequential and random reads return the exact bytes, EOF is
 * an empty buffer, and a file replaced during a download fails instead of mixing versions.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Backend } from '../../src/backend.js';
import {
  BUCKET,
  MiB,
  backend,
  closeBackends,
  countingFactory,
  pattern,
  putAsAdmin,
  readAll,
  rejectsWith,
  removePrefix,
  runPrefix,
  s3env,
  sha256Of,
  writePattern,
} from './fixture.js';

const PREFIX = runPrefix('download');
const DIR = `/${BUCKET}/${PREFIX}`;
const SIZE = 21 * MiB + 12345; // several read windows
const SEED = 11;
let expected: Buffer;

const test = suite('s3 backend: downloads');

async function upload(b: Backend, path: string, size: number, seed: number): Promise<void> {
  const h = await b.openWrite(path, { exclusive: false });
  await writePattern(h, size, seed, 256 * 1024);
  await h.commit();
}

test.before(async () => {
  await s3env();
  const b = await backend();
  await upload(b, `${DIR}/data`, SIZE, SEED);
  expected = Buffer.concat([...pattern(SIZE, SEED)]);
});

test.after(async () => {
  await closeBackends();
  await removePrefix(BUCKET, PREFIX + '/');
});

test('sequential reads of several sizes return the whole file', async () => {
  const b = await backend();
  for (const readSize of [32 * 1024, 255 * 1024 + 7, 4 * MiB]) {
    const r = await readAll(b, `${DIR}/data`, readSize);
    assert.is(r.size, SIZE);
    assert.is(r.sha256, sha256Of(SIZE, SEED), `read size ${readSize}`);
  }
});

test('a sequential download uses a few growing ranged GETs, not one per read', async () => {
  const { factory, counts } = countingFactory();
  const b = await backend('least', { clientFactory: factory });
  const r = await readAll(b, `${DIR}/data`, 32 * 1024);
  assert.is(r.sha256, sha256Of(SIZE, SEED));
  // 256 KiB, 512 KiB, 1, 2, 4, 8, 16 MiB … : about log2(size / 256 KiB) ranges.
  const gets = counts.get('GetObjectCommand') ?? 0;
  assert.ok(gets >= 2 && gets <= 9, `${gets} GETs for ${SIZE} bytes in 32 KiB reads`);
  assert.is(counts.get('HeadObjectCommand'), 1);
});

test('readv answers with views of the received chunks: the bytes of read, in pieces where a read spans chunks', async () => {
  const b = await backend();
  const h = await b.openRead(`${DIR}/data`);
  assert.ok(h.readv, 'the S3 handle offers readv');
  let pieces = 0;
  for (let off = 0; off < SIZE; off += 32 * 1024) {
    const views = await h.readv!(off, 32 * 1024);
    pieces += views.length;
    const got = Buffer.concat(views);
    assert.ok(got.equals(expected.subarray(off, off + 32 * 1024)), `bytes at ${off}`);
  }
  assert.ok(pieces > Math.ceil(SIZE / (32 * 1024)), 'some reads span two chunks and come in two views');
  assert.equal(await h.readv!(SIZE, 10), []);
  await h.close();
});

test('random reads, backwards reads and reads across window edges are exact', async () => {
  const b = await backend('least', { readAhead: 64 * 1024, readWindow: 256 * 1024 });
  const h = await b.openRead(`${DIR}/data`);
  assert.is(h.size, SIZE);
  const probes: Array<[number, number]> = [
    [SIZE - 100, 100],
    [0, 10],
    [5 * MiB - 3, 7],
    [256 * 1024 - 1, 300 * 1024],
    [12 * MiB, 1],
    [12 * MiB + 1, 65536],
    [1, 2 * MiB],
    [SIZE - 1, 1],
  ];
  let x = 7;
  for (let i = 0; i < 30; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    probes.push([x % SIZE, (x >>> 8) % (512 * 1024)]);
  }
  for (const [off, len] of probes) {
    const got = await h.read(off, len);
    const want = expected.subarray(off, Math.min(SIZE, off + len));
    assert.is(got.length, want.length, `length at ${off}+${len}`);
    assert.ok(got.equals(want), `bytes at ${off}+${len}`);
  }
  await h.close();
});

test('reads at and past the end give an empty buffer; a short tail is returned short', async () => {
  const b = await backend();
  const h = await b.openRead(`${DIR}/data`);
  assert.is((await h.read(SIZE, 10)).length, 0);
  assert.is((await h.read(SIZE + 1000, 10)).length, 0);
  assert.is((await h.read(SIZE - 5, 100)).length, 5);
  assert.is((await h.read(0, 0)).length, 0);
  await h.close();
});

test('an empty file reads as EOF at once', async () => {
  const b = await backend();
  await upload(b, `${DIR}/empty`, 0, 1);
  const h = await b.openRead(`${DIR}/empty`);
  assert.is(h.size, 0);
  assert.is((await h.read(0, 32768)).length, 0);
  await h.close();
});

test('close ends the handle; reads after it are refused', async () => {
  const b = await backend();
  const h = await b.openRead(`${DIR}/data`);
  assert.is((await h.read(0, 1000)).length, 1000);
  await h.close();
  await h.close();
  await rejectsWith(h.read(1000, 10), 'EINVAL');
});

test('a file replaced during a download fails with EIO instead of mixing versions', async () => {
  const b = await backend('least', { readAhead: 64 * 1024, readWindow: 256 * 1024 });
  await upload(b, `${DIR}/changing`, 2 * MiB, 5);
  const h = await b.openRead(`${DIR}/changing`);
  assert.is((await h.read(0, 1000)).length, 1000);
  await putAsAdmin(BUCKET, `${PREFIX}/changing`, Buffer.alloc(2 * MiB, 1));
  const msg = await rejectsWith(h.read(MiB + 17, 1000), 'EIO');
  assert.match(msg, /changed/);
  await h.close();
});

test('openRead of a directory, a bucket or nothing', async () => {
  const b = await backend();
  await rejectsWith(b.openRead(DIR), 'EISDIR');
  await rejectsWith(b.openRead(`/${BUCKET}`), 'EISDIR');
  await rejectsWith(b.openRead('/'), 'EISDIR');
  await rejectsWith(b.openRead(`${DIR}/absent`), 'ENOENT');
  await rejectsWith(b.openRead('/no-such-bucket-s3gw/x'), 'ENOENT');
});

test.run();
