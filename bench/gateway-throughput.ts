/**
 * Gateway throughput (issue #3 §10): a file uploaded to and downloaded from S3 through s3gw with
 * OpenSSH's sftp and with legacy `scp -O` (issue #4), against the same transfer made directly with @aws-sdk/client-s3, against
 * `rclone serve sftp` over the same store, and against s3gw's SSH core alone (the test-discard and
 * test-source subsystems, no SFTP, no S3), in interleaved rounds on the same machine. Not a test:
 * it prints figures and ratios (markdown on stdout, progress on stderr) and fails loudly only when
 * a transfer is incomplete or a run is broken.
 *
 *   npm run build && node dist/bench/gateway-throughput.js [--rounds 3] [--size 1G] [--quick]
 *
 * See bench/README.md, "Gateway (issue #3)", for what is measured and how.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { killAll, killAllOnExit } from './lib/children.js';
import { runSsh } from './lib/client.js';
import { selfTimes } from './lib/cpu-profile.js';
import { NodeServerChild } from './lib/node-server.js';
import { systemBusy, waitQuiet } from './lib/proc.js';
import {
  GIB,
  MIB,
  Gateway,
  RCLONE_USER,
  ROOT,
  adminClient,
  cell,
  cpuOf,
  bytesWritten,
  cpuSplit,
  cpuSettled,
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
  scpArgv,
  sftpArgv,
  sftpEnv,
  sha256File,
  startRclone,
  type HostKey,
  type Rclone,
  type SftpEnv,
  type Store,
} from './lib/gateway-bench.js';
import type { DirectArgs, DirectReport } from './lib/s3-direct.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench

// ------------------------------------------------------------------ what is compared

const IMPLS = ['s3gw', 'scp', 'core', 'direct', 'rclone'] as const;
type Impl = (typeof IMPLS)[number];
const TITLE: Record<Impl, string> = {
  s3gw: 's3gw (sftp)',
  scp: 's3gw (scp -O)',
  core: 'SSH core alone',
  direct: 'direct SDK',
  rclone: 'rclone serve sftp',
};
const DIRECTIONS = ['up', 'down'] as const;
type Direction = (typeof DIRECTIONS)[number];
const DIR_TITLE: Record<Direction, string> = { up: 'upload', down: 'download' };

/** Issue #3 §10 targets. */
const TARGET_WALL_VS_DIRECT = 0.7;
const TARGET_CPU_VS_PARTS = 1.3;
const TARGET_WALL_VS_RCLONE = 1.5;

// ------------------------------------------------------------------ options

function usage(): string {
  return `usage: node dist/bench/gateway-throughput.js [options]
  --rounds N            interleaved rounds (default 3; 1 with --quick)
  --size SIZE           bytes per transfer, e.g. 1G, 256M (default 1G; 256M with --quick)
  --quick               256 MiB, 1 round
  --impls LIST          subset of ${IMPLS.join(',')}
  --directions LIST     subset of up,down
  --cipher NAME         the SSH cipher every OpenSSH client is forced to (default aes128-gcm@openssh.com)
  --mac NAME            the MAC (default hmac-sha2-256-etm@openssh.com; unused with GCM)
  --direct-parts N      parts the direct SDK upload keeps in flight (default 4)
  --warmup N            unmeasured transfers (each direction) through each long-lived server before
                        round 1 (default 1): a fresh Node process's first GiB costs more (JIT, heap growth)
  --verify WHEN         sha256 of uploads (read back) and downloads: first (round 1, default), all, none;
                        byte counts are checked on every transfer whatever this says
  --json FILE           also write every sample as JSON
  --quiet-wait S        before each run, wait up to S seconds for an idle machine (default 30; 0: off)
  --max-foreign C       measure a run again (twice at most) when other processes used more than C
                        cores meanwhile (default 0.2)
  --gateway-node-flags F  extra node flags for the gateway process, space-separated (diagnosis, e.g.
                        --gateway-node-flags=--max-semi-space-size=32); the report names them
  --profile             instead: run the gateway under node --cpu-prof for one upload and one
                        download, and print its top self-time functions
  --profile-dir DIR     where the .cpuprofile files go (default bench/.profiles)`;
}

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string' },
    size: { type: 'string' },
    quick: { type: 'boolean', default: false },
    impls: { type: 'string' },
    directions: { type: 'string' },
    cipher: { type: 'string', default: 'aes128-gcm@openssh.com' },
    mac: { type: 'string', default: 'hmac-sha2-256-etm@openssh.com' },
    'direct-parts': { type: 'string', default: '4' },
    verify: { type: 'string', default: 'first' },
    warmup: { type: 'string', default: '1' },
    json: { type: 'string' },
    'quiet-wait': { type: 'string' },
    'max-foreign': { type: 'string' },
    'gateway-node-flags': { type: 'string', default: '' },
    profile: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' },
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
const QUIET_WAIT_MS = Number(opt['quiet-wait'] ?? 30) * 1000;
const MAX_FOREIGN = Number(opt['max-foreign'] ?? 0.2);
const CIPHER = opt.cipher!;
const MAC = opt.mac!;
const DIRECT_PARTS = Number(opt['direct-parts']);
const PART_SIZE = 5 * MIB; // the gateway's default part size; the direct upload uses the same
const VERIFY = opt.verify!;
const WARMUP = Number(opt.warmup);
const GATEWAY_NODE_FLAGS = opt['gateway-node-flags']!.split(/\s+/).filter(Boolean);
if (!(ROUNDS >= 1) || !(SIZE > 0) || !(DIRECT_PARTS >= 1) || !(WARMUP >= 0) || !['first', 'all', 'none'].includes(VERIFY)) {
  throw new Error(usage());
}

function subset<T extends string>(all: readonly T[], list: string | undefined, label: string): T[] {
  if (!list) return [...all];
  const want = list.split(',').map((s) => s.trim());
  for (const w of want) if (!all.includes(w as T)) throw new Error(`unknown ${label} ${w} (one of ${all.join(', ')})`);
  return all.filter((a) => want.includes(a));
}
const impls = subset(IMPLS, opt.impls, 'implementation');
const directions = subset(DIRECTIONS, opt.directions, 'direction');

const TIMEOUT_MS = 120_000 + (SIZE / 5e6) * 1000; // a 5 MB/s floor: anything slower is broken

// ------------------------------------------------------------------ the run's world

interface World {
  dir: string;
  store: Store;
  s3: S3Client;
  bucket: string;
  source: string;
  sourceSha: string;
  hostKey: HostKey;
  clientKey: HostKey;
  askpass: SftpEnv;
  gateway?: Gateway;
  core?: NodeServerChild;
  rclone?: Rclone;
  /** Objects this run put in the bucket (deleted round by round). */
  keys: Set<string>;
}

interface Sample {
  impl: Impl;
  direction: Direction;
  round: number;
  bytes: number;
  wallSec: number;
  mbPerSec: number;
  /** The gateway, rclone or the core server; for direct, the SDK client process (transfer only). */
  serverCpuPerGiB: number;
  /** Of that, system (kernel) time: on loopback a socket write also runs the receiver's TCP input. */
  serverSysPerGiB: number;
  /** MinIO's own CPU during the transfer. */
  minioCpuPerGiB?: number;
  /** The OpenSSH client (sftp and its ssh, or ssh alone), and its system time. */
  clientCpuPerGiB?: number;
  clientSysPerGiB?: number;
  /** Other processes on the machine meanwhile, in cores. */
  foreignCores: number;
  verified: 'sha256' | 'bytes';
}

class IncompleteTransfer extends Error {
  override name = 'IncompleteTransfer';
}

// ------------------------------------------------------------------ measuring

interface Measured {
  sample: Omit<Sample, 'foreignCores'>;
  /** CPU seconds of every process of ours in the window (foreign-load accounting). */
  ours: number;
  /** Checks that need time (sha256), run outside the measured window. */
  verify: () => Promise<void>;
}

/**
 * One measurement on a quiet machine: waits for idleness first, and measures again (up to
 * twice) when other processes took more than MAX_FOREIGN cores meanwhile.
 */
async function quietly(what: string, measure: () => Promise<Measured>): Promise<Sample> {
  for (let attempt = 1; ; attempt++) {
    if (QUIET_WAIT_MS > 0) {
      const load = await waitQuiet(QUIET_WAIT_MS);
      if (load >= 0.15) log(`  ${what}: machine still busy (${load.toFixed(2)} cores) after ${QUIET_WAIT_MS / 1000} s, measuring anyway`);
    }
    const b0 = systemBusy();
    const me0 = process.cpuUsage();
    const t0 = performance.now();
    const m = await measure();
    const me = process.cpuUsage(me0);
    const secs = (performance.now() - t0) / 1000;
    const foreign = Math.max(0, (systemBusy() - b0 - m.ours - (me.user + me.system) / 1e6) / secs);
    await m.verify();
    const s: Sample = { ...m.sample, foreignCores: foreign };
    if (foreign <= MAX_FOREIGN || attempt === 3) return s;
    log(`  ${what}: other processes used ${foreign.toFixed(2)} cores meanwhile, measuring again`);
  }
}

function verifying(round: number): boolean {
  return VERIFY === 'all' || (VERIFY === 'first' && round === 1);
}

const minioCpu = (w: World) => (w.store.minioPid === undefined ? 0 : cpuOf(w.store.minioPid));

/** The key each implementation uploads to in a round, and downloads from. */
const keyOf = (impl: Impl, round: number) => `${impl}-r${round}`;
let seedKey: string | undefined;

async function ensureDownloadSource(w: World, impl: Impl, round: number): Promise<string> {
  if (directions.includes('up')) return keyOf(impl, round);
  // Downloads only: one object uploaded once (directly, unmeasured) serves every download.
  if (!seedKey) {
    seedKey = 'seed';
    log(`bench: uploading the download source ${fmtSize(SIZE)} (unmeasured)`);
    await directTransfer(w, 'up', seedKey);
    w.keys.add(seedKey);
  }
  return seedKey;
}

async function checkUpload(w: World, key: string, what: string, round: number): Promise<() => Promise<void>> {
  // rclone answers CLOSE only after its upload completes, as the gateway does; a short grace
  // all the same, so that a store that is slow to list a completed upload is not mistaken for loss.
  let size = await objectSize(w.s3, w.bucket, key);
  for (let i = 0; size !== SIZE && i < 20; i++) {
    await new Promise((r) => setTimeout(r, 100));
    size = await objectSize(w.s3, w.bucket, key);
  }
  if (size !== SIZE) throw new IncompleteTransfer(`${what}: INCOMPLETE TRANSFER: the object holds ${size ?? 'nothing'} of ${SIZE} bytes`);
  return async () => {
    if (!verifying(round)) return;
    const got = await objectSha256(w.s3, w.bucket, key);
    if (got.sha256 !== w.sourceSha || got.bytes !== SIZE) {
      throw new IncompleteTransfer(`${what}: CORRUPT TRANSFER: the object's sha256 ${got.sha256} is not the source's ${w.sourceSha}`);
    }
  };
}

/** The OpenSSH clients measured against a server: sftp against s3gw or rclone, scp -O against s3gw. */
type ClientImpl = 's3gw' | 'scp' | 'rclone';
const CLIENT_NAME: Record<ClientImpl, string> = { s3gw: 'sftp', scp: 'scp', rclone: 'sftp' };

/**
 * One transfer by an OpenSSH client: `put` / `get` in an `sftp -b` batch, or `scp -O` with the
 * same source and target.
 */
function clientRun(w: World, impl: ClientImpl, d: Direction, key: string, local: string, name: string) {
  const remote = `/${w.bucket}/${key}`;
  if (impl !== 'scp') return sftpRun(w, impl, d === 'up' ? `put ${local} ${remote}` : `get ${remote} ${local}`, name);
  const target = { port: w.gateway!.port, user: w.store.accessKeyId, password: w.store.secretAccessKey };
  const argv = d === 'up' ? scpArgv(target, local, remote, 'to', CIPHER, MAC) : scpArgv(target, remote, local, 'from', CIPHER, MAC);
  return runClient(argv, sftpEnv(w.askpass, target.password), TIMEOUT_MS);
}

/** One `sftp -b` run of `command` against the gateway or rclone. */
function sftpRun(w: World, impl: 's3gw' | 'rclone', command: string, name: string) {
  const batch = path.join(w.dir, `batch-${name}`);
  writeFileSync(batch, command + '\n');
  const target =
    impl === 's3gw'
      ? { port: w.gateway!.port, user: w.store.accessKeyId, password: w.store.secretAccessKey }
      : { port: w.rclone!.port, user: RCLONE_USER, password: w.rclone!.password };
  return runClient(sftpArgv(target, batch, CIPHER, MAC), sftpEnv(w.askpass, target.password), TIMEOUT_MS);
}

async function measureSftp(w: World, impl: ClientImpl, d: Direction, round: number): Promise<Measured> {
  const what = `${impl} ${DIR_TITLE[d]} round ${round}`;
  const client = CLIENT_NAME[impl];
  const onGateway = impl !== 'rclone';
  const server = onGateway ? w.gateway! : w.rclone!;
  const pid = server.child.pid!;
  const key = d === 'up' ? keyOf(impl, round) : await ensureDownloadSource(w, impl, round);
  if (d === 'up') w.keys.add(key);
  // Measured downloads go to /dev/null: on this project's VMs a first write to guest pages costs
  // the writer about 0.9 s of system time per GiB (memory the host backs lazily), which made the
  // client's CPU, and so the wall, jump between rounds. Round 1 also downloads into tmpfs,
  // unmeasured, for the size and sha256 checks.
  const closedBefore = w.gateway?.closed ?? 0;
  const cpu0 = cpuSplit(pid);
  const wrote0 = bytesWritten(pid);
  const minio0 = minioCpu(w);
  const run = await clientRun(w, impl, d, key, d === 'up' ? w.source : '/dev/null', `${impl}-${d}`);
  if (onGateway) await w.gateway!.waitClosed(closedBefore + 1);
  await cpuSettled(pid, 200);
  const cpu1 = cpuSplit(pid);
  const serverSys = cpu1.sys - cpu0.sys;
  const serverCpu = cpu1.user - cpu0.user + serverSys;
  const minio = minioCpu(w) - minio0;
  if (run.exit !== 0) throw new Error(`${what}: ${client} exited with ${run.exit}: ${run.stderr.trim().slice(0, 2000)}`);
  let verify: () => Promise<void>;
  if (d === 'up') {
    verify = await checkUpload(w, key, what, round);
  } else {
    // What the client got is not observable in /dev/null; the server must at least have written
    // the file's bytes to its sockets (plus SSH framing).
    const wrote = bytesWritten(pid) - wrote0;
    if (wrote < SIZE) throw new IncompleteTransfer(`${what}: INCOMPLETE TRANSFER: the server wrote ${wrote} bytes, the file has ${SIZE}`);
    verify = async () => {
      if (!verifying(round)) return;
      const local = path.join(w.dir, `down-${impl}`);
      const closed = w.gateway?.closed ?? 0;
      try {
        const check = await clientRun(w, impl, 'down', key, local, `${impl}-check`);
        if (check.exit !== 0) throw new Error(`${what} (check download): ${client} exited with ${check.exit}: ${check.stderr.trim().slice(0, 2000)}`);
        const h = await sha256File(local);
        if (h.bytes !== SIZE) throw new IncompleteTransfer(`${what} (check download): INCOMPLETE TRANSFER: ${h.bytes} of ${SIZE} bytes arrived`);
        if (h.sha256 !== w.sourceSha) throw new IncompleteTransfer(`${what} (check download): CORRUPT TRANSFER: sha256 ${h.sha256}, source ${w.sourceSha}`);
      } finally {
        rmSync(local, { force: true });
      }
      // Its connection must be gone before the next measurement counts closed connections.
      if (onGateway) await w.gateway!.waitClosed(closed + 1);
    };
  }
  const gib = SIZE / GIB;
  return {
    sample: {
      impl,
      direction: d,
      round,
      bytes: SIZE,
      wallSec: run.wallSec,
      mbPerSec: SIZE / run.wallSec / 1e6,
      serverCpuPerGiB: serverCpu / gib,
      serverSysPerGiB: serverSys / gib,
      minioCpuPerGiB: w.store.minioPid === undefined ? undefined : minio / gib,
      clientCpuPerGiB: run.cpu / gib,
      clientSysPerGiB: run.sys / gib,
      verified: verifying(round) ? 'sha256' : 'bytes',
    },
    ours: serverCpu + minio + run.allCpu,
    verify,
  };
}

async function measureCore(w: World, d: Direction, round: number): Promise<Measured> {
  const what = `core ${DIR_TITLE[d]} round ${round}`;
  const core = w.core!;
  const cpu0 = cpuSplit(core.pid);
  const minio0 = minioCpu(w);
  const run = await runSsh(
    { port: core.port, user: 'bench', identityFile: w.clientKey.file },
    { cipher: CIPHER, mac: MAC },
    { subsystem: d === 'up' ? 'test-discard' : 'test-source' },
    { upload: d === 'up' ? SIZE : undefined, download: d === 'down', timeoutMs: TIMEOUT_MS },
  );
  const settled = await core.nextClosed();
  const cpu1 = cpuSplit(core.pid);
  const serverSys = cpu1.sys - cpu0.sys;
  const serverCpu = cpu1.user - cpu0.user + serverSys;
  const minio = minioCpu(w) - minio0;
  if (run.exitCode !== 0) throw new Error(`${what}: ssh exited with ${run.exitCode}: ${run.stderr.trim().slice(0, 2000)}`);
  const got = d === 'up' ? settled.received : run.downloaded;
  if (got !== SIZE) throw new IncompleteTransfer(`${what}: INCOMPLETE TRANSFER: ${got} of ${SIZE} bytes arrived`);
  const gib = SIZE / GIB;
  return {
    sample: {
      impl: 'core',
      direction: d,
      round,
      bytes: SIZE,
      wallSec: run.wallSec,
      mbPerSec: SIZE / run.wallSec / 1e6,
      serverCpuPerGiB: serverCpu / gib,
      serverSysPerGiB: serverSys / gib,
      clientCpuPerGiB: (run.sshCpu.user + run.sshCpu.sys) / gib,
      clientSysPerGiB: run.sshCpu.sys / gib,
      verified: 'bytes',
    },
    ours: serverCpu + minio + run.clientSideCpu,
    verify: async () => {},
  };
}

interface DirectRun {
  report: DirectReport;
  allCpu: number;
}

async function directTransfer(w: World, d: Direction, key: string): Promise<DirectRun> {
  const reportFile = path.join(w.dir, 'direct-report.json');
  rmSync(reportFile, { force: true });
  const args: DirectArgs = {
    endpoint: w.store.endpoint,
    region: w.store.region,
    accessKeyId: w.store.accessKeyId,
    secretAccessKey: w.store.secretAccessKey,
    bucket: w.bucket,
    key,
    direction: d,
    file: w.source,
    size: SIZE,
    partSize: PART_SIZE,
    concurrency: DIRECT_PARTS,
    sse: 'AES256',
    reportFile,
  };
  const run = await runClient([process.execPath, path.join(HERE, 'lib/s3-direct.js'), JSON.stringify(args)], process.env, TIMEOUT_MS);
  if (run.exit !== 0 || !existsSync(reportFile)) {
    throw new Error(`direct SDK ${DIR_TITLE[d]} failed (exit ${run.exit}): ${run.stderr.trim().slice(0, 2000)}`);
  }
  return { report: JSON.parse(readFileSync(reportFile, 'utf8')) as DirectReport, allCpu: run.allCpu };
}

async function measureDirect(w: World, d: Direction, round: number): Promise<Measured> {
  const what = `direct ${DIR_TITLE[d]} round ${round}`;
  const key = d === 'up' ? keyOf('direct', round) : await ensureDownloadSource(w, 'direct', round);
  if (d === 'up') w.keys.add(key);
  const minio0 = minioCpu(w);
  const { report, allCpu } = await directTransfer(w, d, key);
  const minio = minioCpu(w) - minio0;
  if (report.bytes !== SIZE) throw new IncompleteTransfer(`${what}: INCOMPLETE TRANSFER: ${report.bytes} of ${SIZE} bytes`);
  const verify = d === 'up' ? await checkUpload(w, key, what, round) : async () => {};
  const gib = SIZE / GIB;
  return {
    sample: {
      impl: 'direct',
      direction: d,
      round,
      bytes: SIZE,
      wallSec: report.wallSec,
      mbPerSec: SIZE / report.wallSec / 1e6,
      serverCpuPerGiB: (report.cpuUser + report.cpuSys) / gib,
      serverSysPerGiB: report.cpuSys / gib,
      minioCpuPerGiB: w.store.minioPid === undefined ? undefined : minio / gib,
      verified: d === 'up' && verifying(round) ? 'sha256' : 'bytes',
    },
    ours: allCpu + minio,
    verify,
  };
}

function measure(w: World, impl: Impl, d: Direction, round: number): Promise<Sample> {
  return quietly(`${impl} ${DIR_TITLE[d]}`, () => {
    switch (impl) {
      case 's3gw':
      case 'scp':
      case 'rclone':
        return measureSftp(w, impl, d, round);
      case 'core':
        return measureCore(w, d, round);
      case 'direct':
        return measureDirect(w, d, round);
    }
  });
}

// ------------------------------------------------------------------ report

function report(w: World, samples: Sample[], details: string[]): string {
  const pick = (impl: Impl, d: Direction, f: (s: Sample) => number | undefined) =>
    samples.filter((s) => s.impl === impl && s.direction === d).map(f).filter((x): x is number => x !== undefined);
  const has = (i: Impl) => impls.includes(i);
  const ratio = (a: number[], b: number[]) => (a.length && b.length ? median(a) / median(b) : undefined);
  const fmt = (r: number | undefined) => (r === undefined || !Number.isFinite(r) ? '–' : r.toFixed(2));
  const mark = (r: number | undefined, ok: boolean) => (r === undefined ? '' : ok ? ' ✓' : ' ✗');
  const table = (head: string[], rows: string[][]) =>
    [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
  const out: string[] = [];
  const loads = samples.map((s) => s.foreignCores);
  out.push(
    machineLine(),
    `${fmtSize(SIZE)} per transfer, ${ROUNDS} interleaved round(s) (${impls.join(', ')} back to back per direction), ` +
      `medians; ±: half the min–max range. Cipher ${CIPHER} for every SSH client. ` +
      `${WARMUP > 0 ? `Servers warmed up with ${WARMUP} unmeasured transfer(s) each way. ` : ''}s3gw source: ${gitState()}.`,
    ...details.map((d) => `- ${d}`),
  );
  if (loads.length) {
    out.push(`Other processes on the machine used ${median(loads).toFixed(2)} cores (median; max ${Math.max(...loads).toFixed(2)}) during the runs.`);
  }
  out.push('', '#### Wall MB/s (MB = 10^6 bytes)', '');
  {
    const head = ['direction', ...impls.map((i) => TITLE[i])];
    if (has('s3gw') && has('direct')) head.push('s3gw / direct', 'target');
    if (has('s3gw') && has('rclone')) head.push('s3gw / rclone', 'target');
    const rows = directions.map((d) => {
      const row = [DIR_TITLE[d], ...impls.map((i) => cell(pick(i, d, (s) => s.mbPerSec), 0))];
      if (has('s3gw') && has('direct')) {
        const r = ratio(pick('s3gw', d, (s) => s.mbPerSec), pick('direct', d, (s) => s.mbPerSec));
        row.push(fmt(r), `≥ ${TARGET_WALL_VS_DIRECT.toFixed(2)}${mark(r, (r ?? 0) >= TARGET_WALL_VS_DIRECT)}`);
      }
      if (has('s3gw') && has('rclone')) {
        const r = ratio(pick('s3gw', d, (s) => s.mbPerSec), pick('rclone', d, (s) => s.mbPerSec));
        row.push(fmt(r), `≥ ${TARGET_WALL_VS_RCLONE.toFixed(2)}${mark(r, (r ?? 0) >= TARGET_WALL_VS_RCLONE)}`);
      }
      return row;
    });
    out.push(...table(head, rows));
  }
  out.push('', '#### CPU seconds per GiB (user + system): the gateway against its parts', '');
  {
    const head = ['direction'];
    if (has('s3gw')) head.push('s3gw gateway');
    if (has('scp')) head.push('s3gw gateway, scp -O');
    if (has('core')) head.push('SSH core alone');
    if (has('direct')) head.push('direct SDK client');
    const all = has('s3gw') && has('core') && has('direct');
    if (all) head.push('s3gw / (core + SDK)', 'target');
    if (has('rclone')) head.push('rclone serve sftp');
    const rows = directions.map((d) => {
      const gw = pick('s3gw', d, (s) => s.serverCpuPerGiB);
      const core = pick('core', d, (s) => s.serverCpuPerGiB);
      const sdk = pick('direct', d, (s) => s.serverCpuPerGiB);
      const row = [DIR_TITLE[d]];
      if (has('s3gw')) row.push(cell(gw, 2));
      if (has('scp')) row.push(cell(pick('scp', d, (s) => s.serverCpuPerGiB), 2));
      if (has('core')) row.push(cell(core, 2));
      if (has('direct')) row.push(cell(sdk, 2));
      if (all) {
        const r = gw.length && core.length && sdk.length ? median(gw) / (median(core) + median(sdk)) : undefined;
        row.push(fmt(r), `≤ ${TARGET_CPU_VS_PARTS.toFixed(2)}${mark(r, (r ?? Infinity) <= TARGET_CPU_VS_PARTS)}`);
      }
      if (has('rclone')) row.push(cell(pick('rclone', d, (s) => s.serverCpuPerGiB), 2));
      return row;
    });
    out.push(...table(head, rows));
  }
  out.push('', '#### Of which system (kernel) time, CPU seconds per GiB', '');
  {
    const list = impls;
    const head = ['direction', ...list.map((i) => (i === 'direct' ? 'direct SDK client' : TITLE[i]))];
    out.push(...table(head, directions.map((d) => [DIR_TITLE[d], ...list.map((i) => cell(pick(i, d, (s) => s.serverSysPerGiB), 2))])));
  }
  const pathImpls = (['s3gw', 'scp', 'direct', 'rclone'] as const).filter((i) => has(i));
  if (w.store.minioPid !== undefined && pathImpls.length > 0) {
    // Everything a transfer ran, per GiB: on a machine whose cores are all busy, wall time
    // follows this sum, so the ratio of two paths' sums bounds the ratio of their wall speeds.
    const pathCpu = (s: Sample) => s.serverCpuPerGiB + (s.minioCpuPerGiB ?? 0) + (s.clientCpuPerGiB ?? 0);
    out.push(
      '',
      '#### Whole path: CPU seconds per GiB of every process of a transfer (server or SDK client + MinIO + OpenSSH client)',
      '',
    );
    const head = ['direction', ...pathImpls.map((i) => TITLE[i])];
    const both = has('s3gw') && has('direct') && has('core');
    if (both) head.push('direct / s3gw', 'direct / s3gw if the gateway cost only core + SDK');
    const rows = directions.map((d) => {
      const row = [DIR_TITLE[d], ...pathImpls.map((i) => cell(pick(i, d, pathCpu), 2))];
      if (both) {
        const gwPath = median(pick('s3gw', d, pathCpu));
        const direct = median(pick('direct', d, pathCpu));
        const ideal =
          gwPath -
          median(pick('s3gw', d, (s) => s.serverCpuPerGiB)) +
          median(pick('core', d, (s) => s.serverCpuPerGiB)) +
          median(pick('direct', d, (s) => s.serverCpuPerGiB));
        row.push(fmt(direct / gwPath), fmt(direct / ideal));
      }
      return row;
    });
    out.push(...table(head, rows));
    if (both) {
      out.push(
        '',
        'When the cores are saturated, s3gw / direct wall cannot exceed direct / s3gw whole-path CPU: the last column is ' +
          'that bound for a gateway whose glue cost nothing, with the same MinIO and OpenSSH client costs.',
      );
    }
  }
  if (w.store.minioPid !== undefined || impls.some((i) => i !== 'direct')) {
    out.push('', '#### CPU seconds per GiB of the other processes: MinIO, and the OpenSSH client', '');
    const cols: { title: string; impl: Impl; f: (s: Sample) => number | undefined }[] = [];
    for (const i of ['s3gw', 'scp', 'direct', 'rclone'] as const) {
      if (has(i) && w.store.minioPid !== undefined) cols.push({ title: `MinIO, ${TITLE[i]}`, impl: i, f: (s) => s.minioCpuPerGiB });
    }
    for (const i of ['s3gw', 'scp', 'rclone', 'core'] as const) {
      const client = i === 'core' ? 'ssh' : i === 'scp' ? 'scp + ssh' : 'sftp + ssh';
      if (has(i)) cols.push({ title: `${client}, ${TITLE[i]}`, impl: i, f: (s) => s.clientCpuPerGiB });
    }
    const head = ['direction', ...cols.map((c) => c.title)];
    out.push(...table(head, directions.map((d) => [DIR_TITLE[d], ...cols.map((c) => cell(pick(c.impl, d, c.f), 2))])));
  }
  const sha = samples.filter((s) => s.verified === 'sha256').length;
  out.push(
    '',
    `Checked on every transfer: the object's size after an upload, the direct download's byte count, and for sftp ` +
      `and scp downloads (into /dev/null) that the server wrote at least the file's size. ${sha} of ${samples.length} ` +
      `transfers were also checked by sha256 against the source (uploads read back; for sftp and scp downloads, one more ` +
      `unmeasured download into tmpfs).`,
  );
  return out.join('\n');
}

// ------------------------------------------------------------------ main

async function setUp(): Promise<World> {
  const dir = mkdtempSync('/dev/shm/s3gw-gwbench-');
  const store = await loadStore();
  const s3 = adminClient(store);
  const hostKey = makeEd25519Key(path.join(dir, 'host_ed25519'), 's3gw-bench-host');
  const clientKey = makeEd25519Key(path.join(dir, 'client_ed25519'), 's3gw-bench-client');
  const source = path.join(dir, 'source.bin');
  log(`bench: writing ${fmtSize(SIZE)} of random bytes to ${source}`);
  const sourceSha = makeRandomFile(source, SIZE);
  const bucket = await createBenchBucket(s3, 's3gw-bench');
  log(`bench: bucket ${bucket} at ${store.endpoint} (${store.source})`);
  return { dir, store, s3, bucket, source, sourceSha, hostKey, clientKey, askpass: makeAskpass(dir), keys: new Set() };
}

async function tearDown(w: World): Promise<void> {
  const steps: [string, () => Promise<unknown>][] = [
    ['stop the gateway', async () => w.gateway?.stop()],
    ['stop the SSH core', async () => w.core?.stop()],
    ['stop rclone', async () => w.rclone?.stop()],
    ['remove the bench bucket', () => removeBucket(w.s3, w.bucket)],
  ];
  for (const [what, f] of steps) {
    try {
      await f();
    } catch (err) {
      log(`bench: could not ${what}: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  }
  w.s3.destroy();
  rmSync(w.dir, { recursive: true, force: true });
}

async function startServers(w: World): Promise<string[]> {
  const details: string[] = [];
  if (impls.includes('s3gw') || impls.includes('scp')) {
    w.gateway = await Gateway.start({
      dir: w.dir,
      hostKey: w.hostKey.file,
      store: w.store,
      logFile: path.join(w.dir, 'gateway.log'),
      execArgv: GATEWAY_NODE_FLAGS,
    });
    details.push(
      `s3gw: \`node ${GATEWAY_NODE_FLAGS.length ? GATEWAY_NODE_FLAGS.join(' ') + ' ' : ''}dist/src/cli.js\` ` +
        `(defaults: 5 MiB parts streaming while they fill, 6 MiB per upload, SSE AES256), pid ${w.gateway.pid}`,
    );
    log(`bench: s3gw on 127.0.0.1:${w.gateway.port}`);
  }
  if (impls.includes('core')) {
    w.core = new NodeServerChild(path.join(HERE, 'lib/our-server.js'), {
      hostKeyFile: w.hostKey.file,
      authorizedKey: w.clientKey.publicLine,
      sourceBytes: SIZE,
    });
    await w.core.ready();
    details.push(`SSH core alone: bench/lib/our-server.ts (${w.core.detail}), \`ssh -s test-discard\` / \`test-source\`, publickey login`);
    log(`bench: SSH core on 127.0.0.1:${w.core.port}`);
  }
  if (impls.includes('direct')) {
    const sdk = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@aws-sdk/client-s3/package.json'), 'utf8')) as { version: string };
    details.push(
      `direct SDK: bench/lib/s3-direct.ts, @aws-sdk/client-s3 ${sdk.version}, multipart with ${fmtSize(PART_SIZE)} parts, ` +
        `${DIRECT_PARTS} in flight, stream bodies, SSE AES256; one GetObject into /dev/null. CPU and wall of the transfer (not Node's start-up)`,
    );
  }
  if (impls.includes('rclone')) {
    w.rclone = await startRclone(w.dir, w.hostKey.file, w.store, path.join(w.dir, 'rclone.log'));
    details.push(`rclone serve sftp: ${w.rclone.version}, \`rclone serve sftp minio: ${w.rclone.flags.join(' ').split(w.dir).join('$TMP')}\`, otherwise defaults (--vfs-cache-mode off); remote by RCLONE_CONFIG_MINIO_* (provider Minio, SSE AES256)`);
    log(`bench: rclone serve sftp on 127.0.0.1:${w.rclone.port}`);
  }
  details.push(
    `clients: OpenSSH sftp -b with \`put\` from tmpfs and \`get\` into /dev/null (defaults: after our limits@openssh.com, 255 KiB requests, 64 outstanding), password login; ` +
      (impls.includes('scp') ? `\`scp -O\` (legacy protocol, the same gateway) from the same tmpfs file and into /dev/null; ` : '') +
      `MinIO ${w.store.minioVersion} on loopback, single drive, SSE-S3 by a static KMS key`,
  );
  return details;
}

async function bench(w: World): Promise<void> {
  const details = await startServers(w);
  // Round 0: the servers live through all rounds, as a real server would, so their first
  // transfers (JIT compilation, heap growth) are not measured.
  for (let i = 0; i < WARMUP; i++) {
    for (const d of directions) {
      for (const impl of impls) {
        if (impl === 'direct') continue;
        log(`warm-up ${i + 1}/${WARMUP} ${DIR_TITLE[d]} ${impl}`);
        await (impl === 'core' ? measureCore(w, d, 0) : measureSftp(w, impl, d, 0));
      }
    }
    const done = [...w.keys].filter((k) => k.endsWith('-r0'));
    await deleteKeys(w.s3, w.bucket, done);
    for (const k of done) w.keys.delete(k);
  }
  const samples: Sample[] = [];
  const t0 = Date.now();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const d of directions) {
      for (const impl of impls) {
        const s = await measure(w, impl, d, round);
        samples.push(s);
        log(
          `round ${round}/${ROUNDS} ${DIR_TITLE[d].padEnd(8)} ${impl.padEnd(7)} ${s.mbPerSec.toFixed(0).padStart(5)} MB/s  ` +
            `${impl === 'direct' ? 'client' : 'server'} ${s.serverCpuPerGiB.toFixed(2)} CPU-s/GiB (sys ${s.serverSysPerGiB.toFixed(2)})` +
            (s.minioCpuPerGiB !== undefined && impl !== 'core' ? `  minio ${s.minioCpuPerGiB.toFixed(2)}` : '') +
            (s.clientCpuPerGiB !== undefined ? `  ssh client ${s.clientCpuPerGiB.toFixed(2)} (sys ${s.clientSysPerGiB!.toFixed(2)})` : '') +
            (s.verified === 'sha256' ? '  sha256 ok' : '') +
            (s.foreignCores > 0.05 ? `  [other load ${s.foreignCores.toFixed(2)} cores]` : ''),
        );
      }
    }
    // This round's objects are no longer needed.
    const done = [...w.keys].filter((k) => k.endsWith(`-r${round}`));
    await deleteKeys(w.s3, w.bucket, done);
    for (const k of done) w.keys.delete(k);
  }
  log(`bench: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (w.gateway && !w.gateway.alive) throw new Error(`the gateway died:\n${w.gateway.lastLog()}`);
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ size: SIZE, rounds: ROUNDS, cipher: CIPHER, details, samples }, null, 2));
  console.log(report(w, samples, details));
}

/** The gateway under node --cpu-prof, a fresh one per direction, one transfer each. */
async function profile(w: World): Promise<void> {
  const dir = path.resolve(opt['profile-dir'] ?? path.join(ROOT, 'bench/.profiles'));
  mkdirSync(dir, { recursive: true });
  const out: string[] = [
    `## CPU profile of the s3gw gateway, ${fmtSize(SIZE)}, ${CIPHER} (node --cpu-prof, main thread, samples of the transfer only)`,
  ];
  // The download reads what the upload wrote (or a seed object, with --directions down).
  for (const d of directions) {
    const name = `gateway-${d}.cpuprofile`;
    const file = path.join(dir, name);
    rmSync(file, { force: true });
    if (QUIET_WAIT_MS > 0) await waitQuiet(QUIET_WAIT_MS);
    w.gateway = await Gateway.start({
      dir: w.dir,
      hostKey: w.hostKey.file,
      store: w.store,
      logFile: path.join(w.dir, `gateway-profile-${d}.log`),
      execArgv: [...GATEWAY_NODE_FLAGS, '--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-name', name],
    });
    let sample: Sample;
    let window: { fromUs: number; toUs: number };
    try {
      const from = process.hrtime.bigint();
      const m = await measureSftp(w, 's3gw', d, 1);
      window = { fromUs: Number(from / 1000n), toUs: Number(process.hrtime.bigint() / 1000n) };
      await m.verify();
      sample = { ...m.sample, foreignCores: 0 };
    } finally {
      await w.gateway.stop();
    }
    if (!existsSync(file)) throw new Error(`no profile written at ${file}`);
    const { rows, byOwnCode, busyMs, idleMs } = selfTimes(file, ROOT + '/', '/dist/src/', window);
    out.push(
      '',
      `### ${DIR_TITLE[d]}: ${sample.mbPerSec.toFixed(0)} MB/s, gateway ${sample.serverCpuPerGiB.toFixed(2)} CPU-s/GiB ` +
        `(profiling included); main thread busy ${(busyMs / 1000).toFixed(2)} s, idle ${(idleMs / 1000).toFixed(2)} s`,
      `Profile: ${path.relative(process.cwd(), file)}`,
      '',
      'Top self time (native work is charged to the JS function that called it):',
      '',
      '| self ms | % of busy | function | where | main caller |',
      '|---:|---:|---|---|---|',
    );
    for (const r of rows.slice(0, 30)) {
      out.push(`| ${r.ms.toFixed(0)} | ${(r.busyShare * 100).toFixed(1)} | ${r.name} | ${r.where} | ${r.topCaller} |`);
    }
    out.push(
      '',
      'The same time charged to the innermost s3gw function on the stack (its own work plus the library code it calls):',
      '',
      '| ms | % of busy | function | where |',
      '|---:|---:|---|---|',
    );
    for (const r of byOwnCode.slice(0, 20)) {
      out.push(`| ${r.ms.toFixed(0)} | ${(r.busyShare * 100).toFixed(1)} | ${r.name} | ${r.where} |`);
    }
  }
  w.gateway = undefined;
  console.log(out.join('\n'));
}

killAllOnExit();
let world: World | undefined;
try {
  world = await setUp();
  if (opt.profile) await profile(world);
  else await bench(world);
} catch (err) {
  log(`\nbench: FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  if (world?.gateway) log(`bench: the gateway's last log lines:\n${world.gateway.lastLog()}`);
  process.exitCode = 1;
} finally {
  if (world) await tearDown(world);
  killAll();
}
