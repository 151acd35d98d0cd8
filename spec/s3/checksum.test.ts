/**
 * The upload checksum (src/s3/checksum.ts): CRC32 against published vectors, crc32Combine against
 * zlib.crc32 of concatenations (lengths 0, 1, every split, and 5 GiB), the reading of stored
 * checksums and the refusal classifier; then, against the real S3, the request shapes that
 * upload.ts uses, so a store that changes its mind shows up here first.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  AbortMultipartUploadCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  crc32Base64,
  crc32Bytes,
  crc32Combine,
  crc32Hex,
  isChecksumRefused,
  storedChecksum,
  UploadChecksum,
} from '../../src/s3/checksum.js';
import { BUCKET, MiB, admin, backend, closeBackends, rejectsWith, removePrefix, runPrefix } from './fixture.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
interface Vector {
  name: string;
  data: string;
  crc: string;
}
const VECTORS = (JSON.parse(readFileSync(path.join(ROOT, 'fixtures/vectors/crc32-ieee.json'), 'utf8')) as { vectors: Vector[] })
  .vectors;

const hex = (crc: number) => crc32Hex(crc);

// ------------------------------------------------------------------------ units

const unit = suite('s3 checksum: CRC32, combination, stored values');

unit('zlib.crc32 and UploadChecksum give the published CRC-32 vectors', () => {
  assert.ok(VECTORS.length >= 9);
  for (const v of VECTORS) {
    const data = Buffer.from(v.data, 'hex');
    assert.is(hex(zlib.crc32(data)), v.crc, v.name);
    const u = new UploadChecksum();
    for (const byte of data) u.update(Uint8Array.of(byte)); // fed one byte at a time
    assert.is(hex(u.value), v.crc, `${v.name}: UploadChecksum byte by byte`);
    assert.is(u.length, data.length);
    assert.is(crc32Bytes(u.value).toString('hex'), v.crc, `${v.name}: big-endian bytes`);
  }
});

unit('the S3 encoding is base64 of the big-endian bytes ("123456789" → "y/Q5Jg==")', () => {
  assert.is(crc32Base64(0xcbf43926), 'y/Q5Jg==');
  assert.is(crc32Base64(0), 'AAAAAA==');
  assert.is(crc32Hex(0x1), '00000001');
});

unit('crc32Combine equals zlib.crc32 of the concatenation at every split of "123456789"', () => {
  const s = Buffer.from('123456789');
  for (let i = 0; i <= s.length; i++) {
    const a = s.subarray(0, i);
    const b = s.subarray(i);
    assert.is(hex(crc32Combine(zlib.crc32(a), zlib.crc32(b), b.length)), 'cbf43926', `split at ${i}`);
  }
});

unit('crc32Combine with lengths 0 and 1 and random buffers up to 1 MiB', () => {
  const x = randomBytes(4096);
  assert.is(crc32Combine(zlib.crc32(x), 0, 0), zlib.crc32(x), 'an empty tail changes nothing');
  assert.is(crc32Combine(0, zlib.crc32(x), x.length), zlib.crc32(x), 'an empty head changes nothing');
  const one = Buffer.from([0xa5]);
  assert.is(crc32Combine(zlib.crc32(x), zlib.crc32(one), 1), zlib.crc32(Buffer.concat([x, one])), 'a 1-byte tail');
  for (const [la, lb] of [[1, 1], [3, 1000], [65_536, 65_535], [MiB, 7], [5, MiB + 3]] as const) {
    const a = randomBytes(la);
    const b = randomBytes(lb);
    assert.is(crc32Combine(zlib.crc32(a), zlib.crc32(b), lb), zlib.crc32(Buffer.concat([a, b])), `${la} + ${lb}`);
  }
});

unit('crc32Combine over 5 GiB + 1 byte agrees with zlib streaming every byte', () => {
  // Streamed: 80 × 64 MiB of zeros, then 0x01 (lengths past 2^32 exercise the high bits).
  const block = Buffer.alloc(64 * MiB);
  let streamed = 0;
  for (let i = 0; i < 80; i++) streamed = zlib.crc32(block, streamed);
  streamed = zlib.crc32(Buffer.from([1]), streamed);
  // Combined: doubling crc(Z_n) with crc(Z_2n) = combine(crc(Z_n), crc(Z_n), n) from 64 MiB to
  // 4 GiB, then + 1 GiB, then + the last byte.
  const zeros = new Map<number, number>([[64 * MiB, zlib.crc32(block)]]);
  for (let n = 64 * MiB; n < 4096 * MiB; n *= 2) zeros.set(2 * n, crc32Combine(zeros.get(n)!, zeros.get(n)!, n));
  const fiveGiB = crc32Combine(zeros.get(4096 * MiB)!, zeros.get(1024 * MiB)!, 1024 * MiB);
  const combined = crc32Combine(fiveGiB, zlib.crc32(Buffer.from([1])), 1);
  assert.is(hex(combined), hex(streamed));
  // And a resume of that size: a 5 GiB head prepended to a small tail.
  const tail = randomBytes(1000);
  const u = new UploadChecksum();
  u.update(tail);
  u.prepend(fiveGiB, 5 * 1024 * MiB);
  let direct = streamed; // recompute: zeros(5 GiB) then tail
  direct = 0;
  for (let i = 0; i < 80; i++) direct = zlib.crc32(block, direct);
  direct = zlib.crc32(tail, direct);
  assert.is(hex(u.value), hex(direct), 'prepend of a 5 GiB head');
  assert.is(u.length, 5 * 1024 * MiB + 1000);
});

unit('crc32Combine refuses negative, fractional and unsafe lengths', () => {
  for (const bad of [-1, 1.5, 2 ** 53, Number.NaN]) assert.throws(() => crc32Combine(0, 0, bad), /bad length/);
});

unit('UploadChecksum.prepend before, between and after updates', () => {
  const head = randomBytes(10_000);
  const t1 = randomBytes(333);
  const t2 = randomBytes(4444);
  const whole = zlib.crc32(Buffer.concat([head, t1, t2]));
  const early = new UploadChecksum();
  early.prepend(zlib.crc32(head), head.length);
  early.update(t1);
  early.update(t2);
  assert.is(early.value, whole, 'prepend first');
  const mid = new UploadChecksum();
  mid.update(t1);
  mid.prepend(zlib.crc32(head), head.length);
  mid.update(t2);
  assert.is(mid.value, whole, 'prepend between updates');
  const late = new UploadChecksum();
  late.update(t1);
  late.update(t2);
  late.prepend(zlib.crc32(head), head.length);
  assert.is(late.value, whole, 'prepend last');
  assert.is(late.length, head.length + t1.length + t2.length);
});

unit('the request parameters are plain objects of the documented shape', () => {
  const u = new UploadChecksum();
  u.update(Buffer.from('123456789'));
  assert.equal(u.putParams(), { ChecksumCRC32: 'y/Q5Jg==' });
  assert.equal(UploadChecksum.createParams(), { ChecksumAlgorithm: 'CRC32', ChecksumType: 'FULL_OBJECT' });
  assert.equal(UploadChecksum.partParams(), { ChecksumAlgorithm: 'CRC32' });
  assert.equal(u.completeParams(), { ChecksumCRC32: 'y/Q5Jg==', ChecksumType: 'FULL_OBJECT' });
  assert.equal(u.metadata(), { crc32: 'cbf43926' });
});

unit('storedChecksum reads a full-object CRC32, and the metadata fallback', () => {
  const want = Buffer.from('cbf43926', 'hex');
  assert.equal(storedChecksum({ ChecksumCRC32: 'y/Q5Jg==', ChecksumType: 'FULL_OBJECT' }), { algorithm: 'crc32', value: want });
  assert.equal(storedChecksum({ ChecksumCRC32: 'y/Q5Jg==' }), { algorithm: 'crc32', value: want }, 'no type: a store from before 2025');
  assert.equal(storedChecksum({ Metadata: { crc32: 'cbf43926' } }), { algorithm: 'crc32', value: want }, 'metadata');
});

unit('storedChecksum answers undefined for composite, malformed and absent values', () => {
  assert.is(storedChecksum({}), undefined);
  assert.is(storedChecksum({ ChecksumCRC32: 'y/Q5Jg==-3', ChecksumType: 'COMPOSITE' }), undefined, 'composite');
  assert.is(storedChecksum({ ChecksumCRC32: 'y/Q5Jg==-3' }), undefined, 'composite without a type');
  assert.is(storedChecksum({ ChecksumCRC32: 'y/Q5Jg==', ChecksumType: 'COMPOSITE' }), undefined, 'typed composite');
  assert.is(storedChecksum({ ChecksumCRC32: 'y/Q5' }), undefined, 'short base64');
  assert.is(storedChecksum({ ChecksumCRC32: 'y/Q5Jg==AAAA' }), undefined, 'long base64');
  for (const m of ['CBF43926', 'cbf4392', 'cbf439260', 'xyz43926', '']) {
    assert.is(storedChecksum({ Metadata: { crc32: m } }), undefined, `metadata ${JSON.stringify(m)}`);
  }
  // A composite additional checksum does not hide a valid metadata value.
  assert.equal(storedChecksum({ ChecksumCRC32: 'AAAAAA==-2', ChecksumType: 'COMPOSITE', Metadata: { crc32: '00000001' } }), {
    algorithm: 'crc32',
    value: Buffer.from('00000001', 'hex'),
  });
});

/** An error shaped as the SDK makes them (S3ServiceException): name, message, $metadata. */
function sdkError(name: string, status: number, message = ''): Error {
  return Object.assign(new Error(message), { name, Code: name, $metadata: { httpStatusCode: status } });
}

unit('isChecksumRefused: refusals of the headers or trailers', () => {
  assert.ok(isChecksumRefused(sdkError('NotImplemented', 501, 'A header you provided implies functionality that is not implemented')));
  assert.ok(isChecksumRefused(sdkError('Unknown', 501)), 'a bare 501');
  assert.ok(
    isChecksumRefused(sdkError('InvalidArgument', 400, 'Invalid arguments provided for b/k: (checksum missing, want "CRC32", got "")')),
    "MinIO's answer to UploadPartCopy into a checksummed upload",
  );
  assert.ok(isChecksumRefused(sdkError('InvalidRequest', 400, 'aws-chunked encoding is not supported')));
  assert.ok(isChecksumRefused(sdkError('InvalidArgument', 400, 'x-amz-trailer is not supported')));
});

unit('isChecksumRefused: a mismatch or an unrelated failure is not a refusal', () => {
  for (const e of [
    sdkError('XAmzContentChecksumMismatch', 400, "The provided 'x-amz-checksum' header does not match what was computed."),
    sdkError('BadDigest', 400, 'The CRC32 you specified did not match the calculated checksum.'),
    sdkError('InvalidDigest', 400, 'checksum'),
    sdkError('InvalidPart', 400, 'One or more of the specified parts could not be found.'),
    sdkError('AccessDenied', 403, 'checksum'),
    sdkError('InvalidArgument', 400, 'Invalid attribute name specified.'),
    sdkError('InternalError', 500, 'checksum'),
    Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
    'not an error',
    undefined,
  ]) {
    assert.not.ok(isChecksumRefused(e), String((e as Error | undefined)?.name ?? e));
  }
});

unit.run();

// ------------------------------------------------------------------------ the real S3

const PREFIX = runPrefix('checksum');
const s3 = suite('s3 checksum: request shapes on the real S3');

s3.after(async () => {
  await closeBackends();
  await removePrefix(BUCKET, PREFIX);
});

async function head(key: string) {
  return (await admin()).send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: 'ENABLED' }));
}

async function rejection(p: Promise<unknown>): Promise<Error & { name: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { name: string };
  }
  throw new Error('expected the request to fail');
}

s3('PutObject with putParams() stores a full-object CRC32 that backend.checksum answers', async () => {
  const c = await admin();
  const data = randomBytes(100_000);
  const u = new UploadChecksum();
  u.update(data);
  const key = `${PREFIX}/put.bin`;
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Readable.from([data]), ContentLength: data.length, ServerSideEncryption: 'AES256', ...u.putParams() }));
  const h = await head(key);
  assert.is(h.ChecksumCRC32, crc32Base64(zlib.crc32(data)));
  assert.is(h.ChecksumType, 'FULL_OBJECT');
  assert.is(h.ServerSideEncryption, 'AES256');
  const b = await backend('least');
  assert.equal(await b.checksum!(`/${BUCKET}/${key}`), { algorithm: 'crc32', value: crc32Bytes(zlib.crc32(data)) });
});

s3('PutObject with a wrong CRC32 fails with XAmzContentChecksumMismatch, which is not a refusal, and stores nothing', async () => {
  const c = await admin();
  const data = randomBytes(1000);
  const key = `${PREFIX}/put-wrong.bin`;
  const err = await rejection(
    c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data, ContentLength: data.length, ChecksumCRC32: crc32Base64(zlib.crc32(data) ^ 1) })),
  );
  assert.ok(['XAmzContentChecksumMismatch', 'BadDigest', 'InvalidDigest'].includes(err.name), err.name);
  assert.not.ok(isChecksumRefused(err));
  await rejectsWith((await backend('least')).stat(`/${BUCKET}/${key}`), 'ENOENT');
});

/** A multipart upload with streamed parts, each with partParams(); Complete with the part CRCs and `complete`. */
async function multipart(key: string, parts: Buffer[], complete: Record<string, string>) {
  const c = await admin();
  const created = await c.send(
    new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ServerSideEncryption: 'AES256', ...UploadChecksum.createParams() }),
  );
  const done: CompletedPart[] = [];
  try {
    for (const [i, data] of parts.entries()) {
      const out = await c.send(
        new UploadPartCommand({
          Bucket: BUCKET,
          Key: key,
          UploadId: created.UploadId,
          PartNumber: i + 1,
          Body: Readable.from([data]),
          ContentLength: data.length,
          ...UploadChecksum.partParams(),
        }),
      );
      assert.is(out.ChecksumCRC32, crc32Base64(zlib.crc32(data)), `part ${i + 1}: the store's CRC32 of the part`);
      done.push({ PartNumber: i + 1, ETag: out.ETag, ChecksumCRC32: out.ChecksumCRC32 });
    }
    return await c.send(
      new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, MultipartUpload: { Parts: done }, ...complete }),
    );
  } catch (err) {
    await c.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId })).catch(() => {});
    throw err;
  }
}

s3('multipart: FULL_OBJECT CRC32 with trailer part checksums is verified and stored', async () => {
  const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(17)];
  const u = new UploadChecksum();
  for (const p of parts) u.update(p);
  const key = `${PREFIX}/mpu.bin`;
  const out = await multipart(key, parts, { ...u.completeParams() });
  assert.is(out.ChecksumCRC32, crc32Base64(u.value));
  const h = await head(key);
  assert.is(h.ChecksumCRC32, crc32Base64(u.value), 'the whole file, not a CRC of CRCs');
  assert.is(h.ChecksumType, 'FULL_OBJECT');
  assert.is(h.ServerSideEncryption, 'AES256');
  assert.equal(storedChecksum(h)?.value, crc32Bytes(zlib.crc32(Buffer.concat(parts))));
});

s3('multipart: a wrong whole-file CRC32 at Complete fails the upload, and is not a refusal', async () => {
  const parts = [randomBytes(5 * MiB), randomBytes(100)];
  const u = new UploadChecksum();
  for (const p of parts) u.update(p);
  const wrong = { ChecksumCRC32: crc32Base64(u.value ^ 0x8000_0000), ChecksumType: 'FULL_OBJECT' };
  const key = `${PREFIX}/mpu-wrong.bin`;
  const err = await rejection(multipart(key, parts, wrong));
  assert.ok(['XAmzContentChecksumMismatch', 'BadDigest', 'InvalidDigest', 'InvalidRequest'].includes(err.name), err.name);
  assert.not.ok(isChecksumRefused(err));
  await rejectsWith((await backend('least')).stat(`/${BUCKET}/${key}`), 'ENOENT');
});

s3('resume: UploadPartCopy into a checksummed upload either works or is a refusal; the fallback stores the combined CRC32', async () => {
  const c = await admin();
  const headData = randomBytes(5 * MiB);
  const tail = randomBytes(4321);
  const src = `${PREFIX}/resume-src.bin`;
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: src, Body: headData, ContentLength: headData.length, ChecksumCRC32: crc32Base64(zlib.crc32(headData)) }));
  const headCrc = storedChecksum(await head(src))!.value.readUInt32BE(0);
  // What upload.ts knows on resume: the stored head's CRC and length, and the new bytes.
  const u = new UploadChecksum();
  u.prepend(headCrc, headData.length);
  u.update(tail);
  assert.is(u.value, zlib.crc32(Buffer.concat([headData, tail])));

  const key = `${PREFIX}/resumed.bin`;
  const created = await c.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key, ...UploadChecksum.createParams() }));
  let refused = false;
  try {
    const copied = await c.send(
      new UploadPartCopyCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, PartNumber: 1, CopySource: `${BUCKET}/${src}`, CopySourceRange: `bytes=0-${headData.length - 1}` }),
    );
    const part2 = await c.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, PartNumber: 2, Body: Readable.from([tail]), ContentLength: tail.length, ...UploadChecksum.partParams() }),
    );
    await c.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: created.UploadId,
        MultipartUpload: {
          Parts: [
            { PartNumber: 1, ETag: copied.CopyPartResult?.ETag, ChecksumCRC32: copied.CopyPartResult?.ChecksumCRC32 },
            { PartNumber: 2, ETag: part2.ETag, ChecksumCRC32: part2.ChecksumCRC32 },
          ],
        },
        ...u.completeParams(),
      }),
    );
  } catch (err) {
    // MinIO (2026-02): 400 InvalidArgument "checksum missing" on the UploadPartCopy.
    assert.ok(isChecksumRefused(err), `not a refusal: ${(err as Error).name}: ${(err as Error).message}`);
    refused = true;
    await c.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId }));
  }
  if (refused) {
    // The fallback: the same upload without a checksum, then CopyObject onto itself with
    // ChecksumAlgorithm CRC32 (objects up to 5 GiB): the store computes the CRC32 of the
    // whole object, and it must equal ours.
    const plain = await c.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const copied = await c.send(
      new UploadPartCopyCommand({ Bucket: BUCKET, Key: key, UploadId: plain.UploadId, PartNumber: 1, CopySource: `${BUCKET}/${src}`, CopySourceRange: `bytes=0-${headData.length - 1}` }),
    );
    const part2 = await c.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: plain.UploadId, PartNumber: 2, Body: Readable.from([tail]), ContentLength: tail.length }),
    );
    await c.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: plain.UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: copied.CopyPartResult?.ETag }, { PartNumber: 2, ETag: part2.ETag }] },
      }),
    );
    assert.is(storedChecksum(await head(key)), undefined, 'no checksum before the copy');
    // (MinIO's CopyObjectResult carries no checksum: the HEAD below is the check.)
    await c.send(
      new CopyObjectCommand({ Bucket: BUCKET, Key: key, CopySource: `${BUCKET}/${key}`, MetadataDirective: 'COPY', ChecksumAlgorithm: 'CRC32', ServerSideEncryption: 'AES256' }),
    );
  }
  const h = await head(key);
  assert.is(h.ChecksumCRC32, crc32Base64(u.value));
  assert.is(h.ChecksumType, 'FULL_OBJECT');
});

s3('a stored CRC32 survives CopyObject with MetadataDirective REPLACE (setstat) and COPY (rename)', async () => {
  const c = await admin();
  const data = randomBytes(2000);
  const key = `${PREFIX}/copied.bin`;
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data, ContentLength: data.length, ChecksumCRC32: crc32Base64(zlib.crc32(data)) }));
  await c.send(new CopyObjectCommand({ Bucket: BUCKET, Key: key, CopySource: `${BUCKET}/${key}`, MetadataDirective: 'REPLACE', Metadata: { mtime: '1' } }));
  assert.is((await head(key)).ChecksumCRC32, crc32Base64(zlib.crc32(data)), 'after REPLACE onto itself');
  await c.send(new CopyObjectCommand({ Bucket: BUCKET, Key: `${key}.renamed`, CopySource: `${BUCKET}/${key}`, MetadataDirective: 'COPY' }));
  assert.is((await head(`${key}.renamed`)).ChecksumCRC32, crc32Base64(zlib.crc32(data)), 'after COPY to another key');
});

s3('the metadata fallback is read back; an object with neither has no checksum', async () => {
  const c = await admin();
  const data = randomBytes(3000);
  const u = new UploadChecksum();
  u.update(data);
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/meta.bin`, Body: data, ContentLength: data.length, Metadata: u.metadata() }));
  await c.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/none.bin`, Body: data, ContentLength: data.length }));
  const b = await backend('least');
  assert.equal(await b.checksum!(`/${BUCKET}/${PREFIX}/meta.bin`), { algorithm: 'crc32', value: crc32Bytes(u.value) });
  assert.is(await b.checksum!(`/${BUCKET}/${PREFIX}/none.bin`), undefined);
});

s3('backend.checksum: a directory is EISDIR, a missing file ENOENT, buckets and the root EISDIR', async () => {
  const b = await backend('least');
  await (await admin()).send(new PutObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}/dir/x`, Body: 'x', ContentLength: 1 }));
  await rejectsWith(b.checksum!(`/${BUCKET}/${PREFIX}/dir`), 'EISDIR');
  await rejectsWith(b.checksum!(`/${BUCKET}/${PREFIX}/missing`), 'ENOENT');
  await rejectsWith(b.checksum!(`/${BUCKET}`), 'EISDIR');
  await rejectsWith(b.checksum!('/'), 'EISDIR');
});

s3.run();
