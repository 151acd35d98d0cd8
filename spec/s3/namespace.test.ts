/**
 * The S3 backend's namespace against the real S3: buckets as directories, keys as paths,
 * directories as prefixes and markers, and what S3 cannot do refused with ENOTSUP.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { S_IFDIR, S_IFMT, S_IFREG } from '../../src/backend.js';
import {
  BUCKET,
  OTHER_BUCKET,
  backend,
  closeBackends,
  headAsAdmin,
  listAll,
  names,
  putAsAdmin,
  readAll,
  rejectsWith,
  removePrefix,
  runPrefix,
  s3env,
  writePattern,
  sha256Of,
} from './fixture.js';

const PREFIX = runPrefix('namespace');
const DIR = `/${BUCKET}/${PREFIX}`;

const test = suite('s3 backend: namespace');

test.before(async () => {
  await s3env();
  await putAsAdmin(BUCKET, `${PREFIX}/top.txt`, 'top');
  await putAsAdmin(BUCKET, `${PREFIX}/implied/deep/file.txt`, 'deep');
  await putAsAdmin(BUCKET, `${PREFIX}/marked/`, '');
});

test.after(async () => {
  await closeBackends();
  await removePrefix(BUCKET, PREFIX + '/');
  await removePrefix(OTHER_BUCKET, PREFIX + '/');
});

test('stat / is a directory', async () => {
  const b = await backend();
  const a = await b.stat('/');
  assert.is(a.mode & S_IFMT, S_IFDIR);
});

test('list / shows the buckets', async () => {
  const b = await backend();
  const all = names(await listAll(b, '/'));
  assert.ok(all.includes(BUCKET) && all.includes(OTHER_BUCKET), JSON.stringify(all));
  for (const e of await listAll(b, '/')) assert.is(e.attrs.mode & S_IFMT, S_IFDIR);
});

test('list / is empty, not an error, when ListBuckets is denied', async () => {
  const b = await backend('noRights');
  assert.equal(await listAll(b, '/'), []);
});

test('a bucket is a directory; a missing bucket is ENOENT', async () => {
  const b = await backend();
  assert.is((await b.stat(`/${BUCKET}`)).mode & S_IFMT, S_IFDIR);
  await rejectsWith(b.stat('/no-such-bucket-s3gw'), 'ENOENT');
  await rejectsWith(b.stat('/Not_A_Valid#Bucket'), 'ENOENT');
  await rejectsWith(b.stat('/no-such-bucket-s3gw/x'), 'ENOENT');
});

test('cd into a bucket works even when HeadBucket is denied (listed or not)', async () => {
  // The one-bucket user may not touch other-bucket, and norights nothing at all: the bucket is
  // still a directory they can stat (cd), and listing it is what says EACCES.
  const one = await backend('oneBucket');
  assert.is((await one.stat(`/${OTHER_BUCKET}`)).mode & S_IFMT, S_IFDIR);
  await rejectsWith(listAll(one, `/${OTHER_BUCKET}`), 'EACCES');
  const none = await backend('noRights');
  assert.is((await none.stat(`/${BUCKET}`)).mode & S_IFMT, S_IFDIR);
});

test('stat of a file reports size and LastModified, mode S_IFREG', async () => {
  const b = await backend();
  const a = await b.stat(`${DIR}/top.txt`);
  assert.is(a.mode & S_IFMT, S_IFREG);
  assert.is(a.size, 3);
  const head = await headAsAdmin(BUCKET, `${PREFIX}/top.txt`);
  assert.is(a.mtime, Math.floor(head.LastModified!.getTime() / 1000));
});

test('stat of an implied directory and of a marker directory', async () => {
  const b = await backend();
  assert.is((await b.stat(`${DIR}/implied`)).mode & S_IFMT, S_IFDIR);
  assert.is((await b.stat(`${DIR}/implied/deep`)).mode & S_IFMT, S_IFDIR);
  assert.is((await b.stat(`${DIR}/marked`)).mode & S_IFMT, S_IFDIR);
  await rejectsWith(b.stat(`${DIR}/absent`), 'ENOENT');
  await rejectsWith(b.stat(`${DIR}/implied/dee`), 'ENOENT');
});

test('list shows files and directories, not the marker itself', async () => {
  const b = await backend();
  const entries = await listAll(b, DIR);
  assert.equal(names(entries), ['implied', 'marked', 'top.txt']);
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.is(byName.get('implied')!.attrs.mode & S_IFMT, S_IFDIR);
  assert.is(byName.get('top.txt')!.attrs.mode & S_IFMT, S_IFREG);
  assert.is(byName.get('top.txt')!.attrs.size, 3);
  assert.equal(await listAll(b, `${DIR}/marked`), []);
  assert.equal(names(await listAll(b, `${DIR}/implied`)), ['deep']);
});

test('list of a missing directory is ENOENT, of a file ENOTDIR', async () => {
  const b = await backend();
  await rejectsWith(listAll(b, `${DIR}/absent`), 'ENOENT');
  await rejectsWith(listAll(b, `${DIR}/top.txt`), 'ENOTDIR');
  await rejectsWith(listAll(b, '/no-such-bucket-s3gw'), 'ENOENT');
});

test('names with spaces, plus signs, percent signs and non-ASCII round-trip through list', async () => {
  const b = await backend();
  const weird = ['a b.txt', 'plus+sign', '100%', 'ünïcødé ☃', 'emoji 😀', 'tab\u00a0nbsp'];
  for (const n of weird) {
    const h = await b.openWrite(`${DIR}/weird/${n}`, { exclusive: false });
    await h.write(0, Buffer.from(n));
    await h.commit();
  }
  assert.equal(names(await listAll(b, `${DIR}/weird`)), weird.slice().sort());
  for (const n of weird) assert.is((await b.stat(`${DIR}/weird/${n}`)).size, Buffer.byteLength(n));
});

test('a key readable only with url encoding (control character) still lists', async () => {
  await putAsAdmin(BUCKET, `${PREFIX}/ctl/bell\u0007name`, 'x');
  const b = await backend();
  assert.equal(names(await listAll(b, `${DIR}/ctl`)), ['bell\u0007name']);
});

test('mkdir creates an encrypted marker; EEXIST on a file or directory', async () => {
  const b = await backend();
  await b.mkdir(`${DIR}/newdir`);
  const head = await headAsAdmin(BUCKET, `${PREFIX}/newdir/`);
  assert.is(head.ContentLength, 0);
  assert.is(head.ServerSideEncryption, 'AES256');
  assert.is((await b.stat(`${DIR}/newdir`)).mode & S_IFMT, S_IFDIR);
  await rejectsWith(b.mkdir(`${DIR}/newdir`), 'EEXIST');
  await rejectsWith(b.mkdir(`${DIR}/implied`), 'EEXIST');
  await rejectsWith(b.mkdir(`${DIR}/top.txt`), 'EEXIST');
  await rejectsWith(b.mkdir(`/${BUCKET}`), 'EEXIST');
  await rejectsWith(b.mkdir('/s3gw-new-bucket'), 'ENOTSUP');
  await rejectsWith(b.mkdir('/'), 'EEXIST');
});

test('rmdir removes an empty directory only', async () => {
  const b = await backend();
  await b.mkdir(`${DIR}/rm-me`);
  await b.rmdir(`${DIR}/rm-me`);
  await rejectsWith(b.stat(`${DIR}/rm-me`), 'ENOENT');
  await rejectsWith(b.rmdir(`${DIR}/implied`), 'ENOTEMPTY');
  await b.mkdir(`${DIR}/full`);
  await putAsAdmin(BUCKET, `${PREFIX}/full/x`, 'x');
  await rejectsWith(b.rmdir(`${DIR}/full`), 'ENOTEMPTY');
  await rejectsWith(b.rmdir(`${DIR}/absent`), 'ENOENT');
  await rejectsWith(b.rmdir(`${DIR}/top.txt`), 'ENOTDIR');
  const msg = await rejectsWith(b.rmdir(`/${BUCKET}`), 'ENOTSUP');
  assert.match(msg, /deleting a bucket is not supported/);
});

test('remove deletes a file; ENOENT for nothing, EISDIR for a directory, ENOTSUP for a bucket', async () => {
  const b = await backend();
  await putAsAdmin(BUCKET, `${PREFIX}/del.txt`, 'x');
  await b.remove(`${DIR}/del.txt`);
  await rejectsWith(b.stat(`${DIR}/del.txt`), 'ENOENT');
  await rejectsWith(b.remove(`${DIR}/del.txt`), 'ENOENT');
  await rejectsWith(b.remove(`${DIR}/implied`), 'EISDIR');
  await rejectsWith(b.remove(`/${BUCKET}`), 'ENOTSUP');
});

test('rename a file within a bucket keeps data, metadata and SSE', async () => {
  const b = await backend();
  const h = await b.openWrite(`${DIR}/mv-src`, { exclusive: false, mtime: 1_600_000_000 });
  const sum = await writePattern(h, 100_000, 7);
  await h.commit();
  await b.rename(`${DIR}/mv-src`, `${DIR}/mv-dst`, false);
  await rejectsWith(b.stat(`${DIR}/mv-src`), 'ENOENT');
  const a = await b.stat(`${DIR}/mv-dst`);
  assert.is(a.size, 100_000);
  assert.is(a.mtime, 1_600_000_000);
  assert.is((await readAll(b, `${DIR}/mv-dst`)).sha256, sum);
  assert.is((await headAsAdmin(BUCKET, `${PREFIX}/mv-dst`)).ServerSideEncryption, 'AES256');
});

test('rename onto an existing file: EEXIST without overwrite, replaced with it', async () => {
  const b = await backend();
  await putAsAdmin(BUCKET, `${PREFIX}/r1`, 'one');
  await putAsAdmin(BUCKET, `${PREFIX}/r2`, 'two');
  await rejectsWith(b.rename(`${DIR}/r1`, `${DIR}/r2`, false), 'EEXIST');
  assert.is((await b.stat(`${DIR}/r1`)).size, 3);
  await b.rename(`${DIR}/r1`, `${DIR}/r2`, true);
  await rejectsWith(b.stat(`${DIR}/r1`), 'ENOENT');
  const back = await b.openRead(`${DIR}/r2`);
  assert.is((await back.read(0, 10)).toString(), 'one');
  await back.close();
  await rejectsWith(b.rename(`${DIR}/r2`, `${DIR}/implied`, true), 'EISDIR');
  await b.rename(`${DIR}/r2`, `${DIR}/r2`, false); // onto itself: nothing to do
  assert.is((await b.stat(`${DIR}/r2`)).size, 3);
});

test('rename across buckets', async () => {
  const b = await backend();
  await putAsAdmin(BUCKET, `${PREFIX}/cross`, 'cross');
  await b.rename(`${DIR}/cross`, `/${OTHER_BUCKET}/${PREFIX}/cross`, false);
  await rejectsWith(b.stat(`${DIR}/cross`), 'ENOENT');
  assert.is((await b.stat(`/${OTHER_BUCKET}/${PREFIX}/cross`)).size, 5);
});

test('renaming a directory or a bucket is refused and says why', async () => {
  const b = await backend();
  const dirMsg = await rejectsWith(b.rename(`${DIR}/implied`, `${DIR}/implied2`, false), 'ENOTSUP');
  assert.match(dirMsg, /S3 has no directories/);
  const bucketMsg = await rejectsWith(b.rename(`/${BUCKET}`, '/renamed-bucket', false), 'ENOTSUP');
  assert.match(bucketMsg, /renaming a bucket/);
  await rejectsWith(b.rename(`${DIR}/absent`, `${DIR}/x`, false), 'ENOENT');
});

test('rename of a large file uses multipart UploadPartCopy (lowered threshold)', async () => {
  const b = await backend('least', { copyThreshold: 6 * 1024 * 1024, copyPartSize: 5 * 1024 * 1024 });
  const size = 12 * 1024 * 1024 + 333; // three copy parts
  const h = await b.openWrite(`${DIR}/big-src`, { exclusive: false, mtime: 1_500_000_000 });
  await writePattern(h, size, 3, 256 * 1024);
  await h.commit();
  await b.rename(`${DIR}/big-src`, `${DIR}/big-dst`, false);
  const head = await headAsAdmin(BUCKET, `${PREFIX}/big-dst`);
  assert.match(head.ETag ?? '', /-3"$/, 'a three-part multipart copy');
  assert.is(head.ServerSideEncryption, 'AES256');
  assert.is(head.Metadata?.['mtime'], '1500000000');
  assert.is((await readAll(b, `${DIR}/big-dst`, 256 * 1024)).sha256, sha256Of(size, 3));
  await rejectsWith(b.stat(`${DIR}/big-src`), 'ENOENT');
});

test('setstat stores mtime as x-amz-meta-mtime, keeps SSE, and only when it changes', async () => {
  const b = await backend();
  const h = await b.openWrite(`${DIR}/mt`, { exclusive: false });
  await h.write(0, Buffer.from('mtime'));
  await h.commit();
  await b.setstat(`${DIR}/mt`, { mtime: 1_234_567_890 });
  assert.is((await b.stat(`${DIR}/mt`)).mtime, 1_234_567_890);
  const head = await headAsAdmin(BUCKET, `${PREFIX}/mt`);
  assert.is(head.Metadata?.['mtime'], '1234567890');
  assert.is(head.ServerSideEncryption, 'AES256');
  // Same mtime again: no copy, so the ETag and LastModified stay.
  await b.setstat(`${DIR}/mt`, { mtime: 1_234_567_890 });
  const again = await headAsAdmin(BUCKET, `${PREFIX}/mt`);
  assert.is(again.LastModified?.getTime(), head.LastModified?.getTime());
  // Other attributes are accepted without effect, on files, directories and buckets.
  await b.setstat(`${DIR}/mt`, { mode: 0o600, atime: 5 });
  await b.setstat(`${DIR}/implied`, { mtime: 5 });
  await b.setstat(`/${BUCKET}`, { mtime: 5 });
  await rejectsWith(b.setstat(`${DIR}/absent`, { mtime: 5 }), 'ENOENT');
  assert.is((await readAll(b, `${DIR}/mt`)).size, 5);
});

test('statfs reports fixed large numbers', async () => {
  const b = await backend();
  const s = await b.statfs(DIR);
  assert.ok(s.freeBlocks * s.blockSize >= 2 ** 50);
  assert.is(s.nameMax, 1024);
});

test('names S3 cannot hold are EINVAL with a clear message', async () => {
  const b = await backend();
  const long = 'x'.repeat(1025);
  const msg = await rejectsWith(b.openWrite(`${DIR}/${long}`, { exclusive: false }), 'EINVAL');
  assert.match(msg, /1024 bytes/);
  await rejectsWith(b.mkdir(`${DIR}/${'é'.repeat(512)}`), 'EINVAL'); // 1024 bytes + the marker's "/"
  await rejectsWith(b.stat(`${DIR}/${long}`), 'EINVAL');
  await rejectsWith(b.openWrite(`${DIR}/new\nline`, { exclusive: false }), 'EINVAL');
  await rejectsWith(b.rename(`${DIR}/top.txt`, `${DIR}/${long}`, false), 'EINVAL');
});

test('paths that are not normalised are refused', async () => {
  const b = await backend();
  for (const p of ['relative', `${DIR}/../x`, `${DIR}/./x`, `${DIR}//x`, `${DIR}/`, `${DIR}/a\0b`, '']) {
    await rejectsWith(b.stat(p), 'EINVAL');
  }
  await rejectsWith(listAll(b, `${DIR}/../x`), 'EINVAL');
});

test.run();
