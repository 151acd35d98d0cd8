/**
 * S3 failures → BackendError codes and messages. The shapes are those the AWS SDK v3 throws (the
 * last test takes real ones from the S3 server); messages never carry the caller's secrets.
 */
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError } from '../../src/backend.js';
import { classify, isTransient, scrub, toBackendError } from '../../src/s3/errors.js';
import { BUCKET, admin } from './fixture.js';

const test = suite('s3 error mapping');

const sdkError = (name: string, status?: number, message = 'm') =>
  Object.assign(new Error(message), { name, ...(status ? { $metadata: { httpStatusCode: status } } : {}) });

test('not found: NoSuchKey, NotFound, NoSuchBucket, any 404', () => {
  for (const e of [sdkError('NoSuchKey', 404), sdkError('NotFound', 404), sdkError('NoSuchBucket', 404), sdkError('Unknown', 404)]) {
    assert.is(classify(e), 'ENOENT');
  }
  assert.match(toBackendError(sdkError('NoSuchBucket', 404), 'stat /b/k').message, /^stat \/b\/k: no such bucket$/);
});

test('denied: AccessDenied, any 403, InvalidAccessKeyId, SignatureDoesNotMatch, expired tokens', () => {
  for (const n of ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'AllAccessDisabled']) {
    assert.is(classify(sdkError(n, 403)), 'EACCES', n);
  }
  assert.is(classify(sdkError('Unknown', 403)), 'EACCES');
  assert.match(toBackendError(sdkError('ExpiredToken', 400), 'x').message, /expired/);
});

test('bad names are EINVAL, NotImplemented ENOTSUP, the rest EIO with the store’s code', () => {
  assert.is(classify(sdkError('KeyTooLongError', 400)), 'EINVAL');
  assert.is(classify(sdkError('InvalidBucketName', 400)), 'EINVAL');
  assert.is(classify(sdkError('NotImplemented', 501)), 'ENOTSUP');
  const e = toBackendError(sdkError('InternalError', 500, 'We encountered an internal error'), 'read /b/k');
  assert.is(e.code, 'EIO');
  assert.is(e.message, 'read /b/k: the store failed: InternalError: We encountered an internal error');
  const net = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
  assert.is(toBackendError(net, 'stat /b').message, 'stat /b: cannot reach the store (ECONNREFUSED)');
});

test('a BackendError passes through unchanged', () => {
  const e = new BackendError('ENOTEMPTY', 'x');
  assert.is(toBackendError(e, 'y'), e);
});

test('secrets are scrubbed from anything the store says, and long texts are cut', () => {
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  const e = toBackendError(sdkError('InternalError', 500, `oops ${secret} oops`), 'x', [secret]);
  assert.not.ok(e.message.includes(secret));
  assert.match(e.message, /\[redacted\]/);
  assert.ok(scrub('y'.repeat(1000), []).length < 400);
});

test('transient: network errors, 5xx, 429, RequestTimeout, SlowDown; not 4xx', () => {
  assert.ok(isTransient(Object.assign(new Error('reset'), { code: 'ECONNRESET' })));
  assert.ok(isTransient(sdkError('InternalError', 500)));
  assert.ok(isTransient(sdkError('SlowDown', 503)));
  assert.ok(isTransient(sdkError('RequestTimeout', 400)));
  assert.ok(isTransient(sdkError('TooManyRequests', 429)));
  assert.not.ok(isTransient(sdkError('AccessDenied', 403)));
  assert.not.ok(isTransient(sdkError('NotImplemented', 501)));
  assert.not.ok(isTransient(new BackendError('EIO', 'x')));
});

test('real errors from the S3 server map as expected', async () => {
  const c = await admin();
  const caught = async (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
  const get = await caught(c.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'no/such/key/s3gw' })));
  assert.is(toBackendError(get, 'open').code, 'ENOENT');
  const head = await caught(c.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'no/such/key/s3gw' })));
  assert.is(toBackendError(head, 'stat').code, 'ENOENT');
  const bucket = await caught(c.send(new HeadObjectCommand({ Bucket: 'no-such-bucket-s3gw', Key: 'k' })));
  assert.is(toBackendError(bucket, 'stat').code, 'ENOENT');
});

test.run();
