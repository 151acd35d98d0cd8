/** createS3Backend's option checks: bad settings fail at construction and name the setting. */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { silentLogger } from '../../src/log.js';
import { createS3Backend, type S3BackendOptions } from '../../src/s3/backend.js';

const MiB = 1024 * 1024;
const base: S3BackendOptions = {
  credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret-secret' },
  endpoint: 'http://127.0.0.1:1',
  region: 'us-east-1',
  forcePathStyle: true,
  sse: { mode: 'AES256' },
  log: silentLogger,
};

const test = suite('s3 backend options');

test('defaults construct without touching the network', async () => {
  const b = createS3Backend(base);
  await b.close();
});

test('part sizes outside S3 limits are refused with the setting named', () => {
  assert.throws(() => createS3Backend({ ...base, partSize: 4 * MiB }), /partSize/);
  assert.throws(() => createS3Backend({ ...base, partSize: 6 * 1024 * MiB }), /partSize/);
  assert.throws(() => createS3Backend({ ...base, copyPartSize: MiB }), /copyPartSize/);
  assert.throws(() => createS3Backend({ ...base, maxParts: 10_001 }), /maxParts/);
  assert.throws(() => createS3Backend({ ...base, uploadBudget: 4 * MiB }), /uploadBudget/);
});

test('a larger part size gets a budget that fits it', async () => {
  await createS3Backend({ ...base, partSize: 16 * MiB }).close();
  await createS3Backend({ ...base, partSize: 5 * MiB, uploadBudget: 5 * MiB }).close();
});

test('a closed backend fails with EIO', async () => {
  const b = createS3Backend(base);
  await b.close();
  try {
    await b.stat('/bucket/key');
    assert.unreachable();
  } catch (err) {
    assert.is((err as { code?: string }).code, 'EIO');
  }
});

test.run();
