/**
 * Uploads of any size at bounded memory (issue 5). SFTP never tells the server a file's size, so
 * with 5 MiB parts S3's 10,000-part limit would end an upload at 48.8 GiB; past a point the
 * gateway streams into temporary segment objects (multipart uploads of up to 5 GiB each), copies
 * each into the final upload as one part (UploadPartCopy) and deletes it.
 *
 * `--max-parts 1100` brings that point within reach of a CI run: with 5 MiB parts a segment holds
 * 1024 parts (5 GiB, S3's limit for one copied part), and 6 GiB takes the final upload's own parts,
 * one full 5 GiB segment and a shorter one. The client is curl (libssh2) reading a pipe that
 * this process fills from a deterministic generator, so the bytes exist nowhere but in flight.
 *
 * The gateway is a child process (`node <NODE_FLAGS> dist/src/cli.js`, as deployed), so its
 * resident set is its own: VmRSS is read from /proc every second and at every 64 MiB sent.
 * "Flat" is defined on the data, not the clock: the largest RSS seen once half the bytes were sent
 * (through the end of CLOSE) may exceed the largest seen during the first quarter by at most
 * 128 MiB, and no sample may exceed 256 MiB. A gateway that kept a segment (5 GiB), or a sizable
 * part of one, in memory would break both. The second half differs from the first quarter in one
 * way: on MinIO each segment is streamed through the gateway (GET piped into an UploadPart, for
 * the stored CRC32), which turns over hundreds of MB/s of socket buffers. V8 collects external
 * memory when it has grown by about 64 MiB, so that phase sits up to ~80 MiB higher (measured
 * +74 and +82 MiB; +12 without checksums) without growing with the file: the 20 GiB benchmark,
 * with three segments streamed through, peaks lower (bench/README.md).
 *
 * The upload goes to a bucket of its own, so that "no temporaries left" covers the whole bucket
 * wherever the gateway keeps them: afterwards it holds the object and nothing else, and no
 * multipart upload is pending. The bucket is removed afterwards, also when the test fails, and a
 * bucket left by a run that was killed is removed at the next start.
 */
import fs from 'node:fs';
import { HeadObjectCommand, DeleteObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { admin, s3env, tempDir } from '../helpers/gateway.js';
import {
  GIB,
  MIB,
  RssSampler,
  bucketUploads,
  createScratchBucket,
  curlUpload,
  listBucket,
  maxRssMiB,
  objectSha256,
  removeBucket,
  showUpload,
  startGatewayProcess,
  sweepScratchBuckets,
  type GatewayProcess,
} from '../helpers/big-upload.js';

const SIZE = 6 * GIB;
const MAX_PARTS = '1100';
/** RSS samples: every second, and each time this many more bytes were handed to the client. */
const SAMPLE_MS = 1000;
const SAMPLE_EVERY = 64 * MIB;
/** How much the second half's peak may exceed the first quarter's. */
const GROWTH_MIB = 128;
/** No sample may exceed this (the gateway starts at about 80 MiB; one upload adds about 13). */
const MAX_RSS_MIB = 256;
/** A hang guard for the upload, not a speed requirement (it takes 1–2 minutes on a 2-core VM). */
const UPLOAD_DEADLINE_MS = 20 * 60_000;

interface Ctx {
  s3: S3Client;
  bucket: string;
  dir: string;
  gw: GatewayProcess;
}

const test = suite<Ctx>('gateway process: an upload of unknown size past the part limit', {} as Ctx);

test.before(async (ctx) => {
  ctx.s3 = await admin();
  await sweepScratchBuckets(ctx.s3);
  ctx.dir = tempDir('large-upload');
  ctx.bucket = await createScratchBucket(ctx.s3, 'spec');
  const env = await s3env();
  // Debug level for the "segment started" records (the gateway logs nothing per packet).
  ctx.gw = await startGatewayProcess({
    endpoint: env.endpoint,
    region: env.region,
    dir: ctx.dir,
    args: ['--max-parts', MAX_PARTS],
    logLevel: 'debug',
  });
});

test.after(async (ctx) => {
  await ctx.gw?.stop();
  if (ctx.bucket) await removeBucket(ctx.s3, ctx.bucket);
  if (ctx.dir) fs.rmSync(ctx.dir, { recursive: true, force: true });
});

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

test("a 6 GiB upload streamed from a generator, not a file, passes the 5 GiB single-copy limit and keeps the gateway's RSS flat (sampled)", async (ctx) => {
  const { gw, s3, bucket } = ctx;
  const key = 'big/six-gib.bin';
  const env = await s3env();
  let sent = 0;
  let nextSample = SAMPLE_EVERY;
  const rss = new RssSampler(gw.pid, () => sent, SAMPLE_MS);
  const up = await curlUpload({
    port: gw.port,
    creds: env.least,
    remotePath: `/${bucket}/${key}`,
    size: SIZE,
    seed: 'large-upload.test',
    dir: ctx.dir,
    timeoutMs: UPLOAD_DEADLINE_MS,
    onProgress: (n) => {
      sent = n;
      if (n >= nextSample) {
        rss.sample();
        nextSample += SAMPLE_EVERY;
      }
    },
  }).finally(() => {
    rss.sample();
    rss.stop();
  });
  const why = () => `${showUpload(up)}\n--- gateway warnings and errors\n${gw.problems().join('\n')}\n--- gateway log\n${gw.logTail(20)}`;
  assert.ok(gw.alive, `the gateway is still running\n${why()}`);
  assert.is(up.code, 0, why());
  assert.is(up.sent, SIZE, why());
  // The path under test ran: 76 raw parts, then a 5 GiB segment and a 644 MiB one (src/s3/layout.ts).
  assert.ok(gw.records('segment started') >= 1, `the upload went through temporary segments: ${gw.records('segment started')} started`);

  // Memory: judged against how far the data had got, not against the clock.
  const samples = rss.samples;
  const firstQuarter = maxRssMiB(samples, 0, SIZE / 4);
  const secondHalf = maxRssMiB(samples, SIZE / 2, SIZE);
  const peak = maxRssMiB(samples, 0, SIZE);
  const summary =
    `gateway VmRSS, ${samples.length} samples: first quarter max ${firstQuarter.toFixed(1)} MiB, ` +
    `second half max ${secondHalf.toFixed(1)} MiB, overall max ${peak.toFixed(1)} MiB; ` +
    `at 0/25/50/75/100 %: ${[0, 0.25, 0.5, 0.75, 1]
      .map((f) => mib(samples.find((s) => s.sent >= f * SIZE)?.kib ?? NaN))
      .join(' / ')} MiB`;
  if (process.env.S3GW_TEST_LOG === '1') process.stderr.write(`large-upload: ${summary}; ${up.wallSec.toFixed(0)} s\n`);
  assert.ok(samples.filter((s) => s.sent <= SIZE / 4).length >= 8, `samples in the first quarter: ${summary}`);
  assert.ok(samples.filter((s) => s.sent >= SIZE / 2).length >= 16, `samples in the second half: ${summary}`);
  const context = () =>
    `${summary}\nsegments started: ${gw.records('segment started')}\n--- gateway log (info and above)\n` +
    gw.infoTail(20);
  assert.ok(secondHalf <= firstQuarter + GROWTH_MIB, `RSS grew by more than ${GROWTH_MIB} MiB: ${context()}`);
  assert.ok(peak <= MAX_RSS_MIB, `RSS above ${MAX_RSS_MIB} MiB: ${context()}`);

  // The object: all of it, the very bytes sent, and nothing else left in the bucket.
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  assert.is(head.ContentLength, SIZE, 'the object has every byte');
  assert.is(head.ServerSideEncryption, 'AES256', 'the configured SSE');
  const stored = await objectSha256(s3, bucket, key);
  assert.is(stored.bytes, SIZE, 'GetObject returned every byte');
  assert.is(stored.sha256, up.sha256, 'the object holds exactly the bytes sent');
  assert.equal(await listBucket(s3, bucket), [{ key, size: SIZE }], 'no temporary object is left: the bucket holds the upload only');
  assert.equal(await bucketUploads(s3, bucket), [], 'no multipart upload is left pending');
  assert.equal(gw.problems(), [], 'the gateway logged no warning or error');

  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  assert.equal(await listBucket(s3, bucket), [], 'the object is deleted');
});

test.run();
