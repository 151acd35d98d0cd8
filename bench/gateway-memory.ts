/**
 * Gateway memory (issue #3 §10): the s3gw process's resident set size with 1 idle SFTP session,
 * with 100 idle sessions, and during 20 concurrent 200 MiB uploads, sampled from /proc every
 * 100 ms. Not a test: it prints figures against the targets (markdown on stdout, progress on
 * stderr) and fails loudly only when a session or an upload fails or is incomplete.
 *
 *   npm run build && node dist/bench/gateway-memory.js [--idle 100] [--uploads 20] [--upload-size 200M]
 *
 * See bench/README.md, "Gateway (issue #3)", for what is measured and how.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { killAll, killAllOnExit, killTree, track } from './lib/children.js';
import { rssMiB } from './lib/proc.js';
import { sleep } from './lib/sshd.js';
import {
  MIB,
  Gateway,
  ROOT,
  adminClient,
  cell,
  createBenchBucket,
  deleteKeys,
  fmtSize,
  gitState,
  loadStore,
  log,
  machineLine,
  makeAskpass,
  makeEd25519Key,
  makeRandomFile,
  median,
  objectSha256,
  objectSize,
  parseSize,
  removeBucket,
  runClient,
  sftpArgv,
  sftpEnv,
  type ClientResult,
  type SftpEnv,
  type Store,
} from './lib/gateway-bench.js';

const TARGET_IDLE_KIB = 64;
const TARGET_UPLOAD_MIB = 8;

function usage(): string {
  return `usage: node dist/bench/gateway-memory.js [options]
  --idle N            idle sessions held at once (default 100; 20 with --quick)
  --uploads N         concurrent uploads (default 20; 5 with --quick; 0 skips the upload step)
  --upload-size SIZE  bytes per upload (default 200M; 64M with --quick)
  --rounds N          repeat everything with a fresh gateway N times (default 1)
  --sample-ms MS      RSS sampling interval (default 100)
  --settle-ms MS      wait after each step before its RSS is read (default 3000)
  --cipher NAME       the uploads' SSH cipher (default aes128-gcm@openssh.com)
  --quick             a fast look: 20 idle sessions, 5 uploads of 64 MiB
  --json FILE         also write every sample as JSON`;
}

const { values: opt } = parseArgs({
  options: {
    idle: { type: 'string' },
    uploads: { type: 'string' },
    'upload-size': { type: 'string' },
    rounds: { type: 'string', default: '1' },
    'sample-ms': { type: 'string', default: '100' },
    'settle-ms': { type: 'string', default: '3000' },
    cipher: { type: 'string', default: 'aes128-gcm@openssh.com' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});
if (opt.help) {
  console.log(usage());
  process.exit(0);
}
const IDLE = Number(opt.idle ?? (opt.quick ? 20 : 100));
const UPLOADS = Number(opt.uploads ?? (opt.quick ? 5 : 20));
const UPLOAD_SIZE = parseSize(opt['upload-size'] ?? (opt.quick ? '64M' : '200M'));
const ROUNDS = Number(opt.rounds);
const SAMPLE_MS = Number(opt['sample-ms']);
const SETTLE_MS = Number(opt['settle-ms']);
const CIPHER = opt.cipher!;
if (!(IDLE >= 2) || !(Number.isInteger(UPLOADS) && UPLOADS >= 0) || !(UPLOAD_SIZE > 0) || !(ROUNDS >= 1) || !(SAMPLE_MS >= 10) || !(SETTLE_MS >= 500)) {
  throw new Error(usage());
}
const UPLOAD_TIMEOUT_MS = 180_000 + ((UPLOADS * UPLOAD_SIZE) / 5e6) * 1000;

// ------------------------------------------------------------------ RSS sampling

interface RssPoint {
  t: number;
  mib: number;
  phase: string;
}

/** Reads the gateway's VmRSS every SAMPLE_MS; each point is tagged with the phase it fell in. */
class Sampler {
  readonly points: RssPoint[] = [];
  phase = 'start';
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = performance.now();

  constructor(pid: number) {
    const take = () => {
      const mib = rssMiB(pid);
      if (mib !== undefined) this.points.push({ t: (performance.now() - this.t0) / 1000, mib, phase: this.phase });
    };
    take();
    this.timer = setInterval(take, SAMPLE_MS);
  }

  /** Waits `ms`, then gives the median of the samples of the last two thirds of that wait. */
  async settled(ms = SETTLE_MS): Promise<number> {
    const from = (performance.now() - this.t0) / 1000 + ms / 3000;
    await sleep(ms);
    const xs = this.points.filter((p) => p.t >= from).map((p) => p.mib);
    if (xs.length === 0) throw new Error('no RSS samples: is the gateway still running?');
    return median(xs);
  }

  peak(phase: string): number {
    return Math.max(...this.points.filter((p) => p.phase === phase).map((p) => p.mib));
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

// ------------------------------------------------------------------ idle sessions (paramiko)

class IdleClient {
  private readonly child: ChildProcess;
  private readonly lines: string[] = [];
  private waiter: ((line: string) => void) | undefined;
  private stderr = '';

  constructor(port: number, user: string, password: string) {
    const script = path.join(ROOT, 'bench/lib/idle-sessions.py');
    this.child = track(spawn('python3', [script, JSON.stringify({ port, user, password })], { stdio: ['pipe', 'pipe', 'pipe'] }));
    readline.createInterface({ input: this.child.stdout! }).on('line', (l) => {
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w(l);
      else this.lines.push(l);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-4000)));
  }

  private async ask(cmd: string, timeoutMs: number): Promise<string> {
    this.child.stdin!.write(cmd + '\n');
    const line =
      this.lines.shift() ??
      (await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`idle-sessions.py: no answer to "${cmd}" in ${timeoutMs} ms: ${this.stderr}`)), timeoutMs);
        this.child.once('exit', (c) => reject(new Error(`idle-sessions.py exited (${c}): ${this.stderr}`)));
        this.waiter = (l) => {
          clearTimeout(timer);
          resolve(l);
        };
      }));
    if (line.startsWith('error')) throw new Error(`idle sessions: ${line}`);
    return line;
  }

  async open(n: number): Promise<number> {
    const line = await this.ask(`open ${n}`, 30_000 + n * 2_000);
    const m = /^ready (\d+)$/.exec(line);
    if (!m) throw new Error(`idle-sessions.py: unexpected answer ${JSON.stringify(line)}`);
    return Number(m[1]);
  }

  async close(): Promise<void> {
    await this.ask('close', 60_000);
    this.child.stdin!.end();
    killTree(this.child);
  }
}

// ------------------------------------------------------------------ one round

/** The gateway's memory at one step: RSS as it settles by itself, then after forced full GCs. */
interface Step {
  /** VmRSS, settled, MiB. */
  rss: number;
  /** VmRSS after full garbage collections, settled, MiB. */
  gcRss: number;
  /** process.memoryUsage() after those collections, MiB. */
  heapUsed: number;
  external: number;
}

interface RoundResult {
  round: number;
  start: Step;
  startPeak: number;
  idle1: Step;
  idleN: Step;
  idlePeak: number;
  afterIdle: Step;
  /** Undefined with --uploads 0 (so are the other upload figures). */
  uploadPeak?: number;
  afterUploads?: Step;
  /** RSS per idle session: (N sessions settled − 1 session after GC) / (N − 1). */
  perIdleKiB: number;
  /** The same after forced GCs, and as heap + external memory. */
  perIdleGcKiB: number;
  perIdleHeapKiB: number;
  /** Peak RSS during the uploads over the RSS before them (after GC), per upload. */
  perUploadMiB?: number;
  uploadWallSec?: number;
  uploadMBps?: number;
  points: RssPoint[];
}

interface World {
  dir: string;
  store: Store;
  s3: S3Client;
  bucket: string;
  hostKey: string;
  source: string;
  sourceSha: string;
  askpass: SftpEnv;
  gateway?: Gateway;
  sampler?: Sampler;
  idle?: IdleClient;
}

/** bench/lib/gc-on-signal.js, preloaded: SIGUSR2 makes the gateway collect garbage and report. */
const GC_PRELOAD = path.join(ROOT, 'dist/bench/lib/gc-on-signal.js');

async function step(gw: Gateway, s: Sampler, label: string): Promise<Step> {
  const rss = await s.settled();
  const report = gw.nextRecord('bench gc');
  process.kill(gw.pid, 'SIGUSR2');
  const rec = await report;
  const gcRss = await s.settled(Math.max(1500, SETTLE_MS / 2));
  const st = { rss, gcRss, heapUsed: Number(rec.heapUsed) / MIB, external: Number(rec.external) / MIB };
  log(
    `  ${label}: RSS ${rss.toFixed(1)} MiB; after full GC ${gcRss.toFixed(1)} MiB ` +
      `(heap ${st.heapUsed.toFixed(1)} MiB, external ${st.external.toFixed(1)} MiB)`,
  );
  return st;
}

async function round(w: World, n: number): Promise<RoundResult> {
  const gw = await Gateway.start({
    dir: w.dir,
    hostKey: w.hostKey,
    store: w.store,
    logFile: path.join(w.dir, `gateway-${n}.log`),
    execArgv: ['--expose-gc', '--import', pathToFileURL(GC_PRELOAD).href],
  });
  w.gateway = gw;
  const s = new Sampler(gw.pid);
  w.sampler = s;
  log(`round ${n}: gateway pid ${gw.pid} on 127.0.0.1:${gw.port}`);

  s.phase = 'start';
  const start = await step(gw, s, 'started, no session');
  const startPeak = s.peak('start');

  const logins0 = gw.logins;
  const closed0 = gw.closed;
  const idle = new IdleClient(gw.port, w.store.accessKeyId, w.store.secretAccessKey);
  w.idle = idle;
  s.phase = 'idle-1';
  await idle.open(1);
  const idle1 = await step(gw, s, '1 idle session');

  s.phase = `idle-${IDLE}`;
  const total = await idle.open(IDLE - 1);
  if (total !== IDLE) throw new Error(`idle sessions: ${total} open, wanted ${IDLE}`);
  const stillOpen = gw.logins - logins0 - (gw.closed - closed0);
  if (stillOpen < IDLE) throw new Error(`the gateway holds ${stillOpen} logged-in connections, wanted ${IDLE}`);
  const idleN = await step(gw, s, `${IDLE} idle sessions`);
  const idlePeak = s.peak(`idle-${IDLE}`);

  s.phase = 'idle-close';
  const closedBefore = gw.closed;
  await idle.close();
  w.idle = undefined;
  await gw.waitClosed(closedBefore + IDLE);
  const afterIdle = await step(gw, s, 'after closing them');

  const up = UPLOADS > 0 ? await uploads(w, gw, s, n) : undefined;

  s.stop();
  w.sampler = undefined;
  await gw.stop();
  w.gateway = undefined;
  const per = (a: number, b: number) => ((a - b) * 1024) / (IDLE - 1);
  return {
    round: n,
    start,
    startPeak,
    idle1,
    idleN,
    idlePeak,
    afterIdle,
    // From the state just before the other sessions opened (idle1 after its GC) to N sessions settled.
    perIdleKiB: per(idleN.rss, idle1.gcRss),
    perIdleGcKiB: per(idleN.gcRss, idle1.gcRss),
    perIdleHeapKiB: per(idleN.heapUsed + idleN.external, idle1.heapUsed + idle1.external),
    ...(up
      ? {
          uploadPeak: up.peak,
          afterUploads: up.after,
          perUploadMiB: (up.peak - afterIdle.gcRss) / UPLOADS,
          uploadWallSec: up.wallSec,
          uploadMBps: up.mbps,
        }
      : {}),
    points: s.points,
  };
}

/** The upload step: UPLOADS OpenSSH sftp puts at once, each checked afterwards. */
async function uploads(
  w: World,
  gw: Gateway,
  s: Sampler,
  n: number,
): Promise<{ peak: number; after: Step; wallSec: number; mbps: number }> {
  // Concurrent uploads: each an OpenSSH sftp put of the same tmpfs file to a key of its own.
  s.phase = 'uploads';
  const target = { port: gw.port, user: w.store.accessKeyId, password: w.store.secretAccessKey };
  const keys = Array.from({ length: UPLOADS }, (_, i) => `mem-r${n}-${i}`);
  const closedBeforeUploads = gw.closed;
  const t0 = performance.now();
  const runs: ClientResult[] = await Promise.all(
    keys.map((key, i) => {
      const batch = path.join(w.dir, `batch-${i}`);
      writeFileSync(batch, `put ${w.source} /${w.bucket}/${key}\n`);
      return runClient(sftpArgv(target, batch, CIPHER, 'hmac-sha2-256-etm@openssh.com'), sftpEnv(w.askpass, target.password), UPLOAD_TIMEOUT_MS);
    }),
  );
  const wallSec = (performance.now() - t0) / 1000;
  await gw.waitClosed(closedBeforeUploads + UPLOADS);
  const peak = s.peak('uploads');
  s.phase = 'after-uploads';
  for (const [i, r] of runs.entries()) {
    if (r.exit !== 0) throw new Error(`upload ${i + 1}: sftp exited with ${r.exit}: ${r.stderr.trim().slice(0, 1000)}`);
  }
  const mbps = (UPLOADS * UPLOAD_SIZE) / wallSec / 1e6;
  log(`  ${UPLOADS} concurrent uploads of ${fmtSize(UPLOAD_SIZE)}: peak RSS ${peak.toFixed(1)} MiB, ${mbps.toFixed(0)} MB/s in all`);
  const after = await step(gw, s, 'after the uploads');
  for (const key of keys) {
    const size = await objectSize(w.s3, w.bucket, key);
    if (size !== UPLOAD_SIZE) throw new Error(`upload ${key}: INCOMPLETE TRANSFER: the object holds ${size ?? 'nothing'} of ${UPLOAD_SIZE} bytes`);
  }
  const h = await objectSha256(w.s3, w.bucket, keys[0]!);
  if (h.sha256 !== w.sourceSha) throw new Error(`upload ${keys[0]}: CORRUPT TRANSFER: sha256 ${h.sha256}, source ${w.sourceSha}`);
  await deleteKeys(w.s3, w.bucket, keys);
  return { peak, after, wallSec, mbps };
}

// ------------------------------------------------------------------ report

function report(rs: RoundResult[]): string {
  const col = (f: (r: RoundResult) => number, d = 1) => cell(rs.map(f), d);
  const ok = (v: number, max: number) => (v <= max ? '✓' : '✗');
  const perIdle = median(rs.map((r) => r.perIdleKiB));
  // Every round has the upload figures, or none does (--uploads 0).
  const withUploads = UPLOADS > 0;
  const up =
    <T>(f: (r: RoundResult) => T | undefined) =>
    (r: RoundResult): T =>
      f(r)!;
  const row = (label: string, f: (r: RoundResult) => Step, peak?: (r: RoundResult) => number) =>
    `| ${label} | ${col((r) => f(r).rss)} | ${peak ? col(peak) : ''} | ${col((r) => f(r).gcRss)} | ${col((r) => f(r).heapUsed)} | ${col((r) => f(r).external)} |`;
  return [
    machineLine(),
    `Gateway \`node --expose-gc --import dist/bench/lib/gc-on-signal.js dist/src/cli.js\` (defaults), s3gw source: ${gitState()}. ` +
      `VmRSS from /proc every ${SAMPLE_MS} ms; "settled" is the median over the last ${((SETTLE_MS * 2) / 3000).toFixed(1)} s ` +
      `of a ${SETTLE_MS / 1000} s wait after each step; then SIGUSR2 makes the gateway run full GCs and report its heap. ` +
      `${rs.length} round(s), a fresh gateway each; medians, ±: half the min–max range.`,
    `Idle sessions: paramiko (one Python process, its default cipher), password login, sftp subsystem, REALPATH, then idle. ` +
      (withUploads
        ? `Uploads: ${UPLOADS} OpenSSH \`sftp -b\` clients at once, each \`put\` of the same ${fmtSize(UPLOAD_SIZE)} tmpfs file, ${CIPHER}, ` +
          `${median(rs.map(up((r) => r.uploadMBps))).toFixed(0)} MB/s in all; every object's size checked, one by sha256.`
        : 'No uploads (--uploads 0).'),
    '',
    '| state | RSS MiB | peak RSS MiB | RSS after full GC | heap used after GC | external after GC |',
    '|---|---|---|---|---|---|',
    row('started, no session', (r) => r.start, (r) => r.startPeak),
    row('1 idle session', (r) => r.idle1),
    row(`${IDLE} idle sessions`, (r) => r.idleN, (r) => r.idlePeak),
    row('after closing them', (r) => r.afterIdle),
    ...(withUploads
      ? [
          `| during ${UPLOADS} concurrent uploads of ${fmtSize(UPLOAD_SIZE)} | | ${col(up((r) => r.uploadPeak))} | | | |`,
          row('after the uploads', up((r) => r.afterUploads)),
        ]
      : []),
    '',
    '| figure | value | target |',
    '|---|---|---|',
    `| RSS per idle session: (${IDLE} sessions, settled − 1 session, after GC) / ${IDLE - 1} | ${col((r) => r.perIdleKiB, 0)} KiB | ≤ ${TARGET_IDLE_KIB} KiB ${ok(perIdle, TARGET_IDLE_KIB)} |`,
    `| the same after full GCs | ${col((r) => r.perIdleGcKiB, 0)} KiB | |`,
    `| heap + external per idle session after full GCs | ${col((r) => r.perIdleHeapKiB, 0)} KiB | |`,
    `| the first session over none (one-time costs included) | ${col((r) => (r.idle1.rss - r.start.gcRss) * 1024, 0)} KiB | |`,
    ...(withUploads
      ? [
          `| RSS per active upload: (peak during the uploads − RSS before them after GC) / ${UPLOADS} | ${col(up((r) => r.perUploadMiB), 2)} MiB | ≤ ${TARGET_UPLOAD_MIB} MiB ${ok(median(rs.map(up((r) => r.perUploadMiB))), TARGET_UPLOAD_MIB)} |`,
          `| RSS left after the uploads, after full GCs, over before them | ${col((r) => r.afterUploads!.gcRss - r.afterIdle.gcRss, 1)} MiB | |`,
        ]
      : []),
  ].join('\n');
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  if (spawnSync('python3', ['-c', 'import paramiko'], { stdio: 'ignore' }).status !== 0) {
    throw new Error("paramiko is missing: run 'bash scripts/setup-test-deps.sh' (or 'python3 -m pip install paramiko==3.5.1')");
  }
  const dir = mkdtempSync('/dev/shm/s3gw-gwmem-');
  const store = await loadStore();
  const s3 = adminClient(store);
  const w: World = {
    dir,
    store,
    s3,
    bucket: '',
    hostKey: makeEd25519Key(path.join(dir, 'host_ed25519'), 's3gw-bench-host').file,
    source: path.join(dir, 'source.bin'),
    sourceSha: '',
    askpass: makeAskpass(dir),
  };
  try {
    if (UPLOADS > 0) {
      log(`bench: writing ${fmtSize(UPLOAD_SIZE)} of random bytes to ${w.source}`);
      w.sourceSha = makeRandomFile(w.source, UPLOAD_SIZE);
    }
    w.bucket = await createBenchBucket(s3, 's3gw-bench-mem');
    log(`bench: bucket ${w.bucket} at ${store.endpoint}`);
    const results: RoundResult[] = [];
    for (let n = 1; n <= ROUNDS; n++) results.push(await round(w, n));
    if (opt.json) writeFileSync(opt.json, JSON.stringify({ idle: IDLE, uploads: UPLOADS, uploadSize: UPLOAD_SIZE, results }, null, 2));
    console.log(report(results));
  } catch (err) {
    log(`\nbench: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (w.gateway) log(`bench: the gateway's last log lines:\n${w.gateway.lastLog()}`);
    process.exitCode = 1;
  } finally {
    w.sampler?.stop();
    await w.idle?.close().catch(() => {});
    await w.gateway?.stop().catch(() => {});
    if (w.bucket) {
      await removeBucket(s3, w.bucket).catch((err: Error) => {
        log(`bench: could not remove the bench bucket ${w.bucket}: ${err.message}`);
        process.exitCode = 1;
      });
    }
    s3.destroy();
    rmSync(dir, { recursive: true, force: true });
    killAll();
  }
}

killAllOnExit();
await main();
