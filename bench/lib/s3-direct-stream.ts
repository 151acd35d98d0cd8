/**
 * Child process: the direct reference for bench/large-upload.ts. The same bytes the gateway
 * gets (spec/helpers/big-upload.ts `keystream`, same seed) uploaded with @aws-sdk/client-s3 alone
 * as one multipart upload: `partSize` parts, `concurrency` in flight, stream bodies (so the SDK
 * signs UNSIGNED-PAYLOAD, as the gateway does), SSE AES256 and checksums WHEN_REQUIRED, as the
 * gateway's defaults. A process of its own, so that its CPU and RSS are its own.
 *
 * Arguments: one JSON object (DirectStreamArgs) in argv[2]; the keys come from the environment
 * (S3GW_BENCH_ACCESS_KEY_ID, S3GW_BENCH_SECRET_ACCESS_KEY), not argv, which `ps` shows. It writes
 * a JSON report (DirectStreamReport) to `reportFile`: wall time and CPU from the first request to
 * CompleteMultipartUpload's answer (Node's start-up and loading the SDK left out, as the
 * gateway's are), generating the bytes included.
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { keystream } from '../../spec/helpers/big-upload.js';

export interface DirectStreamArgs {
  endpoint: string;
  region: string;
  bucket: string;
  key: string;
  size: number;
  seed: string;
  partSize: number;
  concurrency: number;
  reportFile: string;
}

export interface DirectStreamReport {
  bytes: number;
  parts: number;
  wallSec: number;
  cpuUser: number;
  cpuSys: number;
}

const args = JSON.parse(process.argv[2] ?? '') as DirectStreamArgs;
const accessKeyId = process.env.S3GW_BENCH_ACCESS_KEY_ID;
const secretAccessKey = process.env.S3GW_BENCH_SECRET_ACCESS_KEY;
if (!accessKeyId || !secretAccessKey) throw new Error('S3GW_BENCH_ACCESS_KEY_ID and S3GW_BENCH_SECRET_ACCESS_KEY must be set');

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const s3 = new S3Client({
  endpoint: args.endpoint,
  region: args.region,
  forcePathStyle: true,
  credentials: { accessKeyId, secretAccessKey },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  requestHandler: { httpAgent: agent, connectionTimeout: 10_000, requestTimeout: 300_000 },
});

async function upload(): Promise<{ bytes: number; parts: number }> {
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, ServerSideEncryption: 'AES256' }));
  const uploadId = created.UploadId;
  if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
  // One piece of the keystream per part: the workers take them in order, so part n holds bytes
  // [(n-1)·partSize, n·partSize) whatever order the parts finish in.
  const source = keystream(args.size, args.seed, args.partSize);
  const done: CompletedPart[] = [];
  let next = 1;
  let bytes = 0;
  const worker = async () => {
    for (;;) {
      const it = source.next();
      if (it.done) return;
      const number = next++;
      const body = it.value;
      const out = await s3.send(
        new UploadPartCommand({
          Bucket: args.bucket,
          Key: args.key,
          UploadId: uploadId,
          PartNumber: number,
          ContentLength: body.length,
          Body: Readable.from([body], { objectMode: false }),
        }),
      );
      done.push({ PartNumber: number, ETag: out.ETag });
      bytes += body.length;
    }
  };
  try {
    await Promise.all(Array.from({ length: args.concurrency }, worker));
    done.sort((a, b) => a.PartNumber! - b.PartNumber!);
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, UploadId: uploadId, MultipartUpload: { Parts: done } }),
    );
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: args.bucket, Key: args.key, UploadId: uploadId })).catch(() => {});
    throw err;
  }
  return { bytes, parts: done.length };
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
try {
  const r = await upload();
  const wallSec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const report: DirectStreamReport = { bytes: r.bytes, parts: r.parts, wallSec, cpuUser: cpu.user / 1e6, cpuSys: cpu.system / 1e6 };
  writeFileSync(args.reportFile, JSON.stringify(report));
  s3.destroy();
  agent.destroy();
} catch (err) {
  process.stderr.write(`s3-direct-stream: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
