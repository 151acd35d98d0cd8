/**
 * Operations load (issue 6 §7), on this machine against the local MinIO, with the real `s3gw`
 * command (as deployed: `node <NODE_FLAGS> dist/src/cli.js`):
 *
 * 1. Handshakes per second with --workers 1 and --workers 2: load generators (bench/lib/
 *    load-client.ts, two processes) connect, exchange keys (curve25519, AES-GCM), log in with a
 *    password and disconnect, over and over. The login's IAM check is cached after the first,
 *    so this measures SSH. Reported with the gateway's CPU per handshake, since generators and
 *    gateway share the machine's cores: 1 worker is the reference. Then the same with a wrong
 *    secret: failed checks are not cached, so each login makes the full IAM call to S3 (MinIO's
 *    CPU per login is reported too; it shares the cores, and other users of the shared MinIO
 *    would show in it).
 * 2. 1,000 concurrent idle SFTP sessions: RSS of the gateway's processes, event-loop lag (its
 *    /metrics), errors; per worker count.
 * 3. 100 concurrent transfers, OpenSSH sftp processes: 50 uploads and 50 downloads of 8 MiB
 *    each: wall time, aggregate MB/s, peak RSS, lag, errors; 1 worker is the reference for 2.
 *
 *   npm run build && node dist/bench/ops-load.js [--seconds 15] [--idle 1000] [--transfers 100] [--size 8M]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { NODE_FLAGS } from '../src/node-flags.js';
import { parseSize } from '../src/config.js';
import { parsePrometheus, sampleValue } from '../spec/helpers/prometheus.js';
import { askpassEnv, sshClientEnv, sshOptions } from '../spec/helpers/gateway.js';
import { CLI, ROOT, adminClient, createBenchBucket, loadStore, log, removeBucket, type Store } from './lib/gateway-bench.js';
import { readStat } from './lib/proc.js';
import { killAllOnExit, track } from './lib/children.js';

const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string' },
    idle: { type: 'string' },
    transfers: { type: 'string' },
    size: { type: 'string' },
  },
});
const SECONDS = Number(opt.seconds ?? 15);
const IDLE = Number(opt.idle ?? 1000);
const TRANSFERS = Number(opt.transfers ?? 100);
const SIZE = parseSize('--size', opt.size ?? '8M');
const LOADGEN = path.join(ROOT, 'dist/bench/lib/load-client.js');
killAllOnExit();

interface Running {
  child: ChildProcess;
  port: number;
  health: number;
  stop(): Promise<void>;
}

async function startGateway(store: Store, workers: number, dir: string): Promise<Running> {
  const hostKey = path.join(dir, 'host-key');
  fs.copyFileSync(path.join(ROOT, 'fixtures/host-keys/ed25519'), hostKey);
  fs.chmodSync(hostKey, 0o600);
  const child = track(
    spawn(
      process.execPath,
      [
        ...NODE_FLAGS,
        CLI,
        '--listen', '127.0.0.1:0',
        '--host-key', hostKey,
        '--state-dir', dir,
        '--s3-endpoint', store.endpoint,
        '--s3-region', store.region,
        '--s3-path-style',
        '--workers', String(workers),
        '--health-listen', '127.0.0.1:0',
        '--audit-log', 'none',
        // The default level, as deployed: a login and a close record per connection.
        '--log-level', 'info',
        // The load all comes from 127.0.0.1: raise the per-address and startup limits.
        '--max-connections', '10000',
        '--max-connections-per-address', '10000',
        '--max-startups', '2000',
        '--lockout-failures', '0',
        ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, S3GW_NO_RESPAWN: '1' } },
    ),
  );
  let port = 0;
  let health = 0;
  let tail = '';
  const onLine = (l: string) => {
    tail = (tail + l + '\n').slice(-4000);
    const m = /listening on 127\.0\.0\.1:(\d+)/.exec(l);
    if (m) port = Number(m[1]);
    const h = /health and metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(l);
    if (h) health = Number(h[1]);
  };
  readline.createInterface({ input: child.stderr! }).on('line', onLine);
  readline.createInterface({ input: child.stdout! }).on('line', onLine);
  void tail;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return await new Promise<Running>((resolve, reject) => {
    const t0 = Date.now();
    const poll = setInterval(async () => {
      if (child.exitCode !== null) {
        clearInterval(poll);
        reject(new Error(`gateway exited: ${tail}`));
      }
      if (port && health) {
        // Every worker must be up: /health says ok once one listens; wait for the worker count.
        const m = await metrics(health).catch(() => undefined);
        const up = m ? (workers === 1 ? 1 : (sampleValue(m, 's3gw_workers') ?? 0)) : 0;
        if (up >= workers) {
          clearInterval(poll);
          await new Promise((r) => setTimeout(r, 500));
          resolve({
            child,
            port,
            health,
            async stop() {
              child.kill('SIGTERM');
              const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
              await exited;
              clearTimeout(t);
            },
          });
        }
      }
      if (Date.now() - t0 > 30_000) {
        clearInterval(poll);
        reject(new Error(`gateway did not start: ${tail}`));
      }
    }, 100);
  });
}

function metrics(port: number): Promise<ReturnType<typeof parsePrometheus>['samples']> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(parsePrometheus(body).samples));
      })
      .on('error', reject);
  });
}

/** The gateway's process tree: the CLI and its workers. */
function tree(pid: number): number[] {
  const kids = (p: number): number[] => {
    try {
      return fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...kids(out[i]!));
  return out;
}

function cpuOfTree(pid: number): number {
  return tree(pid).reduce((n, p) => {
    const s = readStat(p);
    return n + (s ? s.user + s.sys : 0);
  }, 0);
}

function rssOfTree(pid: number): number {
  return tree(pid).reduce((n, p) => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'));
      return n + (m ? Number(m[1]) * 1024 : 0);
    } catch {
      return n;
    }
  }, 0);
}

/** The largest event-loop lag (ms) any process reported for `quantile`. */
function lagMs(m: ReturnType<typeof parsePrometheus>['samples'], quantile: string): number {
  const v = m.filter((s) => s.name === 's3gw_event_loop_lag_seconds' && s.labels.quantile === quantile).map((s) => s.value);
  return v.length ? Math.max(...v) * 1000 : NaN;
}

function runLoadgen(args: string[]): { child: ChildProcess; line: Promise<Record<string, unknown>> } {
  const child = track(spawn(process.execPath, [LOADGEN, ...args], { stdio: ['pipe', 'pipe', 'inherit'] }));
  const line = new Promise<Record<string, unknown>>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l) as Record<string, unknown>));
    child.once('exit', (c) => reject(new Error(`load generator exited ${c}`)));
  });
  return { child, line };
}

const MiB = 1024 * 1024;
const fmt = (n: number, d = 1) => n.toFixed(d);

/** The local MinIO's processes (by command name), whose CPU the IAM checks cost. */
function minioPids(): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'minio';
    } catch {
      return false;
    }
  });
}

function cpuOf(pids: number[]): number {
  return pids.reduce((n, p) => {
    const s = readStat(p);
    return n + (s ? s.user + s.sys : 0);
  }, 0);
}

/** `iam`: log in with a wrong secret, so that every login is a full IAM check (failures are not cached). */
async function handshakeRound(store: Store, workers: number, dir: string, iam = false) {
  const gw = await startGateway(store, workers, dir);
  const secret = iam ? store.secretAccessKey.slice(0, -1) + (store.secretAccessKey.endsWith('x') ? 'y' : 'x') : store.secretAccessKey;
  const minio = minioPids();
  try {
    const cpu0 = cpuOfTree(gw.child.pid!);
    const minio0 = cpuOf(minio);
    const t0 = performance.now();
    const gens = [0, 1].map(() =>
      runLoadgen(['handshakes', String(gw.port), store.accessKeyId, secret, String(SECONDS), '8', iam ? 'refused' : 'ok']),
    );
    const res = await Promise.all(gens.map((g) => g.line));
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuOfTree(gw.child.pid!) - cpu0;
    const minioCpu = cpuOf(minio) - minio0;
    const count = res.reduce((n, r) => n + Number(r.count), 0);
    const errors = res.reduce((n, r) => n + Number(r.errors), 0);
    const clientCpu = res.reduce((n, r) => n + Number(r.cpu), 0);
    const m = await metrics(gw.health);
    const r = {
      workers,
      count,
      errors,
      perSec: count / wall,
      serverMsPer: (cpu * 1000) / count,
      /** Cores the gateway kept busy (all its processes). */
      serverCores: cpu / wall,
      clientMsPer: (clientCpu * 1000) / count,
      minioMsPer: minio.length ? (minioCpu * 1000) / count : NaN,
      lagP99: lagMs(m, '0.99'),
      lagMax: lagMs(m, 'max'),
      firstError: res.map((x) => x.firstError).find(Boolean),
    };
    log(`  handshakes${iam ? ' with a full IAM check each (wrong secret)' : ''}, ${workers} worker(s): ${count} in ${fmt(wall)} s = ${fmt(r.perSec)}/s, errors ${errors}; gateway ${fmt(r.serverMsPer, 2)} CPU-ms each (${fmt(r.serverCores, 2)} cores busy), load generators ${fmt(r.clientMsPer, 2)}, MinIO ${fmt(r.minioMsPer, 2)}; lag p99 ${fmt(r.lagP99, 1)} ms, max ${fmt(r.lagMax, 1)} ms${r.firstError ? `; first error: ${String(r.firstError)}` : ''}`);
    return r;
  } finally {
    await gw.stop();
  }
}

async function idleRound(store: Store, workers: number, dir: string) {
  const gw = await startGateway(store, workers, dir);
  try {
    const rss0 = rssOfTree(gw.child.pid!);
    const t0 = performance.now();
    const g = runLoadgen(['idle', String(gw.port), store.accessKeyId, store.secretAccessKey, String(IDLE)]);
    const res = await g.line;
    const openS = (performance.now() - t0) / 1000;
    // This scrape covers the opening of the sessions; the next one the idle period after it.
    const opening = await metrics(gw.health);
    await new Promise((r) => setTimeout(r, 5000));
    const rss = rssOfTree(gw.child.pid!);
    const m = await metrics(gw.health);
    g.child.stdin!.end();
    const r = {
      workers,
      opened: Number(res.opened),
      errors: Number(res.errors),
      openS,
      rssBefore: rss0 / MiB,
      rss: rss / MiB,
      perSessionKiB: (rss - rss0) / 1024 / Math.max(1, Number(res.opened)),
      sessions: sampleValue(m, 's3gw_sessions', { protocol: 'sftp' }) ?? NaN,
      openLagP99: lagMs(opening, '0.99'),
      openLagMax: lagMs(opening, 'max'),
      lagP99: lagMs(m, '0.99'),
      lagMax: lagMs(m, 'max'),
    };
    log(`  ${IDLE} idle sessions, ${workers} worker(s): ${r.opened} open (${r.errors} errors) in ${fmt(openS)} s; RSS ${fmt(r.rssBefore)} → ${fmt(r.rss)} MiB (${fmt(r.perSessionKiB)} KiB/session); event-loop lag while opening p99 ${fmt(r.openLagP99, 1)} ms, max ${fmt(r.openLagMax, 1)} ms; idle p99 ${fmt(r.lagP99, 2)} ms, max ${fmt(r.lagMax, 2)} ms (worst process); sessions counted by the gateway ${r.sessions}`);
    return r;
  } finally {
    await gw.stop();
  }
}

async function transferRound(store: Store, workers: number, dir: string, bucket: string, file: string) {
  const gw = await startGateway(store, workers, dir);
  const env = sshClientEnv();
  const ups = Math.ceil(TRANSFERS / 2);
  const downs = TRANSFERS - ups;
  try {
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOfTree(gw.child.pid!))), 200);
    await metrics(gw.health);
    const cpu0 = cpuOfTree(gw.child.pid!);
    const t0 = performance.now();
    const run = (lines: string[]) =>
      new Promise<number>((resolve) => {
        const batch = path.join(dir, `batch-${Math.random().toString(36).slice(2)}`);
        fs.writeFileSync(batch, lines.join('\n') + '\n');
        const c = track(
          spawn('sftp', [...sshOptions(env), '-P', String(gw.port), '-b', batch, `${store.accessKeyId}@127.0.0.1`], {
            env: askpassEnv(env, store.secretAccessKey),
            stdio: ['ignore', 'ignore', 'ignore'],
          }),
        );
        c.once('exit', (code) => resolve(code ?? 1));
      });
    const codes = await Promise.all([
      ...Array.from({ length: ups }, (_, i) => run([`put ${file} /${bucket}/up-${workers}-${i}.bin`])),
      ...Array.from({ length: downs }, (_, i) => run([`get /${bucket}/down-${i}.bin /dev/null`])),
    ]);
    const wall = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const cpu = cpuOfTree(gw.child.pid!) - cpu0;
    const m = await metrics(gw.health);
    const errors = codes.filter((c) => c !== 0).length;
    const bytes = TRANSFERS * SIZE;
    const r = {
      workers,
      wall,
      mbps: bytes / 1e6 / wall,
      errors,
      peakMiB: peak / MiB,
      cpuPerGiB: cpu / (bytes / 1024 ** 3),
      lagP99: lagMs(m, '0.99'),
      lagMax: lagMs(m, 'max'),
    };
    log(`  ${TRANSFERS} transfers (${ups} up, ${downs} down, ${SIZE / MiB} MiB each), ${workers} worker(s): ${fmt(wall)} s, ${fmt(r.mbps)} MB/s in all, errors ${errors}, peak RSS ${fmt(r.peakMiB)} MiB, gateway ${fmt(r.cpuPerGiB, 2)} CPU-s/GiB, lag p99 ${fmt(r.lagP99, 1)} ms, max ${fmt(r.lagMax, 1)} ms`);
    return r;
  } finally {
    await gw.stop();
  }
}

async function main(): Promise<void> {
  const store = await loadStore();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 's3gw-ops-load-'));
  log(`ops-load: ${os.cpus().length} cores, node ${process.version}, MinIO at ${store.endpoint}`);
  log('1. handshakes');
  const h1 = await handshakeRound(store, 1, dir);
  const h2 = await handshakeRound(store, 2, dir);
  log(`  2 workers / 1 worker: ${fmt(h2.perSec / h1.perSec, 2)}× handshakes per second, ${fmt(h2.serverCores / h1.serverCores, 2)}× the gateway's CPU`);
  log(`  (the load generators need ${fmt(h1.clientMsPer, 2)} CPU-ms per handshake on the same 2 cores; the gateway alone on them could do about ${fmt(2000 / h2.serverMsPer, 0)}/s with 2 workers, ${fmt(1000 / h1.serverMsPer, 0)}/s with 1)`);
  const f1 = await handshakeRound(store, 1, dir, true);
  const f2 = await handshakeRound(store, 2, dir, true);
  log(`  with a full IAM check each: 2 workers / 1 worker ${fmt(f2.perSec / f1.perSec, 2)}×; against cached checks (1 worker) ${fmt(f1.perSec / h1.perSec, 2)}× the rate, ${fmt(f1.serverMsPer / h1.serverMsPer, 2)}× the gateway's CPU per login`);
  log(`2. ${IDLE} idle sessions`);
  const i1 = await idleRound(store, 1, dir);
  const i2 = await idleRound(store, 2, dir);
  log(`3. ${TRANSFERS} concurrent transfers`);
  const s3 = adminClient(store);
  const bucket = await createBenchBucket(s3, 'ops-load');
  const file = path.join('/dev/shm', `s3gw-ops-load-${process.pid}.bin`);
  fs.writeFileSync(file, Buffer.alloc(SIZE, 7));
  try {
    const body = fs.readFileSync(file);
    for (let i = 0; i < TRANSFERS - Math.ceil(TRANSFERS / 2); i++) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `down-${i}.bin`, Body: body }));
    }
    const t1 = await transferRound(store, 1, dir, bucket, file);
    const t2 = await transferRound(store, 2, dir, bucket, file);
    log(`  2 workers / 1 worker: ${fmt(t2.mbps / t1.mbps, 2)}× aggregate MB/s`);
    const summary = { handshakes: [h1, h2], iamHandshakes: [f1, f2], idle: [i1, i2], transfers: [t1, t2] };
    process.stdout.write(JSON.stringify(summary) + '\n');
  } finally {
    fs.rmSync(file, { force: true });
    await removeBucket(s3, bucket).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    log(`ops-load failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
