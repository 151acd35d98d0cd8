/** Path ↔ bucket/key mapping: normalised paths only, S3's key limits, copy-source encoding. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError } from '../../src/backend.js';
import { checkNewKey, copySource, dirPrefix, isPlausibleBucket, parsePath } from '../../src/s3/paths.js';

const test = suite('s3 paths');

function einval(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, BackendError);
    assert.is((err as BackendError).code, 'EINVAL');
    return (err as BackendError).message;
  }
  throw new Error('expected EINVAL');
}

test('root, bucket and object paths', () => {
  assert.equal(parsePath('/'), { kind: 'root' });
  assert.equal(parsePath('/b'), { kind: 'bucket', bucket: 'b' });
  assert.equal(parsePath('/b/a/b/file'), { kind: 'object', bucket: 'b', key: 'a/b/file' });
  assert.equal(parsePath('/b/ünï cødé/😀'), { kind: 'object', bucket: 'b', key: 'ünï cødé/😀' });
});

test('paths that are not normalised, relative, or hold NUL or lone surrogates are EINVAL', () => {
  for (const p of ['', 'b/k', '/b/', '//b', '/b//k', '/b/./k', '/b/../k', '/b/k/..', '/.', '/b/k\0', '/b/\ud800x']) {
    einval(() => parsePath(p));
  }
});

test('new keys: 1024 bytes of UTF-8 at most, the marker slash counted; no control characters', () => {
  checkNewKey('x'.repeat(1024));
  assert.match(einval(() => checkNewKey('x'.repeat(1025))), /1024 bytes/);
  checkNewKey('é'.repeat(511) + 'x', true); // 1023 bytes + "/"
  einval(() => checkNewKey('é'.repeat(512), true));
  einval(() => checkNewKey('a\nb'));
  einval(() => checkNewKey('a\u007fb'));
  checkNewKey('tab\u00a0and space ok');
});

test('bucket names: today’s and legacy forms are plausible, others cannot exist', () => {
  for (const b of ['example-bucket', 'a.b.c', 'Legacy_Bucket', 'x']) assert.ok(isPlausibleBucket(b), b);
  for (const b of ['has space', 'a#b', 'ü', 'x'.repeat(256)]) assert.not.ok(isPlausibleBucket(b), b);
});

test('directory prefixes and copy sources', () => {
  assert.is(dirPrefix(undefined), '');
  assert.is(dirPrefix('a/b'), 'a/b/');
  assert.is(copySource('bkt', 'a b/c+d/é?#%'), 'bkt/a%20b/c%2Bd/%C3%A9%3F%23%25');
});

test.run();
