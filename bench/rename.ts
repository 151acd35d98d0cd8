/**
 * Renaming a large file (issue 5): S3 has no rename, so the gateway copies the object server-side
 * (one CopyObject up to 5 GiB, a multipart copy of 512 MiB UploadPartCopy parts, 4 at a time,
 * above) and deletes the source. This prints how long an SFTP rename of a 6 GiB file takes
 * against the same copy and delete made directly with the SDK in the same run, and what WinSCP's
 * default upload costs against a plain one: WinSCP writes name.filepart, closes it, renames it
 * to name and sets its mtime (SETSTAT, itself a copy of the object onto itself on S3).
 * Not a test: it fails only when a step fails or leaves a wrong result.
 *
 *   npm run build && node dist/bench/rename.js [--size 6G] [--max-parts N]
 *
 * Steps, on one gateway process (spec/helpers/big-upload.ts) and a scratch bucket:
 * 1. plain upload: curl -T - (libssh2) from the keystream to /b/plain.bin;
 * 2. reference: the SDK copies plain.bin to direct.bin as the gateway would (CopySourceIfMatch,
 *    SSE AES256; multipart with 512 MiB parts, 4 in flight, above 5 GiB) and deletes plain.bin;
 * 3. SFTP rename (paramiko, bench/lib/sftp-ops.py) of direct.bin to renamed.bin: from the
 *    request to its answer;
 * 4. WinSCP-style: curl -T - to flow.bin.filepart, then on one paramiko session STAT flow.bin
 *    (absent), RENAME flow.bin.filepart flow.bin, SETSTAT (utime) flow.bin. The upload and the
 *    rename are on different sessions, so the rename is a copy.
 * 5. As WinSCP runs it: one paramiko session that sends WinSCP's version string uploads
 *    win.bin.filepart (putfo from a generator), then STAT, RENAME, SETSTAT: the gateway parks the
 *    .filepart at CLOSE and the rename finishes it in place.
 * Each resulting object is checked: size, sha256 (streamed GetObject) against what was sent,
 * the sources gone, nothing else left in the bucket.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  UploadPartCopyCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  GIB,
  MIB,
  bucketUploads,
  createScratchBucket,
  curlUpload,
  listBucket,
  objectSha256,
  removeBucket,
  showUpload,
  startGatewayProcess,
  sweepScratchBuckets,
  type GatewayProcess,
  type StreamUpload,
} from '../spec/helpers/big-upload.js';
import { killAllOnExit, track } from './lib/children.js';
import { ROOT, adminClient, fmtSize, gitState, loadStore, log, machineLine, parseSize, type Store } from './lib/gateway-bench.js';
import { waitQuiet } from './lib/proc.js';

function usage(): string {
  return `usage: node dist/bench/rename.js [options]
  --size SIZE       the file's size (default 6G)
  --max-parts N     passed to the gateway (default: its own)
  --no-verify       skip the sha256 read-backs
  --quiet-wait S    wait up to S seconds for an idle machine before each step (default 30)`;
}

const { values: opt } = parseArgs({
  options: {
    size: { type: 'string', default: '6G' },
    'max-parts': { type: 'string' },
    'no-verify': { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: '30' },
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
const QUIET_WAIT_MS = Number(opt['quiet-wait']) * 1000;
if (!(SIZE > 0) || !(QUIET_WAIT_MS >= 0) || (MAX_PARTS !== undefined && !/^\d+$/.test(MAX_PARTS))) throw new Error(usage());
const SEED = `rename bench ${SIZE}`;
/** The gateway's defaults (src/s3/options.ts): one CopyObject up to 5 GiB, else 512 MiB parts, 4 at a time. */
const COPY_THRESHOLD = 5 * GIB;
const COPY_PART = 512 * MIB;
const COPY_CONCURRENCY = 4;
/** Hang guards, not expectations. */
const UPLOAD_DEADLINE_MS = 120_000 + (SIZE / 10e6) * 1000;
const OPS_DEADLINE_MS = 120_000 + (SIZE / 5e6) * 1000;

async function quiet(): Promise<void> {
  if (QUIET_WAIT_MS > 0) {
    const load = await waitQuiet(QUIET_WAIT_MS);
    if (load >= 0.15) log(`  note: the machine was still busy (${load.toFixed(2)} cores) after ${QUIET_WAIT_MS / 1000} s`);
  }
}

// ------------------------------------------------------------------ clients

async function upload(gw: GatewayProcess, store: Store, dir: string, remotePath: string): Promise<StreamUpload> {
  await quiet();
  const up = await curlUpload({
    port: gw.port,
    creds: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
    remotePath,
    size: SIZE,
    seed: SEED,
    dir,
    timeoutMs: UPLOAD_DEADLINE_MS,
  });
  if (up.code !== 0 || up.sent !== SIZE) throw new Error(`${showUpload(up)}\n${gw.problems().join('\n')}\n${gw.logTail(10)}`);
  return up;
}

interface OpResult {
  op: string;
  ok: boolean;
  sec: number;
  error?: string;
  value?: unknown;
}

/** One paramiko session running `ops` (bench/lib/sftp-ops.py); the secret goes by environment. */
async function sftpOps(
  gw: GatewayProcess,
  store: Store,
  ops: Array<Record<string, unknown>>,
  clientVersion?: string,
): Promise<OpResult[]> {
  const script = path.join(ROOT, 'bench/lib/sftp-ops.py');
  const spec = { port: gw.port, user: store.accessKeyId, ops, ...(clientVersion ? { clientVersion } : {}) };
  const child = track(
    spawn('python3', [script, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, S3GW_BENCH_SECRET: store.secretAccessKey },
    }),
  );
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-4000)));
  const timer = setTimeout(() => child.kill('SIGKILL'), OPS_DEADLINE_MS);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  let r: { ok: boolean; error?: string; results?: OpResult[] };
  try {
    r = JSON.parse(out.trim().split('\n').pop() ?? '') as typeof r;
  } catch {
    throw new Error(`sftp-ops.py: no JSON (exit ${code}): ${out}\n${err}`);
  }
  if (!r.ok) throw new Error(`sftp-ops.py failed: ${r.error}\n${gw.problems().join('\n')}`);
  return r.results!;
}

function must(r: OpResult | undefined, what: string): number {
  if (!r?.ok) throw new Error(`${what} failed: ${r?.error ?? 'no result'}`);
  return r.sec;
}

// ------------------------------------------------------------------ the direct reference

/** Copies as src/s3/copy.ts does, with the SDK alone; returns seconds. */
async function directCopy(s3: S3Client, bucket: string, from: string, to: string): Promise<number> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: from }));
  const size = head.ContentLength ?? 0;
  const source = `${bucket}/${from}`;
  const t0 = performance.now();
  if (size <= COPY_THRESHOLD) {
    await s3.send(
      new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: source, CopySourceIfMatch: head.ETag, MetadataDirective: 'COPY', ServerSideEncryption: 'AES256' }),
    );
    return (performance.now() - t0) / 1000;
  }
  const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: to, Metadata: head.Metadata ?? {}, ServerSideEncryption: 'AES256' }));
  const uploadId = created.UploadId!;
  const count = Math.ceil(size / COPY_PART);
  const parts: CompletedPart[] = new Array(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const first = i * COPY_PART;
      const last = Math.min(size, first + COPY_PART) - 1;
      const out = await s3.send(
        new UploadPartCopyCommand({
          Bucket: bucket,
          Key: to,
          UploadId: uploadId,
          PartNumber: i + 1,
          CopySource: source,
          CopySourceIfMatch: head.ETag,
          CopySourceRange: `bytes=${first}-${last}`,
        }),
      );
      parts[i] = { PartNumber: i + 1, ETag: out.CopyPartResult?.ETag };
    }
  };
  try {
    await Promise.all(Array.from({ length: COPY_CONCURRENCY }, worker));
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
  } catch (err) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: to, UploadId: uploadId })).catch(() => {});
    throw err;
  }
  return (performance.now() - t0) / 1000;
}

// ------------------------------------------------------------------ checks

async function expectObject(s3: S3Client, bucket: string, key: string, sha256: string): Promise<void> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  if (head.ContentLength !== SIZE) throw new Error(`${key}: ${head.ContentLength} bytes, wanted ${SIZE}`);
  if (opt['no-verify']) return;
  log(`  reading ${key} back for its sha256`);
  const got = await objectSha256(s3, bucket, key);
  if (got.sha256 !== sha256) throw new Error(`${key}: the object differs from what was sent`);
}

async function expectOnly(s3: S3Client, bucket: string, keys: string[]): Promise<void> {
  const have = (await listBucket(s3, bucket)).map((o) => o.key).sort();
  const pending = await bucketUploads(s3, bucket);
  if (JSON.stringify(have) !== JSON.stringify([...keys].sort()) || pending.length) {
    throw new Error(`the bucket holds ${JSON.stringify(have)} and ${pending.length} pending uploads; wanted ${JSON.stringify(keys)}`);
  }
}

// ------------------------------------------------------------------ main

killAllOnExit();
const store = await loadStore();
const s3 = adminClient(store);
const swept = await sweepScratchBuckets(s3);
if (swept.length) log(`bench: removed scratch buckets of dead runs: ${swept.join(', ')}`);
const dir = mkdtempSync(path.join(tmpdir(), 's3gw-rename-'));
const bucket = await createScratchBucket(s3, 'rename');
const gw = await startGatewayProcess({ endpoint: store.endpoint, region: store.region, dir, args: MAX_PARTS ? ['--max-parts', MAX_PARTS] : [] });
const p = (key: string) => `/${bucket}/${key}`;
try {
  log(`bench: plain upload of ${fmtSize(SIZE)}`);
  const plain = await upload(gw, store, dir, p('plain.bin'));
  log(`  ${plain.wallSec.toFixed(1)} s`);
  await expectObject(s3, bucket, 'plain.bin', plain.sha256);

  log('bench: direct SDK copy and delete (the reference)');
  await quiet();
  const t0 = performance.now();
  const refCopy = await directCopy(s3, bucket, 'plain.bin', 'direct.bin');
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'plain.bin' }));
  const refTotal = (performance.now() - t0) / 1000;
  log(`  copy ${refCopy.toFixed(1)} s, with the delete ${refTotal.toFixed(1)} s`);

  log('bench: SFTP rename');
  await quiet();
  const [ren] = await sftpOps(gw, store, [{ op: 'rename', from: p('direct.bin'), to: p('renamed.bin') }]);
  const renameSec = must(ren, 'rename');
  log(`  ${renameSec.toFixed(1)} s`);
  await expectObject(s3, bucket, 'renamed.bin', plain.sha256);
  await expectOnly(s3, bucket, ['renamed.bin']);
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'renamed.bin' }));

  log('bench: WinSCP-style upload (name.filepart, close, rename, setstat)');
  const flowUp = await upload(gw, store, dir, p('flow.bin.filepart'));
  log(`  upload ${flowUp.wallSec.toFixed(1)} s`);
  const mtime = 1_700_000_000;
  const ops = await sftpOps(gw, store, [
    { op: 'stat', path: p('flow.bin') },
    { op: 'rename', from: p('flow.bin.filepart'), to: p('flow.bin'), mustSucceed: true },
    { op: 'utime', path: p('flow.bin'), mtime, mustSucceed: true },
    { op: 'stat', path: p('flow.bin'), mustSucceed: true },
  ]);
  if (ops[0]!.ok) throw new Error('flow.bin existed before the rename');
  const statSec = ops[0]!.sec;
  const flowRename = must(ops[1], 'rename of the .filepart');
  const setstat = must(ops[2], 'setstat');
  log(`  stat ${statSec.toFixed(3)} s, rename ${flowRename.toFixed(1)} s, setstat ${setstat.toFixed(1)} s`);
  await expectObject(s3, bucket, 'flow.bin', flowUp.sha256);
  await expectOnly(s3, bucket, ['flow.bin']);
  if (gw.problems().length) throw new Error(`the gateway logged warnings or errors:\n${gw.problems().join('\n')}`);

  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'flow.bin' }));

  // The same flow as WinSCP itself runs it: one session, which the gateway knows by its version
  // string, so the .filepart is parked at CLOSE and the RENAME finishes it in place (filepart.ts).
  log('bench: the same flow on one session that says it is WinSCP (paramiko putfo, then stat, rename, setstat)');
  await quiet();
  const win = await sftpOps(
    gw,
    store,
    [
      { op: 'upload', path: p('win.bin.filepart'), size: SIZE, mustSucceed: true },
      { op: 'stat', path: p('win.bin') },
      { op: 'rename', from: p('win.bin.filepart'), to: p('win.bin'), mustSucceed: true },
      { op: 'utime', path: p('win.bin'), mtime, mustSucceed: true },
    ],
    'SSH-2.0-WinSCP_release_6.3.5',
  );
  const winUp = must(win[0], 'upload as WinSCP');
  const winRename = must(win[2], 'rename as WinSCP');
  const winSetstat = must(win[3], 'setstat as WinSCP');
  log(`  upload ${winUp.toFixed(1)} s, rename ${winRename.toFixed(3)} s, setstat ${winSetstat.toFixed(1)} s`);
  await expectObject(s3, bucket, 'win.bin', (win[0]!.value as { sha256: string }).sha256);
  await expectOnly(s3, bucket, ['win.bin']);

  const flowTotal = flowUp.wallSec + statSec + flowRename + setstat;
  const f1 = (x: number) => x.toFixed(1);
  const mbps = (s: number) => (SIZE / 1e6 / s).toFixed(0);
  console.log(
    [
      machineLine(),
      '',
      `${fmtSize(SIZE)} file, s3gw source: ${gitState()}; gateway \`node <NODE_FLAGS> dist/src/cli.js\`` +
        `${MAX_PARTS ? ` --max-parts ${MAX_PARTS}` : ''} (defaults: copies of up to 5 GiB in one CopyObject, larger ones in ` +
        `512 MiB UploadPartCopy parts, 4 at a time); uploads with curl -T - (libssh2) from a pipe, SFTP requests ` +
        `timed on a paramiko session from request to answer. Reference: the same copy made with @aws-sdk/client-s3 ` +
        `from this process, then DeleteObject.`,
      '',
      '| step | seconds | MB/s of the file |',
      '|---|---|---|',
      `| SFTP RENAME (copy + delete in the gateway) | ${f1(renameSec)} | ${mbps(renameSec)} |`,
      `| direct SDK: ${SIZE > COPY_THRESHOLD ? `multipart copy (${Math.ceil(SIZE / COPY_PART)} parts)` : 'CopyObject'} | ${f1(refCopy)} | ${mbps(refCopy)} |`,
      `| direct SDK: the copy + DeleteObject | ${f1(refTotal)} | ${mbps(refTotal)} |`,
      `| plain upload (curl -T -, to the name) | ${f1(plain.wallSec)} | ${mbps(plain.wallSec)} |`,
      `| WinSCP-style: upload to name.filepart | ${f1(flowUp.wallSec)} | ${mbps(flowUp.wallSec)} |`,
      `| WinSCP-style: STAT name (absent) | ${statSec.toFixed(3)} | |`,
      `| WinSCP-style: RENAME name.filepart name | ${f1(flowRename)} | ${mbps(flowRename)} |`,
      `| WinSCP-style: SETSTAT mtime | ${f1(setstat)} | ${mbps(setstat)} |`,
      `| WinSCP-style: total | ${f1(flowTotal)} | ${mbps(flowTotal)} |`,
      `| as WinSCP (one session, parked .filepart): upload (paramiko) | ${f1(winUp)} | ${mbps(winUp)} |`,
      `| as WinSCP: RENAME name.filepart name | ${winRename.toFixed(3)} | |`,
      `| as WinSCP: SETSTAT mtime | ${f1(winSetstat)} | ${mbps(winSetstat)} |`,
      '',
      '| ratio | value |',
      '|---|---|',
      `| SFTP rename / direct copy + delete | ${(renameSec / refTotal).toFixed(2)} |`,
      `| WinSCP-style total / plain upload | ${(flowTotal / plain.wallSec).toFixed(2)} |`,
      `| (rename + setstat) / plain upload | ${((flowRename + setstat) / plain.wallSec).toFixed(2)} |`,
      `| as WinSCP: rename / rename of the same file by copy | ${(winRename / flowRename).toFixed(3)} |`,
    ].join('\n'),
  );
} finally {
  await gw.stop();
  await removeBucket(s3, bucket).catch((err: Error) => log(`bench: could not remove ${bucket}: ${err.message}`));
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
