/**
 * Shared by bench/gateway-throughput.ts and bench/gateway-memory.ts: the s3gw gateway and
 * `rclone serve sftp` as child processes, OpenSSH `sftp -b` runs through client-driver.py (exact
 * client CPU from wait4), the S3 store's credentials and MinIO's pid, an admin S3 client for
 * setting up, checking and cleaning up, and test files in tmpfs.
 *
 * Children are registered with children.ts, so every one of them is killed by pid at the end.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import { cpus } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { NODE_FLAGS } from '../../src/node-flags.js';
import { killTree, track } from './children.js';
import { readStat } from './proc.js';
import { freePort, sleep } from './sshd.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench/lib
export const ROOT = path.resolve(HERE, '../../..');
/** Not compiled: the source tree's copy. */
const DRIVER = path.join(ROOT, 'bench/lib/client-driver.py');
export const CLI = path.join(ROOT, 'dist/src/cli.js');
export const GIB = 1024 ** 3;
export const MIB = 1024 ** 2;

export const log = (s: string) => process.stderr.write(s + '\n');

// ------------------------------------------------------------------ S3 store

export interface Store {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  source: string;
  /** The local MinIO's pid (undefined with S3GW_S3_EXTERNAL=1: its CPU is then not measured). */
  minioPid: number | undefined;
  minioVersion: string;
}

/** The local MinIO of scripts/local-s3.sh (or the S3GW_TEST_* endpoint), logged in as its admin user. */
export async function loadStore(): Promise<Store> {
  const { requireS3 } = await import('../../spec/helpers/s3-env.js');
  const s3 = await requireS3();
  let minioPid: number | undefined;
  let minioVersion = 'external S3 (S3GW_S3_EXTERNAL=1)';
  if (process.env.S3GW_S3_EXTERNAL !== '1') {
    const pidFile = path.join(ROOT, '.state/minio/minio.pid');
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (!readStat(pid)) throw new Error(`MinIO (pid ${pid} from ${pidFile}) is not running: run 'bash scripts/local-s3.sh start'`);
    minioPid = pid;
    const v = path.join(ROOT, '.tools/bin/minio.version');
    minioVersion = existsSync(v) ? readFileSync(v, 'utf8').trim() : 'minio';
  }
  if (!s3.endpoint.startsWith('http://127.0.0.1') && !s3.endpoint.startsWith('http://localhost')) {
    log(`bench: note: the S3 endpoint ${s3.endpoint} is not on loopback`);
  }
  return {
    endpoint: s3.endpoint,
    region: s3.region,
    accessKeyId: s3.admin.accessKeyId,
    secretAccessKey: s3.admin.secretAccessKey,
    source: s3.source,
    minioPid,
    minioVersion,
  };
}

export function adminClient(store: Store): S3Client {
  return new S3Client({
    endpoint: store.endpoint,
    region: store.region,
    forcePathStyle: true,
    credentials: { accessKeyId: store.accessKeyId, secretAccessKey: store.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** A bucket of the benchmark's own, so nothing it does touches the test buckets. */
export async function createBenchBucket(s3: S3Client, prefix: string): Promise<string> {
  const bucket = `${prefix}-${Date.now().toString(36)}-${process.pid}`;
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

/** Size of an object, or undefined when there is none. */
export async function objectSize(s3: S3Client, bucket: string, key: string): Promise<number | undefined> {
  try {
    const h = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return h.ContentLength;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw err;
  }
}

/** sha256 and length of an object, streamed; shared with the large-upload test. */
export { objectSha256 } from '../../spec/helpers/big-upload.js';

export async function deleteKeys(s3: S3Client, bucket: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const batch = keys.slice(i, i + 1000);
    if (batch.length === 0) continue;
    await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }));
  }
}

/** Deletes every object and pending multipart upload in the bucket, then the bucket. */
export async function removeBucket(s3: S3Client, bucket: string): Promise<void> {
  for (;;) {
    const l = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    const keys = (l.Contents ?? []).map((o) => o.Key!).filter(Boolean);
    if (keys.length === 0) break;
    await deleteKeys(s3, bucket, keys);
  }
  const mp = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  for (const u of mp.Uploads ?? []) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key!, UploadId: u.UploadId! }));
  }
  await s3.send(new DeleteBucketCommand({ Bucket: bucket }));
}

// ------------------------------------------------------------------ files and keys

/** `size` random bytes into `file` (tmpfs); returns their sha256. */
export function makeRandomFile(file: string, size: number): string {
  const fd = openSync(file, 'w', 0o600);
  const h = createHash('sha256');
  const chunk = Buffer.allocUnsafe(16 * MIB);
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(chunk.length, left);
      const view = chunk.subarray(0, n);
      randomFillSync(view);
      h.update(view);
      let w = 0;
      while (w < n) w += writeSync(fd, view, w, n - w);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

export async function sha256File(file: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * MIB })) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), bytes };
}

export interface HostKey {
  file: string;
  /** Its authorized_keys line (for the SSH core server, which logs clients in by key). */
  publicLine: string;
}

export function makeEd25519Key(file: string, comment: string): HostKey {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
  return { file, publicLine: readFileSync(file + '.pub', 'utf8').trim() };
}

// ------------------------------------------------------------------ CPU and ports

/** Seconds of user + system CPU of a live process (all threads); throws when it is gone. */
export function cpuOf(pid: number): number {
  const s = readStat(pid);
  if (!s) throw new Error(`process ${pid} is gone`);
  return s.user + s.sys;
}

/** The same, split: seconds of user and of system (kernel) time. */
export function cpuSplit(pid: number): { user: number; sys: number } {
  const s = readStat(pid);
  if (!s) throw new Error(`process ${pid} is gone`);
  return { user: s.user, sys: s.sys };
}

/**
 * Bytes a live process has passed to write(2) and its kin, sockets included (/proc/<pid>/io
 * wchar): a server's lower bound on what it sent during a download.
 */
export function bytesWritten(pid: number): number {
  const m = /^wchar:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  if (!m) throw new Error(`no wchar in /proc/${pid}/io`);
  return Number(m[1]);
}

/**
 * Waits until a process has stopped using CPU (no tick in `quietMs`), at most `maxMs`: the tail
 * of a transfer (a connection's teardown, a last part) belongs to it.
 */
export async function cpuSettled(pid: number, quietMs = 300, maxMs = 5000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = cpuOf(pid);
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(50);
    const now = cpuOf(pid);
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
}

export async function waitForPort(port: number, child: ChildProcess, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it listened`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what}: nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function stopChild(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => killTree(child), timeoutMs);
  await exited;
  clearTimeout(timer);
}

// ------------------------------------------------------------------ the gateway

export interface GatewayOptions {
  dir: string;
  hostKey: string;
  store: Store;
  /** Node flags, e.g. --cpu-prof. */
  execArgv?: string[];
  /** Where its log goes (one JSON record a line, plus anything else it prints). */
  logFile: string;
}

/**
 * `node dist/src/cli.js` as a child. Its log (stderr) is read for the "connection closed"
 * records, so that a measurement can wait until the gateway is done with a connection.
 */
export class Gateway {
  readonly child: ChildProcess;
  readonly port: number;
  closed = 0;
  logins = 0;
  private waiters: { n: number; resolve: () => void }[] = [];
  private recordWaiters: { msg: string; resolve: (rec: Record<string, unknown>) => void }[] = [];
  private readonly tail: string[] = [];
  private readonly logFd: number;
  private logClosed = false;

  private constructor(child: ChildProcess, port: number, logFile: string) {
    this.child = child;
    this.port = port;
    this.logFd = openSync(logFile, 'a');
    const rl = readline.createInterface({ input: child.stderr! });
    rl.on('line', (line) => {
      if (!this.logClosed) writeSync(this.logFd, line + '\n');
      this.tail.push(line);
      if (this.tail.length > 40) this.tail.shift();
      if (!line.startsWith('{')) return;
      let rec: { msg?: string; level?: string };
      try {
        rec = JSON.parse(line) as { msg?: string; level?: string };
      } catch {
        return;
      }
      const rw = this.recordWaiters.findIndex((w) => w.msg === rec.msg);
      if (rw >= 0) this.recordWaiters.splice(rw, 1)[0]!.resolve(rec as Record<string, unknown>);
      if (rec.msg === 'connection closed') {
        this.closed++;
        this.waiters = this.waiters.filter((w) => (this.closed >= w.n ? (w.resolve(), false) : true));
      } else if (rec.msg === 'login') this.logins++;
      if (rec.level === 'warn' || rec.level === 'error') log(`  gateway ${rec.level}: ${line.slice(0, 400)}`);
    });
    child.stdout!.resume();
  }

  static async start(o: GatewayOptions): Promise<Gateway> {
    const port = await freePort();
    const args = [
      // The flags the CLI would otherwise re-run node with: the measured process is the server.
      ...NODE_FLAGS,
      ...(o.execArgv ?? []),
      CLI,
      '--listen', `127.0.0.1:${port}`,
      '--host-key', o.hostKey,
      '--state-dir', path.join(o.dir, 'gateway-state'),
      '--s3-endpoint', o.store.endpoint,
      '--s3-region', o.store.region,
      '--s3-path-style',
      // One process, the one measured; benchmarks run as root on the bench machine.
      '--workers', '1',
      ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
    ];
    const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: o.dir }));
    const gw = new Gateway(child, port, o.logFile);
    await waitForPort(port, child, 'the gateway').catch((err: Error) => {
      throw new Error(`${err.message}\n${gw.tail.join('\n')}`);
    });
    // The readiness probe was a connection too.
    await gw.waitClosed(1, 5000).catch(() => {});
    return gw;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  lastLog(): string {
    return this.tail.join('\n');
  }

  /** Resolves once `n` connections in all have closed. */
  waitClosed(n: number, timeoutMs = 30_000): Promise<void> {
    if (this.closed >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`the gateway reported ${this.closed} closed connections, waited for ${n} (${timeoutMs} ms)`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ n, resolve: done });
    });
  }

  /** The next log record with this message. */
  nextRecord(msg: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.recordWaiters = this.recordWaiters.filter((w) => w.resolve !== done);
        reject(new Error(`the gateway logged no "${msg}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (rec: Record<string, unknown>) => {
        clearTimeout(timer);
        resolve(rec);
      };
      this.recordWaiters.push({ msg, resolve: done });
    });
  }

  /** SIGTERM (the CLI closes and exits, so --cpu-prof writes its profile); SIGKILL after 10 s. */
  async stop(): Promise<void> {
    await stopChild(this.child);
    if (!this.logClosed) {
      this.logClosed = true;
      closeSync(this.logFd);
    }
  }
}

// ------------------------------------------------------------------ rclone serve sftp

export const RCLONE_USER = 'bench';

export interface Rclone {
  child: ChildProcess;
  port: number;
  password: string;
  version: string;
  flags: string[];
  stop(): Promise<void>;
}

export function rcloneVersion(): string | undefined {
  // --config: without one, rclone creates ~/.config/rclone.
  const r = spawnSync('rclone', ['version', '--config', '/dev/null'], { encoding: 'utf8' });
  if (r.status !== 0 || r.error) return undefined;
  return r.stdout.split('\n')[0]?.trim();
}

/**
 * `rclone serve sftp` over the same store, with rclone's defaults (no VFS cache: uploads stream
 * to S3 as multipart uploads, downloads are ranged reads). The remote is configured by
 * environment variables only. AWS_CA_BUNDLE is removed from its environment: rclone's S3 client
 * refuses to start when it is set ("LoadCustomCABundleError"), and the endpoint is plain http.
 * SSE AES256 is set so that MinIO does the same work as for the gateway's uploads.
 */
export async function startRclone(dir: string, hostKey: string, store: Store, logFile: string): Promise<Rclone> {
  const version = rcloneVersion();
  if (!version) throw new Error("rclone is not installed: run 'apt-get install -y rclone' (Debian's package)");
  const port = await freePort();
  const password = 'bench-' + Math.random().toString(36).slice(2);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.AWS_CA_BUNDLE;
  Object.assign(env, {
    RCLONE_CONFIG_MINIO_TYPE: 's3',
    RCLONE_CONFIG_MINIO_PROVIDER: 'Minio',
    RCLONE_CONFIG_MINIO_ENDPOINT: store.endpoint,
    RCLONE_CONFIG_MINIO_REGION: store.region,
    RCLONE_CONFIG_MINIO_ACCESS_KEY_ID: store.accessKeyId,
    RCLONE_CONFIG_MINIO_SECRET_ACCESS_KEY: store.secretAccessKey,
    RCLONE_CONFIG_MINIO_SERVER_SIDE_ENCRYPTION: 'AES256',
  });
  const flags = [
    '--addr', `127.0.0.1:${port}`,
    '--user', RCLONE_USER,
    '--pass', password,
    '--key', hostKey,
    '--config', path.join(dir, 'rclone.conf'),
    '--cache-dir', path.join(dir, 'rclone-cache'),
    '--log-file', logFile,
    '--log-level', 'NOTICE',
  ];
  const child = track(spawn('rclone', ['serve', 'sftp', 'minio:', ...flags], { env, stdio: ['ignore', 'ignore', 'ignore'] }));
  await waitForPort(port, child, 'rclone serve sftp').catch((err: Error) => {
    throw new Error(`${err.message}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''}`);
  });
  return {
    child,
    port,
    password,
    version,
    flags: flags.filter((f, i) => f !== password && flags[i - 1] !== '--pass').map((f) => (f === '--pass' ? '--pass …' : f)),
    stop: () => stopChild(child),
  };
}

// ------------------------------------------------------------------ OpenSSH sftp

export interface SftpTarget {
  port: number;
  user: string;
  password: string;
}

export interface SftpEnv {
  askpass: string;
}

/** An askpass program that answers with S3GW_BENCH_PASSWORD from its environment. */
export function makeAskpass(dir: string): SftpEnv {
  const askpass = path.join(dir, 'askpass.sh');
  writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$S3GW_BENCH_PASSWORD"\n', { mode: 0o700 });
  return { askpass };
}

/**
 * `sftp -b FILE` with password login through askpass, the algorithms forced, and no host key
 * state. `-o BatchMode=no` comes before `-b`, which adds BatchMode=yes (OpenSSH keeps the first).
 */
export function sftpArgv(t: SftpTarget, batchFile: string, cipher: string, mac: string): string[] {
  return ['sftp', ...clientOptions(cipher, mac), '-P', String(t.port), '-b', batchFile, `${t.user}@127.0.0.1`];
}

/**
 * `scp -O FROM TO` (the legacy protocol: exec `scp -t` / `scp -f`, no SFTP), with the same login,
 * algorithms and host key handling as sftpArgv. `remote` marks which of the two is a path on the
 * server ("/bucket/key"): the other is local.
 */
export function scpArgv(t: SftpTarget, from: string, to: string, remote: 'from' | 'to', cipher: string, mac: string): string[] {
  const at = (p: string) => `${t.user}@127.0.0.1:${p}`;
  return [
    'scp',
    '-O',
    ...clientOptions(cipher, mac),
    '-P', String(t.port),
    remote === 'from' ? at(from) : from,
    remote === 'to' ? at(to) : to,
  ];
}

/** The -o options of every OpenSSH bench client; BatchMode=no first, since OpenSSH keeps the first value. */
function clientOptions(cipher: string, mac: string): string[] {
  const o = (kv: string) => ['-o', kv];
  return [
    ...o('BatchMode=no'),
    '-F', '/dev/null',
    ...o('StrictHostKeyChecking=no'),
    ...o('UserKnownHostsFile=/dev/null'),
    ...o('GlobalKnownHostsFile=/dev/null'),
    ...o('LogLevel=ERROR'),
    ...o('ControlMaster=no'),
    ...o('ControlPath=none'),
    ...o('Compression=no'),
    ...o('ConnectTimeout=10'),
    ...o('IdentityAgent=none'),
    ...o('PubkeyAuthentication=no'),
    ...o('PreferredAuthentications=password'),
    ...o('NumberOfPasswordPrompts=1'),
    ...o('KexAlgorithms=curve25519-sha256'),
    ...o('HostKeyAlgorithms=ssh-ed25519'),
    ...o(`Ciphers=${cipher}`),
    ...o(`MACs=${mac}`),
  ];
}

export function sftpEnv(e: SftpEnv, password: string): NodeJS.ProcessEnv {
  return { ...process.env, SSH_ASKPASS: e.askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0', S3GW_BENCH_PASSWORD: password };
}

export interface ClientResult {
  exit: number;
  wallSec: number;
  /** The client process and the children it reaped (sftp: sftp and its ssh). */
  cpu: number;
  /** Of that, system time. */
  sys: number;
  /** Everything on the client side, the driver included (foreign-load accounting). */
  allCpu: number;
  stderr: string;
}

/**
 * Runs one client program through bench/lib/client-driver.py (stdin and stdout /dev/null): its
 * wall time from spawn to exit and its exact CPU from wait4(2). The same driver as
 * ssh-throughput's, called with an argv of our own and an environment.
 */
export async function runClient(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ClientResult> {
  const spec = { argv, upload: null, download: false };
  const driver = track(spawn('python3', [DRIVER, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'], env }));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killTree(driver);
  }, timeoutMs);
  try {
    let out = '';
    let err = '';
    driver.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    driver.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise<number | null>((resolve, reject) => {
      driver.once('error', reject);
      driver.once('close', (c) => resolve(c));
    });
    if (timedOut) throw new Error(`${argv[0]} timed out after ${Math.round(timeoutMs / 1000)} s`);
    if (code !== 0) throw new Error(`client driver failed (${code}): ${err.trim().slice(0, 2000)}`);
    const r = JSON.parse(out) as { exit: number; wall: number; ssh_user: number; ssh_sys: number; all_cpu: number; stderr: string };
    return { exit: r.exit, wallSec: r.wall, cpu: r.ssh_user + r.ssh_sys, sys: r.ssh_sys, allCpu: r.all_cpu, stderr: r.stderr };
  } finally {
    clearTimeout(timer);
    killTree(driver);
  }
}

// ------------------------------------------------------------------ reporting

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** "412 ±4%": the median, and half the min–max range relative to it (with 2+ values). */
export function cell(xs: number[], digits: number): string {
  if (xs.length === 0) return '–';
  const m = median(xs);
  const base = m.toFixed(digits);
  if (xs.length < 2 || m === 0) return base;
  const spread = ((Math.max(...xs) - Math.min(...xs)) / 2 / Math.abs(m)) * 100;
  return `${base} ±${spread.toFixed(0)}%`;
}

export function fmtSize(n: number): string {
  if (n % GIB === 0) return `${n / GIB} GiB`;
  if (n % MIB === 0) return `${n / MIB} MiB`;
  return `${n} bytes`;
}

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${JSON.stringify(s)} (use e.g. 1G, 256M)`);
  const mult = { '': 1, k: 1024, m: MIB, g: GIB }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}

/** Which s3gw was measured: the commit, and whether src/ had uncommitted changes. */
export function gitState(): string {
  const git = (...a: string[]) => spawnSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return 'not a git checkout';
  const dirty = git('status', '--porcelain', '--', 'src').stdout.trim();
  return `commit ${head.stdout.trim()}${dirty ? ', with uncommitted changes in src/' : ''}`;
}

export function machineLine(): string {
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU';
  const mem = /MemTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  const ssh = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  const os = spawnSync('uname', ['-sr'], { encoding: 'utf8' }).stdout.trim();
  return (
    `${new Date().toISOString().slice(0, 10)}, ${cpus().length} vCPU (${cpuModel}), ` +
    `${mem ? `${Math.round(Number(mem) / 1024 / 1024)} GiB RAM, ` : ''}${os}, node ${process.version} ` +
    `(OpenSSL ${process.versions.openssl}), client ${`${ssh.stderr}${ssh.stdout}`.trim()}`
  );
}
