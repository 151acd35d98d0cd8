/**
 * Large uploads (issue 5): one upload of many GiB (default 20) of unknown size through the
 * gateway, its RSS over time, and its speed against the direct SDK reference measured in the
 * same run. Not a test: it prints figures (markdown on stdout, progress on stderr) and fails only
 * when a transfer fails or its result is wrong.
 *
 *   npm run build && node dist/bench/large-upload.js [--size 20G] [--max-parts 1100]
 *
 * - reference: bench/lib/s3-direct-stream.ts, a child process uploading the same bytes (the
 *   keystream of spec/helpers/big-upload.ts, same seed) straight to S3 with the SDK: one
 *   multipart upload, 5 MiB parts, 4 in flight;
 * - gateway: `node <NODE_FLAGS> dist/src/cli.js` (spec/helpers/big-upload.ts), client `curl -T -`
 *   (libssh2) fed through a pipe from the same keystream, so SFTP never learns the size.
 *   `--max-parts N` is passed on: 1100 makes a 20 GiB upload go through three full 5 GiB segments
 *   and a shorter one.
 *
 * VmRSS of the gateway (and of the reference process) every --sample-ms, and exactly when 25, 50
 * and 75 % of the bytes have been handed to the client and when it exits. Afterwards the object's
 * size and sha256 (streamed GetObject) against what was sent, and a bucket holding that object
 * only, with no multipart upload pending. Everything runs in a scratch bucket, removed at the end.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  GIB,
  MIB,
  RssSampler,
  bucketUploads,
  createScratchBucket,
  curlUpload,
  listBucket,
  objectSha256,
  removeBucket,
  showUpload,
  startGatewayProcess,
  sweepScratchBuckets,
  type RssSample,
} from '../spec/helpers/big-upload.js';
import { killAllOnExit, track } from './lib/children.js';
import { ROOT, adminClient, cpuOf, fmtSize, gitState, loadStore, log, machineLine, median, parseSize, type Store } from './lib/gateway-bench.js';
import { systemBusy, waitQuiet } from './lib/proc.js';
import type { DirectStreamArgs, DirectStreamReport } from './lib/s3-direct-stream.js';

function usage(): string {
  return `usage: node dist/bench/large-upload.js [options]
  --size SIZE        bytes to upload (default 20G)
  --max-parts N      passed to the gateway (default: the gateway's own, 10000)
  --sample-ms MS     RSS sampling interval (default 1000)
  --no-verify        skip the sha256 read-back of the gateway's object
  --quiet-wait S     wait up to S seconds for an idle machine before each transfer (default 30)
  --json FILE        also write every sample as JSON`;
}

const { values: opt } = parseArgs({
  options: {
    size: { type: 'string', default: '20G' },
    'max-parts': { type: 'string' },
    'sample-ms': { type: 'string', default: '1000' },
    'no-verify': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: '30' },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});
if (opt.help) {
  console.log(usage());
  process.exit(0);
}
const SIZE = parseSize(opt.size!);
const MAX_PARTS = opt['max-parts'];
const SAMPLE_MS = Number(opt['sample-ms']);
const QUIET_WAIT_MS = Number(opt['quiet-wait']) * 1000;
if (!(SIZE > 0) || !(SAMPLE_MS >= 50) || !(QUIET_WAIT_MS >= 0) || (MAX_PARTS !== undefined && !/^\d+$/.test(MAX_PARTS))) {
  throw new Error(usage());
}
const SEED = `large-upload bench ${SIZE}`;
const PART = 5 * MIB;
const CONCURRENCY = 4;
/** Hang guards, not expectations: 10 MB/s would be far below anything seen. */
const DEADLINE_MS = 120_000 + (SIZE / 10e6) * 1000;

interface Run {
  what: string;
  wallSec: number;
  cpuSec: number;
  minioCpuSec: number | undefined;
  /** Busy cores of the whole machine during the transfer, everything included. */
  busyCores: number;
  samples: RssSample[];
}

function minioCpu(store: Store): number | undefined {
  return store.minioPid === undefined ? undefined : cpuOf(store.minioPid);
}

async function quiet(): Promise<void> {
  if (QUIET_WAIT_MS > 0) {
    const load = await waitQuiet(QUIET_WAIT_MS);
    if (load >= 0.15) log(`  note: the machine was still busy (${load.toFixed(2)} cores) after ${QUIET_WAIT_MS / 1000} s`);
  }
}

// ------------------------------------------------------------------ the direct reference

async function direct(store: Store, s3: S3Client, bucket: string, dir: string): Promise<Run> {
  const key = 'direct.bin';
  const reportFile = path.join(dir, 'direct.json');
  const a: DirectStreamArgs = {
    endpoint: store.endpoint,
    region: store.region,
    bucket,
    key,
    size: SIZE,
    seed: SEED,
    partSize: PART,
    concurrency: CONCURRENCY,
    reportFile,
  };
  await quiet();
  const m0 = minioCpu(store);
  const b0 = systemBusy();
  const t0 = performance.now();
  const child = track(
    spawn(process.execPath, [path.join(ROOT, 'dist/bench/lib/s3-direct-stream.js'), JSON.stringify(a)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, S3GW_BENCH_ACCESS_KEY_ID: store.accessKeyId, S3GW_BENCH_SECRET_ACCESS_KEY: store.secretAccessKey },
    }),
  );
  const rss = new RssSampler(child.pid!, () => 0, SAMPLE_MS);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  rss.stop();
  const secs = (performance.now() - t0) / 1000;
  const busyCores = (systemBusy() - b0) / secs;
  const m1 = minioCpu(store);
  if (code !== 0) throw new Error(`the direct upload failed (${code}): ${stderr}`);
  const r = JSON.parse(readFileSync(reportFile, 'utf8')) as DirectStreamReport;
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (r.bytes !== SIZE || head.ContentLength !== SIZE) throw new Error(`direct: ${r.bytes} bytes sent, object of ${head.ContentLength}, wanted ${SIZE}`);
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
  return {
    what: `direct SDK (${r.parts} parts, ${CONCURRENCY} in flight)`,
    wallSec: r.wallSec,
    cpuSec: r.cpuUser + r.cpuSys,
    minioCpuSec: m0 !== undefined && m1 !== undefined ? m1 - m0 : undefined,
    busyCores,
    // The first sample is taken at spawn, before node has loaded anything.
    samples: rss.samples.slice(1),
  };
}

// ------------------------------------------------------------------ through the gateway

interface GatewayRun extends Run {
  atQuarters: number[];
  warnings: string;
}

async function viaGateway(store: Store, s3: S3Client, bucket: string, dir: string): Promise<GatewayRun> {
  const key = 'gateway.bin';
  const gw = await startGatewayProcess({
    endpoint: store.endpoint,
    region: store.region,
    dir,
    args: MAX_PARTS ? ['--max-parts', MAX_PARTS] : [],
  });
  try {
    await quiet();
    let sent = 0;
    const rss = new RssSampler(gw.pid, () => sent, SAMPLE_MS);
    const marks = [0.25, 0.5, 0.75].map((f) => Math.floor(f * SIZE));
    const atQuarters: number[] = [];
    let nextMark = 0;
    let nextLog = 0;
    const c0 = cpuOf(gw.pid);
    const m0 = minioCpu(store);
    const b0 = systemBusy();
    const up = await curlUpload({
      port: gw.port,
      creds: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
      remotePath: `/${bucket}/${key}`,
      size: SIZE,
      seed: SEED,
      dir,
      timeoutMs: DEADLINE_MS,
      onProgress: (n) => {
        sent = n;
        while (nextMark < marks.length && n >= marks[nextMark]!) {
          rss.sample();
          atQuarters.push(rss.samples.at(-1)!.kib / 1024);
          nextMark++;
        }
        if (n >= nextLog) {
          log(`  gateway: ${fmtSize(Math.floor(n / GIB) * GIB)} sent, RSS ${((rss.samples.at(-1)?.kib ?? 0) / 1024).toFixed(1)} MiB`);
          nextLog += 4 * GIB;
        }
      },
    });
    rss.sample();
    rss.stop();
    atQuarters.push(rss.samples.at(-1)!.kib / 1024);
    const busyCores = (systemBusy() - b0) / up.wallSec;
    const cpuSec = cpuOf(gw.pid) - c0;
    const m1 = minioCpu(store);
    if (up.code !== 0 || up.sent !== SIZE) {
      throw new Error(`${showUpload(up)}\n--- gateway warnings and errors\n${gw.problems().join('\n')}\n--- log\n${gw.logTail(10)}`);
    }
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== SIZE) throw new Error(`gateway: object of ${head.ContentLength} bytes, wanted ${SIZE}`);
    if (!opt['no-verify']) {
      log('  reading the object back for its sha256');
      const got = await objectSha256(s3, bucket, key);
      if (got.bytes !== SIZE || got.sha256 !== up.sha256) throw new Error(`gateway: the object differs from what was sent (${got.bytes} bytes)`);
    }
    const left = (await listBucket(s3, bucket)).filter((o) => o.key !== key);
    const pending = await bucketUploads(s3, bucket);
    if (left.length || pending.length) {
      throw new Error(`gateway: temporaries left: ${JSON.stringify(left)} objects, ${JSON.stringify(pending.map((u) => u.key))} uploads`);
    }
    const warnings = gw.problems().length ? ` (warnings: ${gw.problems().length})` : '';
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    return {
      what: 's3gw gateway (curl -T -)',
      wallSec: up.wallSec,
      cpuSec,
      minioCpuSec: m0 !== undefined && m1 !== undefined ? m1 - m0 : undefined,
      busyCores,
      samples: rss.samples,
      atQuarters,
      warnings,
    };
  } finally {
    await gw.stop();
  }
}

// ------------------------------------------------------------------ report

function rssStats(samples: RssSample[]): { min: number; med: number; max: number } {
  const xs = samples.map((s) => s.kib / 1024);
  return { min: Math.min(...xs), med: median(xs), max: Math.max(...xs) };
}

const f1 = (x: number) => x.toFixed(1);
const mbps = (r: Run) => SIZE / 1e6 / r.wallSec;
const perGiB = (x: number | undefined) => (x === undefined ? '–' : (x / (SIZE / GIB)).toFixed(2));

function report(ref: Run, gw: GatewayRun): string {
  const out: string[] = [];
  const g = rssStats(gw.samples);
  const d = rssStats(ref.samples);
  out.push(
    machineLine(),
    '',
    `${fmtSize(SIZE)} of unknown size (keystream, one seed for both), s3gw source: ${gitState()}; gateway ` +
      `\`node ${'<NODE_FLAGS>'} dist/src/cli.js\` with ${MAX_PARTS ? `\`--max-parts ${MAX_PARTS}\`` : 'its default part limit'} ` +
      `(5 MiB parts); client curl -T - (libssh2) from a pipe. Reference: @aws-sdk/client-s3 in a child process, ` +
      `multipart, 5 MiB parts, ${CONCURRENCY} in flight, SSE AES256. VmRSS every ${SAMPLE_MS} ms.`,
    '',
    '| path | wall s | MB/s | CPU-s/GiB (process) | MinIO CPU-s/GiB | machine busy cores | RSS min / median / max MiB |',
    '|---|---|---|---|---|---|---|',
  );
  for (const r of [gw, ref]) {
    const s = r === gw ? g : d;
    out.push(
      `| ${r.what} | ${f1(r.wallSec)} | ${mbps(r).toFixed(0)} | ${perGiB(r.cpuSec)} | ${perGiB(r.minioCpuSec)} | ${r.busyCores.toFixed(2)} | ${f1(s.min)} / ${f1(s.med)} / ${f1(s.max)} |`,
    );
  }
  out.push(
    '',
    `Gateway RSS at 25 / 50 / 75 / 100 % of the bytes sent: ${gw.atQuarters.map(f1).join(' / ')} MiB ` +
      `(${gw.samples.length} samples; max over the second half ${f1(Math.max(...gw.samples.filter((s) => s.sent >= SIZE / 2).map((s) => s.kib / 1024)))}, ` +
      `over the first quarter ${f1(Math.max(...gw.samples.filter((s) => s.sent <= SIZE / 4).map((s) => s.kib / 1024)))}).`,
    '',
    `| ratio | value |`,
    `|---|---|`,
    `| s3gw / direct, wall MB/s | ${(mbps(gw) / mbps(ref)).toFixed(2)} |`,
    `| s3gw / direct, process CPU per GiB | ${(gw.cpuSec / ref.cpuSec).toFixed(2)} |`,
    `| s3gw / direct, peak RSS | ${(g.max / d.max).toFixed(2)} |`,
    `| s3gw RSS, max over the second half − max over the first quarter | ${f1(
      Math.max(...gw.samples.filter((s) => s.sent >= SIZE / 2).map((s) => s.kib / 1024)) -
        Math.max(...gw.samples.filter((s) => s.sent <= SIZE / 4).map((s) => s.kib / 1024)),
    )} MiB |`,
  );
  return out.join('\n');
}

// ------------------------------------------------------------------ main

killAllOnExit();
const store = await loadStore();
const s3 = adminClient(store);
const swept = await sweepScratchBuckets(s3);
if (swept.length) log(`bench: removed scratch buckets of dead runs: ${swept.join(', ')}`);
const dir = mkdtempSync(path.join(tmpdir(), 's3gw-large-upload-'));
const bucket = await createScratchBucket(s3, 'bench');
try {
  log(`bench: direct SDK upload of ${fmtSize(SIZE)}`);
  const ref = await direct(store, s3, bucket, dir);
  log(`  ${f1(ref.wallSec)} s, ${mbps(ref).toFixed(0)} MB/s`);
  log(`bench: the same through the gateway${MAX_PARTS ? ` (--max-parts ${MAX_PARTS})` : ''}`);
  const gw = await viaGateway(store, s3, bucket, dir);
  log(`  ${f1(gw.wallSec)} s, ${mbps(gw).toFixed(0)} MB/s${gw.warnings}`);
  console.log(report(ref, gw));
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ size: SIZE, maxParts: MAX_PARTS ?? null, ref, gw }, null, 1));
} finally {
  await removeBucket(s3, bucket).catch((err: Error) => log(`bench: could not remove ${bucket}: ${err.message}`));
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
