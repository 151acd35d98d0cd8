/**
 * SSH bulk throughput and handshake cost: s3gw against OpenSSH's sshd and npm ssh2 (with and
 * without its native binding), all driven by the OpenSSH client over loopback, in
 * interleaved rounds. Issue #2 §9. Not a test: it prints figures and ratios (markdown on
 * stdout, progress on stderr), and fails loudly only when a run is incomplete or broken.
 *
 *   bash bench/setup.sh && npm run build && node dist/bench/ssh-throughput.js [options]
 *
 * See bench/README.md for what is measured and how.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { killAll, killAllOnExit } from './lib/children.js';
import { runSsh, type Remote, type SshTarget } from './lib/client.js';
import { selfTimes } from './lib/cpu-profile.js';
import { NodeServerChild } from './lib/node-server.js';
import { cpuDelta, cpuTotal, ownCpu, parseStat, rssMiB, systemBusy, treeCpu, waitQuiet, type Cpu } from './lib/proc.js';
import {
  CIPHERS,
  DIRECTIONS,
  DIRECTION_TITLE,
  IMPLS,
  IMPL_TITLE,
  fmtSize,
  gitState,
  report,
  type CipherCase,
  type Direction,
  type HandshakeSample,
  type Impl,
  type TransferSample,
} from './lib/ssh-report.js';
import { SSHD, startSshd, waitIdle, type Sshd } from './lib/sshd.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '../..');
const GIB = 1024 ** 3;

// ------------------------------------------------------------------ options

function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size ${JSON.stringify(s)} (use e.g. 1G, 256M)`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: GIB }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}

function usage(): string {
  return `usage: node dist/bench/ssh-throughput.js [options]
  --rounds N         interleaved rounds (default 3; 1 with --quick)
  --size SIZE        bytes per transfer, e.g. 1G, 256M (default 1G; 256M with --quick)
  --quick            256 MiB, 1 round, 20 handshakes: a fast look
  --handshakes N     connections per handshake batch (default 50; 0 skips)
  --impls LIST       subset of ${IMPLS.join(',')}
  --ciphers LIST     subset of aes128-gcm,chacha20-poly1305,aes128-ctr
  --directions LIST  subset of up,down
  --warmup N         serve N short connections on each Node server before round 1 (default 0)
  --s3gw-node-args A node options for the s3gw server process, e.g. --s3gw-node-args=--initial-heap-size=64
  --json FILE        also write every sample as JSON
  --quiet-wait S     before each run, wait up to S seconds for an idle machine (default 30; 0: off)
  --max-foreign C    measure a run again (twice at most) when other processes used more than C
                     cores meanwhile (default 0.2)
  --profile          instead: run s3gw under node --cpu-prof for one aes128-gcm upload and
                     one download, and print the top self-time functions
  --profile-dir DIR  where the .cpuprofile files go (default bench/.profiles)
  --profile-impl I   profile ssh2 or ssh2-nobinding instead of s3gw
  --profile-age N    serve N short connections before the profiled transfer`;
}

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string' },
    size: { type: 'string' },
    quick: { type: 'boolean', default: false },
    handshakes: { type: 'string' },
    impls: { type: 'string' },
    ciphers: { type: 'string' },
    directions: { type: 'string' },
    json: { type: 'string' },
    'quiet-wait': { type: 'string' },
    'max-foreign': { type: 'string' },
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
    'profile-impl': { type: 'string' },
    'profile-age': { type: 'string' },
    warmup: { type: 'string' },
    's3gw-node-args': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  allowPositionals: false,
});
if (opt.help) {
  console.log(usage());
  process.exit(0);
}

const SIZE = parseSize(opt.size ?? (opt.quick ? '256M' : '1G'));
const ROUNDS = Number(opt.rounds ?? (opt.quick ? 1 : 3));
const HANDSHAKES = Number(opt.handshakes ?? (opt.quick ? 20 : 50));
/** Before each run, wait up to this long for the machine to be idle (shared machines). */
const QUIET_WAIT_MS = Number(opt['quiet-wait'] ?? 30) * 1000;
/** A run during which other processes used more than this many cores is measured again. */
const MAX_FOREIGN = Number(opt['max-foreign'] ?? 0.2);
/**
 * Short connections each Node server serves before the first round. s3gw's bulk CPU was
 * seen to rise by about half after a few hundred connections (README), so a long-lived
 * server's steady state differs from a fresh one's.
 */
const WARMUP = Number(opt.warmup ?? 0);
/** Extra node options for the s3gw server child, e.g. "--initial-heap-size=64" (README). */
const S3GW_NODE_ARGS = (opt['s3gw-node-args'] ?? '').split(/\s+/).filter(Boolean);
/** --profile: connections (login + exit) the server serves before the profiled transfer. */
const PROFILE_AGE = Number(opt['profile-age'] ?? 0);
if (!(ROUNDS >= 1) || !(HANDSHAKES >= 0) || !(SIZE > 0)) throw new Error(usage());

function subset<T extends string>(all: readonly T[], list: string | undefined, label: string): T[] {
  if (!list) return [...all];
  const want = list.split(',').map((s) => s.trim());
  for (const w of want) if (!all.some((a) => a.startsWith(w))) throw new Error(`unknown ${label} ${w}`);
  return all.filter((a) => want.some((w) => a.startsWith(w)));
}
const impls = subset(IMPLS, opt.impls, 'implementation').filter(
  // "ssh2" alone must not also select ssh2-nobinding.
  (i) => !opt.impls || opt.impls.split(',').some((w) => w.trim() === i || (w.trim() !== 'ssh2' && i.startsWith(w.trim()))),
);
const ciphers = CIPHERS.filter((c) => !opt.ciphers || opt.ciphers.split(',').some((w) => c.name.startsWith(w.trim())));
const directions = subset(DIRECTIONS, opt.directions, 'direction');
if (impls.length === 0 || ciphers.length === 0 || directions.length === 0) throw new Error(usage());

const log = (s: string) => process.stderr.write(s + '\n');
const GIT_STATE = gitState(ROOT);

// ------------------------------------------------------------------ servers

interface Server {
  impl: Impl;
  detail: string;
  target: SshTarget;
  /** CPU counter that the runs take deltas of. */
  cpu(): Cpu;
  /** Resident memory of the server process (Node servers), MiB. */
  rss(): number | undefined;
  /** After a client exited: wait until the server is done with the connection. */
  settle(): Promise<{ received?: number; heapMiB?: number; handles?: number }>;
  upload: Remote;
  download: Remote;
  handshake: Remote;
  stop(): Promise<void>;
}

interface Keys {
  dir: string;
  hostKey: string;
  clientKey: string;
  authorizedKeys: string;
  authorizedKey: string;
}

function makeKeys(): Keys {
  const dir = mkdtempSync(path.join(os.tmpdir(), 's3gw-bench-'));
  const gen = (f: string) => execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 's3gw-bench', '-f', f]);
  const hostKey = path.join(dir, 'host_ed25519');
  const clientKey = path.join(dir, 'client_ed25519');
  gen(hostKey);
  gen(clientKey);
  const authorizedKey = readFileSync(clientKey + '.pub', 'utf8').trim();
  const authorizedKeys = path.join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, authorizedKey + '\n', { mode: 0o600 });
  return { dir, hostKey, clientKey, authorizedKeys, authorizedKey };
}

function ssh2Available(): void {
  const deps = path.join(ROOT, 'bench/.deps/node_modules/ssh2/package.json');
  if (!existsSync(deps)) throw new Error(`npm ssh2 is not in bench/.deps: run 'bash bench/setup.sh'`);
}

async function startNodeServer(impl: Impl, keys: Keys, execArgv: string[] = []): Promise<Server> {
  const script = path.join(HERE, 'lib', impl === 's3gw' ? 'our-server.js' : 'ssh2-server.js');
  if (impl !== 's3gw') ssh2Available();
  const child = new NodeServerChild(
    script,
    {
      hostKeyFile: keys.hostKey,
      authorizedKey: keys.authorizedKey,
      sourceBytes: SIZE,
      binding: impl === 'ssh2' ? true : impl === 'ssh2-nobinding' ? false : undefined,
    },
    execArgv,
  );
  await child.ready();
  return {
    impl,
    detail: child.detail,
    target: { port: child.port, user: 'tester', identityFile: keys.clientKey },
    cpu: () => ownCpu(child.pid),
    rss: () => rssMiB(child.pid),
    settle: () => child.nextClosed(),
    upload: { subsystem: 'test-discard' },
    download: { subsystem: 'test-source' },
    handshake: { subsystem: 'test-discard' },
    stop: () => child.stop(),
  };
}

async function startReferenceSshd(keys: Keys): Promise<Server> {
  const sshd: Sshd = await startSshd(keys.dir, keys.hostKey, keys.authorizedKeys);
  await waitIdle(sshd); // the readiness probe's connection
  const version = spawnSync(SSHD, ['-V'], { encoding: 'utf8' });
  return {
    impl: 'sshd',
    detail: `${`${version.stderr ?? ''}`.trim().split('\n')[0]}, pid ${sshd.pid}`,
    target: { port: sshd.port, user: os.userInfo().username, identityFile: keys.clientKey },
    // Whole tree: the master's own time plus everything it reaped (every per-connection process).
    cpu: () => treeCpu(sshd.pid),
    rss: () => undefined,
    settle: async () => {
      await waitIdle(sshd);
      return {};
    },
    // The commands report their own CPU (the shell's stat, which includes wc/head once they
    // were reaped) so that it can be taken out of sshd's; wc counts the upload.
    upload: { command: 'wc -c >&2; cat /proc/$$/stat >&2' },
    download: { command: `head -c ${SIZE} /dev/zero; cat /proc/$$/stat >&2` },
    handshake: { subsystem: 'sftp' },
    stop: async () => {
      sshd.child.kill('SIGTERM');
    },
  };
}

// ------------------------------------------------------------------ one run

class IncompleteTransfer extends Error {
  override name = 'IncompleteTransfer';
}

/** The remote command's own stat line (sshd runs only) and wc's count, from remote stderr. */
function parseCommandReport(stderr: string): { cpu?: Cpu; count?: number; rest: string } {
  let cpu: Cpu | undefined;
  let count: number | undefined;
  const rest: string[] = [];
  for (const line of stderr.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    if (/^\d+ \(.*\) [A-Za-z] /.test(t)) {
      const s = parseStat(t);
      cpu = { user: s.user + s.childUser, sys: s.sys + s.childSys };
    } else if (/^\d+$/.test(t)) count = Number(t);
    else rest.push(t);
  }
  return { cpu, count, rest: rest.join('\n') };
}

/** Measures `fn`'s window: how much CPU did processes other than ours use meanwhile, in cores. */
async function withForeignLoad<T>(fn: () => Promise<T>, ours: (r: T) => number): Promise<{ r: T; foreignCores: number }> {
  const b0 = systemBusy();
  const me0 = process.cpuUsage();
  const t0 = performance.now();
  const r = await fn();
  const me = process.cpuUsage(me0);
  const secs = (performance.now() - t0) / 1000;
  const foreign = systemBusy() - b0 - ours(r) - (me.user + me.system) / 1e6;
  return { r, foreignCores: Math.max(0, foreign / secs) };
}

/**
 * Runs one measurement on a quiet machine: waits for idleness first, and repeats the
 * measurement (up to twice) when other processes took more than MAX_FOREIGN cores meanwhile.
 */
async function quietly<T extends { foreignCores: number }>(what: string, measure: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    if (QUIET_WAIT_MS > 0) {
      const load = await waitQuiet(QUIET_WAIT_MS);
      if (load >= 0.15) log(`  ${what}: machine still busy (${load.toFixed(2)} cores) after ${QUIET_WAIT_MS / 1000} s, measuring anyway`);
    }
    const s = await measure();
    if (s.foreignCores <= MAX_FOREIGN || attempt === 3) return s;
    log(`  ${what}: other processes used ${s.foreignCores.toFixed(2)} cores meanwhile, measuring again`);
  }
}

function transfer(s: Server, c: CipherCase, direction: Direction, round: number): Promise<TransferSample> {
  return quietly(`${s.impl} ${c.name} ${DIRECTION_TITLE[direction]}`, () => transferOnce(s, c, direction, round));
}

async function transferOnce(s: Server, c: CipherCase, direction: Direction, round: number): Promise<TransferSample> {
  const timeoutMs = 60_000 + (SIZE / 5e6) * 1000; // a 5 MB/s floor: anything slower is broken
  const before = s.cpu();
  const { r: m, foreignCores } = await withForeignLoad(
    async () => {
      const run = await runSsh(s.target, c, direction === 'up' ? s.upload : s.download, {
        upload: direction === 'up' ? SIZE : undefined,
        download: direction === 'down',
        timeoutMs,
      });
      const settled = await s.settle();
      const raw = cpuDelta(s.cpu(), before);
      return { run, settled, raw };
    },
    (x) => cpuTotal(x.raw) + x.run.clientSideCpu,
  );
  const { run, settled, raw } = m;
  const report = parseCommandReport(run.stderr);
  const what = `${s.impl} ${c.name} ${DIRECTION_TITLE[direction]}`;
  if (run.exitCode !== 0) {
    throw new Error(`${what}: ssh exited with ${run.exitCode}: ${run.stderr.trim().slice(0, 2000)}`);
  }
  if (report.rest) log(`  ${what}: stderr: ${report.rest.slice(0, 500)}`);
  const got = direction === 'down' ? run.downloaded : s.impl === 'sshd' ? report.count : settled.received;
  if (got !== SIZE) {
    throw new IncompleteTransfer(`${what}: INCOMPLETE TRANSFER: ${got} of ${SIZE} bytes arrived`);
  }
  let serverCpu = raw;
  if (s.impl === 'sshd') {
    if (!report.cpu) throw new Error(`${what}: the remote command did not report its CPU: ${run.stderr.slice(0, 500)}`);
    serverCpu = cpuDelta(serverCpu, report.cpu);
  }
  const gib = SIZE / GIB;
  return {
    impl: s.impl,
    cipher: c.name,
    direction,
    round,
    bytes: SIZE,
    wallSec: run.wallSec,
    mbPerSec: SIZE / run.wallSec / 1e6,
    serverCpu,
    serverCpuPerGiB: cpuTotal(serverCpu) / gib,
    clientCpuPerGiB: cpuTotal(run.sshCpu) / gib,
    commandCpu: report.cpu,
    foreignCores,
    serverRssMiB: s.rss(),
    heapMiB: settled.heapMiB,
  };
}

function handshakes(s: Server, n: number, round: number): Promise<HandshakeSample> {
  return quietly(`${s.impl} handshakes`, () => handshakesOnce(s, n, round));
}

async function handshakesOnce(s: Server, n: number, round: number): Promise<HandshakeSample> {
  const alg = CIPHERS[0]!;
  const before = s.cpu();
  const { r, foreignCores } = await withForeignLoad(
    async () => {
      let clientCpu = 0;
      let clientSide = 0;
      let wall = 0;
      let last: { heapMiB?: number; handles?: number } = {};
      for (let i = 0; i < n; i++) {
        const run = await runSsh(s.target, alg, s.handshake, { timeoutMs: 30_000 });
        last = await s.settle();
        if (run.exitCode !== 0) {
          throw new Error(`${s.impl} handshake ${i + 1}: ssh exited with ${run.exitCode}: ${run.stderr.trim().slice(0, 1000)}`);
        }
        clientCpu += cpuTotal(run.sshCpu);
        clientSide += run.clientSideCpu;
        wall += run.wallSec;
      }
      return { clientCpu, clientSide, wall, last, serverCpu: cpuTotal(cpuDelta(s.cpu(), before)) };
    },
    (x) => x.serverCpu + x.clientSide,
  );
  return {
    impl: s.impl,
    round,
    connections: n,
    serverMsPerConn: (r.serverCpu / n) * 1000,
    clientMsPerConn: (r.clientCpu / n) * 1000,
    wallMsPerConn: (r.wall / n) * 1000,
    foreignCores,
    heapMiB: r.last.heapMiB,
    handles: r.last.handles,
  };
}

// ------------------------------------------------------------------ main

async function startServer(impl: Impl, keys: Keys): Promise<Server> {
  if (impl === 'sshd') return startReferenceSshd(keys);
  return startNodeServer(impl, keys, impl === 's3gw' ? S3GW_NODE_ARGS : []);
}

async function bench(keys: Keys): Promise<void> {
  const servers = new Map<Impl, Server>();
  const details = new Map<Impl, string>();
  for (const impl of impls) {
    const s = await startServer(impl, keys);
    servers.set(impl, s);
    details.set(impl, s.detail);
    log(`bench: ${IMPL_TITLE[impl]} on 127.0.0.1:${s.target.port} (${s.detail})`);
  }
  if (WARMUP > 0) {
    for (const s of servers.values()) {
      if (s.impl === 'sshd') continue; // a process per connection: nothing to age
      log(`bench: warm-up, ${WARMUP} connections to ${IMPL_TITLE[s.impl]}`);
      for (let i = 0; i < WARMUP; i++) {
        const run = await runSsh(s.target, CIPHERS[0]!, s.handshake, { timeoutMs: 30_000 });
        await s.settle();
        if (run.exitCode !== 0) throw new Error(`${s.impl} warm-up connection ${i + 1}: ${run.stderr.trim()}`);
      }
    }
  }
  const samples: TransferSample[] = [];
  const hs: HandshakeSample[] = [];
  const t0 = Date.now();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of ciphers) {
      for (const d of directions) {
        for (const impl of impls) {
          const s = await transfer(servers.get(impl)!, c, d, round);
          samples.push(s);
          log(
            `round ${round}/${ROUNDS} ${c.name.padEnd(30)} ${DIRECTION_TITLE[d].padEnd(8)} ${impl.padEnd(15)} ` +
              `${s.mbPerSec.toFixed(0).padStart(5)} MB/s  server ${s.serverCpuPerGiB.toFixed(2)} CPU-s/GiB  ` +
              `client ${s.clientCpuPerGiB.toFixed(2)}` +
              (s.serverRssMiB !== undefined ? `  rss ${s.serverRssMiB.toFixed(0)} MiB` : '') +
              (s.heapMiB !== undefined ? ` heap ${s.heapMiB.toFixed(0)} MiB` : '') +
              (s.commandCpu ? `  (sshd command ${cpuTotal(s.commandCpu).toFixed(2)} s, excluded)` : '') +
              (s.foreignCores > 0.05 ? `  [other load ${s.foreignCores.toFixed(2)} cores]` : ''),
          );
        }
      }
    }
    if (HANDSHAKES > 0) {
      for (const impl of impls) {
        const h = await handshakes(servers.get(impl)!, HANDSHAKES, round);
        hs.push(h);
        log(
          `round ${round}/${ROUNDS} handshake x${HANDSHAKES} ${impl.padEnd(15)} server ${h.serverMsPerConn.toFixed(1)} ms/conn  ` +
            `client ${h.clientMsPerConn.toFixed(1)} ms  wall ${h.wallMsPerConn.toFixed(1)} ms` +
            (h.heapMiB !== undefined ? `  heap ${h.heapMiB.toFixed(1)} MiB, ${h.handles} handles` : '') +
            (h.foreignCores > 0.05 ? `  [other load ${h.foreignCores.toFixed(2)} cores]` : ''),
        );
      }
    }
  }
  log(`bench: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  for (const s of servers.values()) await s.stop();
  if (opt.json) {
    const all = { size: SIZE, rounds: ROUNDS, details: Object.fromEntries(details), samples, handshakes: hs };
    writeFileSync(opt.json, JSON.stringify(all, null, 2));
  }
  if (S3GW_NODE_ARGS.length > 0 && details.has('s3gw')) {
    details.set('s3gw', `${details.get('s3gw')}, node options ${S3GW_NODE_ARGS.join(' ')}`);
  }
  const ctx = { impls, ciphers, directions, size: SIZE, rounds: ROUNDS, warmup: WARMUP, gitState: GIT_STATE, details };
  console.log(report(ctx, samples, hs));
}

async function profile(keys: Keys): Promise<void> {
  const impl = (opt['profile-impl'] ?? 's3gw') as Impl;
  if (!['s3gw', 'ssh2', 'ssh2-nobinding'].includes(impl)) throw new Error('--profile-impl: s3gw, ssh2 or ssh2-nobinding');
  const dir = path.resolve(opt['profile-dir'] ?? path.join(ROOT, 'bench/.profiles'));
  mkdirSync(dir, { recursive: true });
  const c = CIPHERS[0]!;
  const out: string[] = [
    `## CPU profile of ${IMPL_TITLE[impl]}, ${c.name}, ${fmtSize(SIZE)} (node --cpu-prof, main thread, ` +
      `samples of the transfer only${PROFILE_AGE > 0 ? `, after ${PROFILE_AGE} earlier connections` : ''})`,
  ];
  for (const d of directions) {
    const name = `${impl}-${c.name}-${d}.cpuprofile`;
    rmSync(path.join(dir, name), { force: true });
    const file = path.join(dir, name);
    // A fresh server per attempt, so that the profile holds exactly one transfer.
    let sample: TransferSample;
    let window: { fromUs: number; toUs: number } | undefined;
    for (let attempt = 1; ; attempt++) {
      rmSync(file, { force: true });
      if (QUIET_WAIT_MS > 0) await waitQuiet(QUIET_WAIT_MS);
      const s = await startNodeServer(impl, keys, [
      ...(impl === 's3gw' ? S3GW_NODE_ARGS : []),
      '--cpu-prof',
      '--cpu-prof-dir',
      dir,
      '--cpu-prof-name',
      name,
    ]);
      try {
        for (let i = 0; i < PROFILE_AGE; i++) {
          const run = await runSsh(s.target, c, s.handshake, { timeoutMs: 30_000 });
          await s.settle();
          if (run.exitCode !== 0) throw new Error(`profile: connection ${i + 1} failed: ${run.stderr.trim()}`);
        }
        if (PROFILE_AGE > 0 && QUIET_WAIT_MS > 0) await waitQuiet(QUIET_WAIT_MS);
        const from = process.hrtime.bigint();
        sample = await transferOnce(s, c, d, 1);
        window = { fromUs: Number(from / 1000n), toUs: Number(process.hrtime.bigint() / 1000n) };
      } finally {
        await s.stop();
      }
      if (sample.foreignCores <= MAX_FOREIGN || attempt === 3) break;
      log(`  profile ${DIRECTION_TITLE[d]}: other processes used ${sample.foreignCores.toFixed(2)} cores meanwhile, again`);
    }
    if (!existsSync(file)) throw new Error(`no profile written at ${file}`);
    const { rows, byOwnCode, busyMs, idleMs } = selfTimes(
      file,
      ROOT + '/',
      impl === 's3gw' ? '/dist/src/' : '/ssh2/lib/',
      window,
    );
    out.push(
      '',
      `### ${DIRECTION_TITLE[d]}: ${sample.mbPerSec.toFixed(0)} MB/s, server ${sample.serverCpuPerGiB.toFixed(2)} CPU-s/GiB ` +
        `(profiling included); main thread busy ${(busyMs / 1000).toFixed(2)} s, idle ${(idleMs / 1000).toFixed(2)} s` +
        (sample.foreignCores > 0.05 ? `; other processes used ${sample.foreignCores.toFixed(2)} cores` : ''),
      `Profile: ${path.relative(process.cwd(), file)}`,
      '',
      'Top self time (native work is charged to the JS function that called it):',
      '',
      '| self ms | % of busy | function | where | main caller |',
      '|---:|---:|---|---|---|',
    );
    for (const r of rows.slice(0, 25)) {
      out.push(`| ${r.ms.toFixed(0)} | ${(r.busyShare * 100).toFixed(1)} | ${r.name} | ${r.where} | ${r.topCaller} |`);
    }
    out.push(
      '',
      `The same time charged to the innermost ${impl === 's3gw' ? 's3gw' : 'ssh2'} function on the stack ` +
        '(its own work plus the library code it calls):',
      '',
      '| ms | % of busy | function | where |',
      '|---:|---:|---|---|',
    );
    for (const r of byOwnCode.slice(0, 15)) {
      out.push(`| ${r.ms.toFixed(0)} | ${(r.busyShare * 100).toFixed(1)} | ${r.name} | ${r.where} |`);
    }
  }
  console.log(out.join('\n'));
}

killAllOnExit();
const keys = makeKeys();
// Also on SIGINT/SIGTERM, which end the process from their handlers.
process.on('exit', () => rmSync(keys.dir, { recursive: true, force: true }));
try {
  if (opt.profile) await profile(keys);
  else await bench(keys);
} catch (err) {
  killAll();
  log(`\nbench: FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
} finally {
  killAll();
  rmSync(keys.dir, { recursive: true, force: true });
}
