/**
 * Uploads larger than any file a test should keep on disk (issue 5), shared by
 * spec/gateway/large-upload.test.ts and the benchmarks bench/large-upload.ts and bench/rename.ts:
 *
 * - `keystream`: deterministic bytes (AES-128-CTR over zeros, keyed by a seed), GB/s per core, so
 *   generating them costs the run little and any two runs with one seed send the same bytes;
 * - `startGatewayProcess`: `node <NODE_FLAGS> dist/src/cli.js` as a child process, the real
 *   server as it is deployed, so that its resident set can be read from /proc;
 * - `RssSampler`: the gateway's VmRSS every interval, and on demand, each sample tagged with the
 *   bytes the client had been given by then;
 * - `curlUpload`: curl's `-T -` (libssh2 SFTP) fed from the keystream through a pipe: the server
 *   never learns the size (SFTP has no way to announce it), and nothing touches the disk;
 * - scratch buckets: a bucket per run, so "no temporaries left" can be checked on the whole
 *   bucket, wherever the gateway keeps them; buckets of runs that died are swept at the next start.
 *
 * Nothing here mocks S3: the gateway talks HTTP to the real store.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { NODE_FLAGS } from '../../src/node-flags.js';
import type { S3Credentials } from './s3-env.js';
import { ROOT } from './test-server.js';

export const MIB = 1024 * 1024;
export const GIB = 1024 * MIB;

// ------------------------------------------------------------------ deterministic bytes

/**
 * `size` bytes of AES-128-CTR keystream (key: sha256 of the seed; counter from zero), in pieces
 * of `chunk` bytes. Each piece is a fresh Buffer the consumer may keep.
 */
export function* keystream(size: number, seed: string, chunk = MIB): Generator<Buffer> {
  const key = createHash('sha256').update(`s3gw keystream ${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunk);
  for (let left = size; left > 0; ) {
    const n = Math.min(chunk, left);
    yield cipher.update(n === chunk ? zeros : zeros.subarray(0, n));
    left -= n;
  }
}

// ------------------------------------------------------------------ the gateway as a process

export interface GatewayProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  readonly alive: boolean;
  /** The last log lines (JSON records and anything else it printed). */
  logTail(n?: number): string;
  /** Every warn and error record so far (at most 200 kept), for failure messages. */
  problems(): string[];
  /** The last records of level info and above (debug records can crowd them out of logTail). */
  infoTail(n?: number): string;
  /** How many records with this `msg` it has logged (all of them, kept or not). */
  records(msg: string): number;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface GatewayProcessOptions {
  endpoint: string;
  region: string;
  /** A directory of the caller's; the gateway's --state-dir goes inside it. */
  dir: string;
  /** More CLI flags, e.g. ['--max-parts', '1100']. */
  args?: string[];
  logLevel?: string;
}

export const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const HOST_KEY = path.join(ROOT, 'fixtures', 'host-keys', 'ed25519');
const LISTENING = /listening on 127\.0\.0\.1:(\d+)/;

/** Gateways still running, killed if this process exits without stopping them. */
const running = new Set<ChildProcess>();
let exitHook = false;

/**
 * Starts the CLI under node with NODE_FLAGS itself, so that it serves from this very process (no
 * re-spawned child: src/node-flags.ts), on 127.0.0.1 and a port of the kernel's choosing, which it
 * reads back from the "listening on" record.
 */
export async function startGatewayProcess(o: GatewayProcessOptions): Promise<GatewayProcess> {
  // A private copy of the fixture key: the CLI warns about a key file others may read.
  const hostKey = path.join(o.dir, 'host-ed25519');
  fs.copyFileSync(HOST_KEY, hostKey);
  fs.chmodSync(hostKey, 0o600);
  const args = [
    ...NODE_FLAGS,
    CLI,
    '--listen', '127.0.0.1:0',
    '--host-key', hostKey,
    '--state-dir', path.join(o.dir, 'gateway-state'),
    '--s3-endpoint', o.endpoint,
    '--s3-region', o.region,
    '--s3-path-style',
    '--log-level', o.logLevel ?? 'info',
    // One process, the one measured and signalled; tests run as root here (and in CI).
    '--workers', '1',
    ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
    ...(o.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, S3GW_NO_RESPAWN: '1' },
    cwd: o.dir,
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
  const tail: string[] = [];
  const problems: string[] = [];
  const infos: string[] = [];
  const msgs = new Map<string, number>();
  let port = 0;
  let onPort: (() => void) | undefined;
  const onLine = (line: string) => {
    tail.push(line);
    if (tail.length > 200) tail.splice(0, 100);
    if (/"level":"(warn|error)"/.test(line) && problems.length < 200) problems.push(line);
    if (!line.includes('"level":"debug"')) {
      infos.push(line);
      if (infos.length > 200) infos.splice(0, 100);
    }
    if (line.startsWith('{')) {
      try {
        const msg = (JSON.parse(line) as { msg?: unknown }).msg;
        if (typeof msg === 'string') msgs.set(msg, (msgs.get(msg) ?? 0) + 1);
      } catch {
        // not a record
      }
    }
    const m = port === 0 ? LISTENING.exec(line) : null;
    if (m) {
      port = Number(m[1]);
      onPort?.();
    }
  };
  readline.createInterface({ input: child.stdout! }).on('line', onLine);
  readline.createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not listen within 20 s\n${tail.join('\n')}`)), 20_000);
    onPort = () => {
      clearTimeout(timer);
      resolve();
    };
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the gateway exited (${child.exitCode ?? child.signalCode}) before it listened\n${tail.join('\n')}`));
    });
  }).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    pid: child.pid!,
    port,
    get alive() {
      return alive();
    },
    logTail: (n = 40) => tail.slice(-n).join('\n'),
    problems: () => [...problems],
    infoTail: (n = 40) => infos.slice(-n).join('\n'),
    records: (msg) => msgs.get(msg) ?? 0,
    async stop(graceMs = 10_000) {
      if (!alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ------------------------------------------------------------------ resident set size

/** VmRSS of a live process in KiB (from /proc/<pid>/status), or undefined once it is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export interface RssSample {
  /** Seconds since the sampler started. */
  t: number;
  kib: number;
  /** Bytes the client had been given when the sample was taken. */
  sent: number;
}

/**
 * Samples a process's VmRSS every `intervalMs` and whenever `sample()` is called (a caller that
 * also samples every N bytes gets samples spread over the data whatever the speed).
 */
export class RssSampler {
  readonly samples: RssSample[] = [];
  private readonly pid: number;
  private readonly sent: () => number;
  private readonly t0 = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(pid: number, sent: () => number, intervalMs = 1000) {
    this.pid = pid;
    this.sent = sent;
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    const kib = rssKiB(this.pid);
    if (kib !== undefined) this.samples.push({ t: (performance.now() - this.t0) / 1000, kib, sent: this.sent() });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Max VmRSS (MiB) of the samples whose `sent` lies in [from, to] bytes; -Infinity for none. */
export function maxRssMiB(samples: readonly RssSample[], from: number, to: number): number {
  return Math.max(...samples.filter((s) => s.sent >= from && s.sent <= to).map((s) => s.kib / 1024));
}

// ------------------------------------------------------------------ curl -T - from a pipe

export interface StreamUpload {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Bytes handed to curl (all of them unless it exited early). */
  sent: number;
  /** sha256 of those bytes. */
  sha256: string;
  /** From spawning curl to its exit: login, the data, and the answer to CLOSE. */
  wallSec: number;
  stderr: string;
}

export interface CurlUploadOptions {
  port: number;
  creds: S3Credentials;
  /** "/bucket/key". */
  remotePath: string;
  size: number;
  seed: string;
  /** A private directory for curl's config file (it holds the secret; removed afterwards). */
  dir: string;
  /** Called after each piece is handed over, with the bytes handed over so far. */
  onProgress?: (sent: number) => void;
  /** A hang guard: curl is killed after this long. Not a speed requirement. */
  timeoutMs: number;
}

/** The sftp:// URL of a path ("/bucket/key"), each segment percent-encoded. */
export function sftpUrl(port: number, remotePath: string): string {
  return `sftp://127.0.0.1:${port}${remotePath.split('/').map(encodeURIComponent).join('/')}`;
}

/**
 * Writes a curl config file (mode 0600) holding `user = "ID:SECRET"`, so that the secret is in
 * neither curl's argv (visible in ps) nor any message. Returns its path.
 */
export function curlUserConfig(dir: string, creds: S3Credentials): string {
  const file = path.join(dir, `curl-${randomBytes(4).toString('hex')}.conf`);
  const q = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  fs.writeFileSync(file, `user = "${q(creds.accessKeyId)}:${q(creds.secretAccessKey)}"\n`, { mode: 0o600 });
  return file;
}

/**
 * `curl -T - sftp://…` (libssh2) with the keystream written into its stdin as fast as it takes
 * it (backpressure: the next piece waits for 'drain'). Stops feeding if curl exits early.
 */
export async function curlUpload(o: CurlUploadOptions): Promise<StreamUpload> {
  const config = curlUserConfig(o.dir, o.creds);
  const t0 = performance.now();
  const child = spawn(
    'curl',
    // --insecure: libssh2 would otherwise want the host key in ~/.ssh/known_hosts.
    ['--silent', '--show-error', '--insecure', '--config', config, '-T', '-', sftpUrl(o.port, o.remotePath)],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  running.add(child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 16_384) stderr += d;
  });
  child.stdin!.on('error', () => {}); // EPIPE when curl gives up early: its exit status says why
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, o.timeoutMs);
  let ended = false;
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`curl could not be started (${err.message}); run: bash scripts/setup-test-deps.sh`)));
    child.once('close', (code, signal) => {
      ended = true;
      resolve({ code, signal });
    });
  });
  const hash = createHash('sha256');
  let sent = 0;
  try {
    for (const piece of keystream(o.size, o.seed)) {
      if (ended) break;
      hash.update(piece);
      sent += piece.length;
      const more = child.stdin!.write(piece);
      o.onProgress?.(sent);
      if (!more) await Promise.race([new Promise((r) => child.stdin!.once('drain', r)), closed]);
    }
    child.stdin!.end();
    const { code, signal } = await closed;
    return { code, signal, timedOut, sent, sha256: hash.digest('hex'), wallSec: (performance.now() - t0) / 1000, stderr };
  } finally {
    clearTimeout(timer);
    running.delete(child);
    if (!ended) child.kill('SIGKILL');
    fs.rmSync(config, { force: true });
  }
}

/** curl's result for a failure message (no secret in it: the URL carries none). */
export function showUpload(u: StreamUpload): string {
  return `curl -T -: exit ${u.code}${u.signal ? ` (${u.signal})` : ''}${u.timedOut ? ' TIMED OUT' : ''} after ${u.sent} bytes sent\n${u.stderr}`;
}

// ------------------------------------------------------------------ S3, seen by the admin

/** sha256 and length of an object, streamed (GetObject as whoever `s3` is). */
export async function objectSha256(s3: S3Client, bucket: string, key: string): Promise<{ sha256: string; bytes: number }> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of out.Body as Readable) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}

/** Every object in a bucket: key and size. */
export async function listBucket(s3: S3Client, bucket: string): Promise<Array<{ key: string; size: number }>> {
  const out: Array<{ key: string; size: number }> = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: o.Size ?? -1 });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Multipart uploads in progress anywhere in a bucket. */
export async function bucketUploads(s3: S3Client, bucket: string): Promise<Array<{ key: string; uploadId: string }>> {
  const out: Array<{ key: string; uploadId: string }> = [];
  let keyMarker: string | undefined;
  let idMarker: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListMultipartUploadsCommand({
        Bucket: bucket,
        ...(keyMarker ? { KeyMarker: keyMarker } : {}),
        ...(idMarker ? { UploadIdMarker: idMarker } : {}),
      }),
    );
    for (const u of page.Uploads ?? []) out.push({ key: u.Key!, uploadId: u.UploadId! });
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    idMarker = page.NextUploadIdMarker;
  }
}

/** Scratch buckets are named s3gw-big-<tag>-<pid>-<hex>: the pid says whether their run still lives. */
const SCRATCH = /^s3gw-big-[a-z0-9]+-(\d+)-[0-9a-f]+$/;

/** A bucket of this run's own, for uploads of many GiB; remove it with `removeBucket`. */
export async function createScratchBucket(s3: S3Client, tag: string): Promise<string> {
  if (!/^[a-z0-9]{1,16}$/.test(tag)) throw new Error(`bad scratch bucket tag ${JSON.stringify(tag)}`);
  const bucket = `s3gw-big-${tag}-${process.pid}-${randomBytes(4).toString('hex')}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Deletes every object and pending multipart upload in a bucket, then the bucket. */
export async function removeBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const keys = (await listBucket(s3, bucket)).map((o) => o.key);
    if (keys.length === 0) break;
    for (let i = 0; i < keys.length; i += 1000) {
      const Objects = keys.slice(i, i + 1000).map((Key) => ({ Key }));
      await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects, Quiet: true } }));
    }
  }
  for (const u of await bucketUploads(s3, bucket)) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.key, UploadId: u.uploadId }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the scratch buckets of runs that ended without removing theirs (killed, or the machine
 * restarted): those whose pid is not a live process on this machine. Returns their names.
 */
export async function sweepScratchBuckets(s3: S3Client): Promise<string[]> {
  const out = await s3.send(new ListBucketsCommand({}));
  const dead = (out.Buckets ?? [])
    .map((b) => b.Name ?? '')
    .filter((name) => {
      const m = SCRATCH.exec(name);
      return m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
    });
  for (const name of dead) await removeBucket(s3, name);
  return dead;
}
