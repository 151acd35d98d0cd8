/**
 * WinSCP's `name.filepart` flow against the real S3: an upload of `name.filepart` for a new
 * `name` is made at `name` and parked at CLOSE, so the RENAME that follows is free (no
 * CopyObject or UploadPartCopy is sent); anything else materializes it at `name.filepart`. Only
 * for sessions set to park (the gateway does it for WinSCP's version string).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BUCKET,
  MiB,
  backend,
  closeBackends,
  countingFactory,
  keysUnder,
  names,
  listAll,
  pendingUploads,
  putAsAdmin,
  readAll,
  rejectsWith,
  removePrefix,
  runPrefix,
  s3env,
  writePattern,
} from './fixture.js';

const PREFIX = runPrefix('filepart');
const DIR = `/${BUCKET}/${PREFIX}`;

const test = suite('s3 backend: WinSCP .filepart uploads');

test.before(async () => {
  await s3env();
});

test.after(async () => {
  await closeBackends();
  await removePrefix(BUCKET, PREFIX + '/');
});

const copies = (counts: Map<string, number>) =>
  (counts.get('CopyObjectCommand') ?? 0) + (counts.get('UploadPartCopyCommand') ?? 0);

for (const size of [300 * 1024, 12 * MiB + 5]) {
  test(`${size} bytes: CLOSE, STAT, REMOVE of the target, RENAME: no copy, exact file, nothing else left`, async () => {
    const { factory, counts } = countingFactory();
    const b = await backend('least', { clientFactory: factory, parkFileparts: true });
    const name = `flow-${size}`;
    const h = await b.openWrite(`${DIR}/${name}.filepart`, { exclusive: false });
    const sum = await writePattern(h, size, 7);
    await h.commit();
    // Parked: the .filepart answers STAT, and nothing is visible in S3 yet.
    assert.is((await b.stat(`${DIR}/${name}.filepart`)).size, size);
    assert.equal(await keysUnder(BUCKET, `${PREFIX}/${name}`), []);
    await rejectsWith(b.remove(`${DIR}/${name}`), 'ENOENT'); // WinSCP removes the target if it exists
    await b.rename(`${DIR}/${name}.filepart`, `${DIR}/${name}`, false);
    assert.is(copies(counts), 0, 'the rename copied nothing');
    assert.equal(await keysUnder(BUCKET, `${PREFIX}/${name}`), [`${PREFIX}/${name}`]);
    assert.is((await readAll(b, `${DIR}/${name}`, 256 * 1024)).sha256, sum);
    assert.equal(await pendingUploads(BUCKET, `${PREFIX}/${name}`), []);
  });
}

test('another operation materializes a parked upload at name.filepart (multipart: one copy)', async () => {
  const b = await backend('least', { parkFileparts: true });
  const h = await b.openWrite(`${DIR}/other.bin.filepart`, { exclusive: false });
  const sum = await writePattern(h, 11 * MiB, 8);
  await h.commit();
  const listed = names(await listAll(b, DIR));
  assert.ok(listed.includes('other.bin.filepart'), `listed: ${listed.join(', ')}`);
  assert.ok(!listed.includes('other.bin'));
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/other.bin`), [`${PREFIX}/other.bin.filepart`]);
  assert.is((await readAll(b, `${DIR}/other.bin.filepart`, 256 * 1024)).sha256, sum);
});

test('the end of the session materializes a parked upload; a REMOVE of the .filepart discards it', async () => {
  const b = await backend('least', { parkFileparts: true });
  const h = await b.openWrite(`${DIR}/end.bin.filepart`, { exclusive: false });
  const sum = await writePattern(h, 6 * MiB, 9);
  await h.commit();
  await b.close();
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/end.bin`), [`${PREFIX}/end.bin.filepart`]);
  const c = await backend('least', { parkFileparts: true });
  assert.is((await readAll(c, `${DIR}/end.bin.filepart`, 256 * 1024)).sha256, sum);

  const d = await c.openWrite(`${DIR}/gone.bin.filepart`, { exclusive: false });
  await writePattern(d, 6 * MiB, 10);
  await d.commit();
  await c.remove(`${DIR}/gone.bin.filepart`);
  await rejectsWith(c.stat(`${DIR}/gone.bin.filepart`), 'ENOENT');
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/gone.bin`), []);
  assert.equal(await pendingUploads(BUCKET, `${PREFIX}/gone.bin`), []);
});

test('a target that exists at OPEN makes an ordinary upload: the rename copies', async () => {
  const { factory, counts } = countingFactory();
  const b = await backend('least', { clientFactory: factory, parkFileparts: true });
  await putAsAdmin(BUCKET, `${PREFIX}/exists.bin`, 'old');
  const h = await b.openWrite(`${DIR}/exists.bin.filepart`, { exclusive: false });
  const sum = await writePattern(h, 6 * MiB, 11);
  await h.commit();
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/exists.bin`), [`${PREFIX}/exists.bin`, `${PREFIX}/exists.bin.filepart`]);
  await b.remove(`${DIR}/exists.bin`);
  await b.rename(`${DIR}/exists.bin.filepart`, `${DIR}/exists.bin`, false);
  assert.ok(copies(counts) > 0);
  assert.is((await readAll(b, `${DIR}/exists.bin`, 256 * 1024)).sha256, sum);
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/exists.bin`), [`${PREFIX}/exists.bin`]);
});

test('a rename onto a target created meanwhile fails with EEXIST and keeps the .filepart', async () => {
  const b = await backend('least', { parkFileparts: true });
  const h = await b.openWrite(`${DIR}/race.bin.filepart`, { exclusive: false });
  const sum = await writePattern(h, 100 * 1024, 12);
  await h.commit();
  await putAsAdmin(BUCKET, `${PREFIX}/race.bin`, 'someone else');
  await rejectsWith(b.rename(`${DIR}/race.bin.filepart`, `${DIR}/race.bin`, false), 'EEXIST');
  assert.is((await readAll(b, `${DIR}/race.bin.filepart`)).sha256, sum);
  assert.is((await readAll(b, `${DIR}/race.bin`)).size, 'someone else'.length);
});

test('without parkFileparts a .filepart is an ordinary upload', async () => {
  const { factory, counts } = countingFactory();
  const b = await backend('least', { clientFactory: factory });
  const h = await b.openWrite(`${DIR}/plain.bin.filepart`, { exclusive: false });
  const sum = await writePattern(h, 6 * MiB, 13);
  await h.commit();
  assert.equal(await keysUnder(BUCKET, `${PREFIX}/plain.bin`), [`${PREFIX}/plain.bin.filepart`]);
  await b.rename(`${DIR}/plain.bin.filepart`, `${DIR}/plain.bin`, false);
  assert.ok(copies(counts) > 0);
  assert.is((await readAll(b, `${DIR}/plain.bin`, 256 * 1024)).sha256, sum);
});

test.run();
