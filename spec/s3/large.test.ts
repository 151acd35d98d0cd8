/**
 * The large cases: a 200 MiB file streamed up and down (never held in test memory), and a
 * directory of 100,000 objects listed completely, page by page.
 *
 * The 100,000 objects are made once and kept under a fixed prefix, with a marker object written
 * only when all of them exist, so later runs against the same MinIO reuse them. On MinIO they are
 * made with one PutObject of a tar with snowball auto-extract (MinIO unpacks it into objects
 * server-side, ~1,600 objects/s here, against ~1,000/s for 64 parallel PutObjects); on another
 * endpoint (S3GW_S3_EXTERNAL=1) with parallel PutObjects of empty bodies.
 */
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { S_IFMT, S_IFREG } from '../../src/backend.js';
import {
  BUCKET,
  MiB,
  admin,
  backend,
  closeBackends,
  headAsAdmin,
  readAll,
  removePrefix,
  runPrefix,
  s3env,
  sha256Of,
  writePattern,
} from './fixture.js';

const PREFIX = runPrefix('large');
const DIR = `/${BUCKET}/${PREFIX}`;

const MANY = 100_000;
const MANY_PREFIX = 's3gw-spec-fixtures/100k';
const MANY_DONE = 's3gw-spec-fixtures/100k.complete';

const test = suite('s3 backend: large files and directories');

test.before(async () => {
  await s3env();
});

test.after(async () => {
  await closeBackends();
  await removePrefix(BUCKET, PREFIX + '/');
});

test('200 MiB streams up and down with the same sha256', async () => {
  const size = 200 * MiB;
  const b = await backend();
  const t0 = Date.now();
  const h = await b.openWrite(`${DIR}/200mib`, { exclusive: false });
  const sum = await writePattern(h, size, 42, 32 * 1024);
  await h.commit();
  const t1 = Date.now();
  const head = await headAsAdmin(BUCKET, `${PREFIX}/200mib`);
  assert.is(head.ContentLength, size);
  assert.is(head.ServerSideEncryption, 'AES256');
  assert.match(head.ETag ?? '', /-40"$/, '40 parts of 5 MiB');
  const back = await readAll(b, `${DIR}/200mib`, 32 * 1024);
  const t2 = Date.now();
  assert.is(back.size, size);
  assert.is(back.sha256, sum);
  assert.is(sum, sha256Of(size, 42));
  console.log(`    200 MiB: upload ${t1 - t0} ms, download ${t2 - t1} ms (32 KiB writes and reads)`);
});

/** A ustar header for an empty regular file. */
function tarHeader(name: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write('00000000000\0', 124); // size 0
  h.write('14000000000\0', 136); // mtime
  h.fill(' ', 148, 156);
  h.write('0', 156); // regular file
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

const manyName = (i: number) => `f${String(i).padStart(6, '0')}`;

async function makeMany(): Promise<void> {
  const c = await admin();
  const env = await s3env();
  try {
    await c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: MANY_DONE }));
    return; // made by an earlier run
  } catch {
    // not there yet
  }
  const t0 = Date.now();
  if (process.env.S3GW_S3_EXTERNAL !== '1') {
    function* tar(): Generator<Buffer> {
      let batch: Buffer[] = [];
      for (let i = 0; i < MANY; i++) {
        batch.push(tarHeader(`${MANY_PREFIX}/${manyName(i)}`));
        if (batch.length === 512) {
          yield Buffer.concat(batch);
          batch = [];
        }
      }
      if (batch.length) yield Buffer.concat(batch);
      yield Buffer.alloc(1024); // end of archive
    }
    await c.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 's3gw-spec-fixtures/100k.tar',
        Body: Readable.from(tar()),
        ContentLength: 512 * MANY + 1024,
        Metadata: { 'snowball-auto-extract': 'true' },
      }),
    );
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < MANY) {
          const i = next++;
          await c.send(
            new PutObjectCommand({ Bucket: BUCKET, Key: `${MANY_PREFIX}/${manyName(i)}`, Body: '', ContentLength: 0 }),
          );
        }
      }),
    );
  }
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: MANY_DONE, Body: '', ContentLength: 0 }));
  console.log(`    made ${MANY} objects in ${Date.now() - t0} ms (${env.endpoint})`);
}

test('a directory of 100,000 objects lists completely, in pages, in key order', async () => {
  await makeMany();
  const b = await backend();
  const t0 = Date.now();
  let count = 0;
  let pages = 0;
  let firstPageMs = -1;
  let prev = '';
  for await (const page of b.list(`/${BUCKET}/${MANY_PREFIX}`)) {
    if (firstPageMs < 0) firstPageMs = Date.now() - t0;
    pages++;
    assert.ok(page.length <= 1000, 'a page holds at most 1000 entries');
    for (const e of page) {
      assert.ok(e.name > prev, `order: ${prev} then ${e.name}`);
      assert.is(e.name, manyName(count));
      assert.is(e.attrs.mode & S_IFMT, S_IFREG);
      prev = e.name;
      count++;
    }
  }
  assert.is(count, MANY);
  assert.is(pages, MANY / 1000);
  console.log(`    listed ${count} entries in ${pages} pages: first page ${firstPageMs} ms, all ${Date.now() - t0} ms`);
});

test('a listing abandoned after the first page stops fetching', async () => {
  await makeMany();
  const b = await backend();
  for await (const page of b.list(`/${BUCKET}/${MANY_PREFIX}`)) {
    assert.is(page.length, 1000);
    break;
  }
});

test.run();
