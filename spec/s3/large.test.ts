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
import { suite } from 'uvu';
import { MANY, MANY_PREFIX, ensureManyObjects, manyName } from '../helpers/many-objects.js';
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

async function makeMany(): Promise<void> {
  const env = await s3env();
  const t0 = Date.now();
  if (await ensureManyObjects(await admin(), BUCKET)) {
    console.log(`    made ${MANY} objects in ${Date.now() - t0} ms (${env.endpoint})`);
  }
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
