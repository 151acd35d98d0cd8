/**
 * check-file end to end: paramiko's SFTPFile.check (the "check-file" request on a read handle)
 * against the real gateway and MinIO. The gateway answers from the CRC32 stored with the object,
 * which a test computes itself: an object stored with S3's full-object CRC32 (as the uploads do),
 * one stored with only the metadata fallback, and refusals for what is not stored.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import zlib from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import * as assert from 'uvu/assert';
import { BUCKET, MiB, admin, e2ePrefix, gatewaySuite, paramiko, payload } from '../helpers/gateway.js';

const PREFIX = e2ePrefix('check-file');
const test = gatewaySuite('gateway: check-file answers the stored CRC32', PREFIX);

interface Result {
  ok: boolean;
  value?: { hex: string };
  message?: string;
}
type Run = { results: Result[] };

const crcHex = (data: Buffer) => (zlib.crc32(data) >>> 0).toString(16).padStart(8, '0');
const b64 = (data: Buffer) => Buffer.from(crcHex(data), 'hex').toString('base64');

test('a stored full-object CRC32 and a metadata CRC32 are answered; md5, ranges and unstored files are refused', async ({ gw }) => {
  const c = await admin();
  const big = randomBytes(6 * MiB + 123);
  const small = randomBytes(1000);
  const key = (n: string) => `${PREFIX}/${n}`;
  const remote = (n: string) => `/${BUCKET}/${PREFIX}/${n}`;
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key('stored.bin'), Body: big, ContentLength: big.length, ChecksumCRC32: b64(big), ServerSideEncryption: 'AES256' }));
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key('meta.bin'), Body: small, ContentLength: small.length, Metadata: { crc32: crcHex(small) } }));
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key('none.bin'), Body: small, ContentLength: small.length }));
  const run = await paramiko<Run>(gw, 'least', 'ops', {
    ops: [
      { op: 'check', path: remote('stored.bin'), algorithm: 'crc32' },
      { op: 'check', path: remote('stored.bin'), algorithm: 'sha1,crc32', length: big.length, blockSize: 0 },
      { op: 'check', path: remote('meta.bin'), algorithm: 'crc32' },
      { op: 'check', path: remote('stored.bin'), algorithm: 'md5' },
      { op: 'check', path: remote('stored.bin'), algorithm: 'crc32', offset: 1 },
      { op: 'check', path: remote('stored.bin'), algorithm: 'crc32', blockSize: 1 << 20 },
      { op: 'check', path: remote('none.bin'), algorithm: 'crc32' },
    ],
  });
  const r = run.results;
  assert.equal(r[0], { op: 'check', ok: true, value: { hex: crcHex(big) } } as Result, 'stored CRC32');
  assert.equal(r[1]!.value, { hex: crcHex(big) }, 'a list with crc32 in it, length = size');
  assert.equal(r[2]!.value, { hex: crcHex(small) }, 'the metadata fallback');
  assert.not.ok(r[3]!.ok);
  assert.match(r[3]!.message ?? '', /no stored hash for md5; this server answers crc32 only/);
  assert.match(r[4]!.message ?? '', /start-offset must be 0/);
  assert.match(r[5]!.message ?? '', /block-size must be 0 or at least the length/);
  assert.match(r[6]!.message ?? '', /has no stored checksum/);
});

test('files uploaded through the gateway carry the CRC32 the test computes (single part and multipart)', async ({ gw }) => {
  const files = await Promise.all([0, 1000, 5 * MiB + 1, 3 * 5 * MiB + 17].map((n) => payload(n)));
  const remote = (n: number) => `/${BUCKET}/${PREFIX}/up/${n}.bin`;
  const run = await paramiko<Run>(gw, 'least', 'ops', {
    ops: [
      ...files.map((f) => ({ op: 'put', local: f.path, remote: remote(f.size), expectError: false })),
      ...files.map((f) => ({ op: 'check', path: remote(f.size), algorithm: 'crc32' })),
    ],
  });
  for (const [i, f] of files.entries()) {
    const want = crcHex(await readFile(f.path));
    assert.equal(run.results[files.length + i], { op: 'check', ok: true, value: { hex: want } } as Result, `${f.size} bytes`);
  }
});

test.run();
