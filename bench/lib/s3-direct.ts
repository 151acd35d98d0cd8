/**
 * Child process: the direct reference for bench/gateway-throughput.ts, one transfer between a
 * local file and S3 made with @aws-sdk/client-s3 alone, in a process of its own so that its CPU
 * is its own.
 *
 * - upload: a multipart upload read from the file in `partSize` parts, `concurrency` parts in
 *   flight, each worker reusing one part buffer. The body is a stream, as the gateway sends it:
 *   the SDK then signs with UNSIGNED-PAYLOAD, where a Buffer body would make it SHA-256 every part
 *   (about 0.7 s of CPU per GiB that the gateway does not spend). SSE and checksum mode as the
 *   gateway's defaults (AES256; WHEN_REQUIRED), so MinIO does the same work for both.
 * - download: one GetObject of the whole object, streamed into /dev/null and counted.
 *
 * It writes a JSON report to `reportFile`: the transfer's own wall time and CPU (process.cpuUsage,
 * all threads, from the first request to the last byte), so Node's start-up and loading the SDK
 * are left out, as the gateway's start-up is.
 */
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';

export interface DirectArgs {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  key: string;
  direction: 'up' | 'down';
  /** Upload source (direction up). */
  file?: string;
  /** Bytes to upload (the file's first `size` bytes) or expected to download. */
  size: number;
  partSize: number;
  concurrency: number;
  sse: 'AES256' | 'none';
  reportFile: string;
}

export interface DirectReport {
  bytes: number;
  wallSec: number;
  cpuUser: number;
  cpuSys: number;
  parts: number;
  node: string;
}

const args = JSON.parse(process.argv[2] ?? '') as DirectArgs;

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const s3 = new S3Client({
  endpoint: args.endpoint,
  region: args.region,
  forcePathStyle: true,
  credentials: { accessKeyId: args.accessKeyId, secretAccessKey: args.secretAccessKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  requestHandler: { httpAgent: agent, connectionTimeout: 10_000, requestTimeout: 120_000 },
});
const sse = args.sse === 'AES256' ? { ServerSideEncryption: 'AES256' as const } : {};

async function upload(): Promise<{ bytes: number; parts: number }> {
  if (!args.file) throw new Error('upload without a file');
  const fh = await open(args.file, 'r');
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, ...sse }));
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  const count = Math.max(1, Math.ceil(args.size / args.partSize));
  const done: CompletedPart[] = new Array(count);
  let next = 0;
  let bytes = 0;
  const worker = async () => {
    const buf = Buffer.allocUnsafeSlow(args.partSize);
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const off = i * args.partSize;
      const len = Math.min(args.partSize, args.size - off);
      let got = 0;
      while (got < len) {
        const { bytesRead } = await fh.read(buf, got, len - got, off + got);
        if (bytesRead === 0) throw new Error(`${args.file} ends at ${off + got}, wanted ${args.size} bytes`);
        got += bytesRead;
      }
      const out = await s3.send(
        new UploadPartCommand({
          Bucket: args.bucket,
          Key: args.key,
          UploadId: uploadId,
          PartNumber: i + 1,
          ContentLength: len,
          Body: Readable.from([buf.subarray(0, len)], { objectMode: false }),
        }),
      );
      done[i] = { PartNumber: i + 1, ETag: out.ETag };
      bytes += len;
    }
  };
  try {
    await Promise.all(Array.from({ length: args.concurrency }, worker));
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, UploadId: uploadId, MultipartUpload: { Parts: done } }),
    );
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, UploadId: uploadId })).catch(() => {});
    throw err;
  } finally {
    await fh.close();
  }
  return { bytes, parts: count };
}

async function download(): Promise<{ bytes: number; parts: number }> {
  const out = await s3.send(new GetObjectCommand({ Bucket: args.bucket, Key: args.key }));
  const body = out.Body as Readable | undefined;
  if (!body) throw new Error('GetObject returned no body');
  const fd = openSync('/dev/null', 'w');
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      writeSync(fd, chunk);
      cb();
    },
  });
  try {
    await pipeline(body, sink);
  } finally {
    closeSync(fd);
  }
  return { bytes, parts: 1 };
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
try {
  const r = args.direction === 'up' ? await upload() : await download();
  const wallSec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const report: DirectReport = {
    bytes: r.bytes,
    wallSec,
    cpuUser: cpu.user / 1e6,
    cpuSys: cpu.system / 1e6,
    parts: r.parts,
    node: process.version,
  };
  writeFileSync(args.reportFile, JSON.stringify(report));
  s3.destroy();
  agent.destroy();
} catch (err) {
  process.stderr.write(`s3-direct: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
