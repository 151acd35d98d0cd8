/**
 * What bench/ssh-throughput.ts compares, the samples it takes, and the markdown report it
 * prints from them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Algorithms } from './client.js';
import type { Cpu } from './proc.js';

const GIB = 1024 ** 3;

export const IMPLS = ['s3gw', 'sshd', 'ssh2', 'ssh2-nobinding'] as const;
export type Impl = (typeof IMPLS)[number];
export const IMPL_TITLE: Record<Impl, string> = {
  s3gw: 's3gw',
  sshd: 'OpenSSH sshd',
  ssh2: 'ssh2 + binding',
  'ssh2-nobinding': 'ssh2, node:crypto only',
};

export interface CipherCase extends Algorithms {
  name: string;
}
export const CIPHERS: CipherCase[] = [
  { name: 'aes128-gcm', cipher: 'aes128-gcm@openssh.com', mac: 'hmac-sha2-256-etm@openssh.com' },
  { name: 'chacha20-poly1305', cipher: 'chacha20-poly1305@openssh.com', mac: 'hmac-sha2-256-etm@openssh.com' },
  { name: 'aes128-ctr + hmac-sha2-256-etm', cipher: 'aes128-ctr', mac: 'hmac-sha2-256-etm@openssh.com' },
];
export const DIRECTIONS = ['up', 'down'] as const;
export type Direction = (typeof DIRECTIONS)[number];
export const DIRECTION_TITLE: Record<Direction, string> = { up: 'upload', down: 'download' };

/** Issue #2 §9 targets, for aes128-gcm. */
export const TARGET_WALL_VS_SSHD = 0.9;
export const TARGET_CPU_VS_SSH2_NOBINDING = 0.8;

export interface TransferSample {
  impl: Impl;
  cipher: string;
  direction: Direction;
  round: number;
  bytes: number;
  wallSec: number;
  mbPerSec: number;
  serverCpu: Cpu;
  serverCpuPerGiB: number;
  clientCpuPerGiB: number;
  /** sshd only: what its shell command used, taken out of serverCpu. */
  commandCpu?: Cpu;
  /** CPU that other processes on the machine used during the run, in cores. */
  foreignCores: number;
  /** Node servers: resident memory and heap in use after the run, MiB. */
  serverRssMiB?: number;
  heapMiB?: number;
}

export interface HandshakeSample {
  impl: Impl;
  round: number;
  connections: number;
  serverMsPerConn: number;
  clientMsPerConn: number;
  wallMsPerConn: number;
  foreignCores: number;
  /** Node servers, after the last connection: heap in use and live handles (leak check). */
  heapMiB?: number;
  handles?: number;
}

export interface ReportContext {
  impls: readonly Impl[];
  ciphers: readonly CipherCase[];
  directions: readonly Direction[];
  size: number;
  rounds: number;
  warmup: number;
  gitState: string;
  /** One line per server: version, options. */
  details: Map<Impl, string>;
}

/** `ssh -V` prints to stderr. */
export function readSshVersion(): string {
  const r = spawnSync('ssh', ['-V'], { encoding: 'utf8' });
  return `${r.stderr ?? ''}${r.stdout ?? ''}`.trim();
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** "412 ±4%": the median, and half the min–max range relative to it (only with 2+ rounds). */
function cell(xs: number[], digits: number): string {
  if (xs.length === 0) return '–';
  const m = median(xs);
  const base = m.toFixed(digits);
  if (xs.length < 2 || m === 0) return base;
  const spread = ((Math.max(...xs) - Math.min(...xs)) / 2 / m) * 100;
  return `${base} ±${spread.toFixed(0)}%`;
}

function ratio(a: number[], b: number[]): number | undefined {
  if (a.length === 0 || b.length === 0) return undefined;
  return median(a) / median(b);
}

const fmtRatio = (r: number | undefined) => (r === undefined || !Number.isFinite(r) ? '–' : r.toFixed(2));

function machineLine(ctx: ReportContext): string {
  const details = ctx.details;
  const cpuModel = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU';
  const lines = [
    `${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} vCPU (${cpuModel}), ${os.type()} ${os.release()}, ` +
      `node ${process.version} (OpenSSL ${process.versions.openssl}), client ${readSshVersion()}`,
    `${fmtSize(ctx.size)} per transfer, ${ctx.rounds} interleaved round(s), medians; ±: half the min–max range.` +
      (ctx.warmup > 0 ? ` Node servers warmed up with ${ctx.warmup} connections each.` : ''),
    `s3gw source: ${ctx.gitState} (at the benchmark's start; dist/ is what \`npm run build\` made of src/ before)`,
  ];
  for (const [impl, d] of details) lines.push(`- ${IMPL_TITLE[impl]}: ${d}`);
  return lines.join('\n');
}

/** Which s3gw was measured: the commit, and whether src/ had uncommitted changes. */
export function gitState(root: string): string {
  const git = (...a: string[]) => spawnSync('git', ['-C', root, ...a], { encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return 'not a git checkout';
  const dirty = git('status', '--porcelain', '--', 'src').stdout.trim();
  return `commit ${head.stdout.trim()}${dirty ? ', with uncommitted changes in src/' : ''}`;
}

export function fmtSize(n: number): string {
  if (n % GIB === 0) return `${n / GIB} GiB`;
  if (n % 1024 ** 2 === 0) return `${n / 1024 ** 2} MiB`;
  return `${n} bytes`;
}

/** The markdown report: wall, server CPU and client CPU tables, and the per-connection table. */
export function report(ctx: ReportContext, samples: TransferSample[], hs: HandshakeSample[]): string {
  const { impls, ciphers, directions } = ctx;
  const out: string[] = [];
  const pick = (impl: Impl, c: string, d: Direction, f: (s: TransferSample) => number) =>
    samples.filter((s) => s.impl === impl && s.cipher === c && s.direction === d).map(f);
  const has = (i: Impl) => impls.includes(i);
  const mark = (r: number | undefined, ok: (r: number) => boolean) => (r === undefined ? '' : ok(r) ? ' ✓' : ' ✗');

  out.push(machineLine(ctx));
  const loads = [...samples.map((s) => s.foreignCores), ...hs.map((h) => h.foreignCores)];
  if (loads.length > 0) {
    out.push(
      `Other processes on the machine used ${median(loads).toFixed(2)} cores (median; max ${Math.max(...loads).toFixed(2)}) during the runs.`,
    );
  }
  out.push('');
  if (samples.length > 0) {
    out.push(`### Wall MB/s (MB = 10^6 bytes; OpenSSH client, loopback, login included)`, '');
    const wallHead = ['cipher', 'direction', ...impls.map((i) => IMPL_TITLE[i])];
    if (has('s3gw') && has('sshd')) wallHead.push('s3gw / sshd', 'target');
    out.push(`| ${wallHead.join(' | ')} |`, `|${wallHead.map(() => '---').join('|')}|`);
    for (const c of ciphers) {
      for (const d of directions) {
        const row = [c.name, DIRECTION_TITLE[d], ...impls.map((i) => cell(pick(i, c.name, d, (s) => s.mbPerSec), 0))];
        if (has('s3gw') && has('sshd')) {
          const r = ratio(pick('s3gw', c.name, d, (s) => s.mbPerSec), pick('sshd', c.name, d, (s) => s.mbPerSec));
          row.push(fmtRatio(r));
          row.push(c.name === 'aes128-gcm' ? `≥ ${TARGET_WALL_VS_SSHD.toFixed(2)}${mark(r, (x) => x >= TARGET_WALL_VS_SSHD)}` : '');
        }
        out.push(`| ${row.join(' | ')} |`);
      }
    }
    out.push('', `### Server CPU seconds per GiB (user + system)`, '');
    const cpuHead = ['cipher', 'direction', ...impls.map((i) => IMPL_TITLE[i])];
    if (has('s3gw') && has('ssh2-nobinding')) cpuHead.push('s3gw / ssh2 node:crypto', 'target');
    if (has('s3gw') && has('ssh2')) cpuHead.push('s3gw / ssh2 + binding');
    if (has('s3gw') && has('sshd')) cpuHead.push('s3gw / sshd');
    out.push(`| ${cpuHead.join(' | ')} |`, `|${cpuHead.map(() => '---').join('|')}|`);
    for (const c of ciphers) {
      for (const d of directions) {
        const ours = pick('s3gw', c.name, d, (s) => s.serverCpuPerGiB);
        const row = [c.name, DIRECTION_TITLE[d], ...impls.map((i) => cell(pick(i, c.name, d, (s) => s.serverCpuPerGiB), 2))];
        if (has('s3gw') && has('ssh2-nobinding')) {
          const r = ratio(ours, pick('ssh2-nobinding', c.name, d, (s) => s.serverCpuPerGiB));
          row.push(fmtRatio(r));
          row.push(
            c.name === 'aes128-gcm' ? `≤ ${TARGET_CPU_VS_SSH2_NOBINDING.toFixed(2)}${mark(r, (x) => x <= TARGET_CPU_VS_SSH2_NOBINDING)}` : '',
          );
        }
        if (has('s3gw') && has('ssh2')) row.push(fmtRatio(ratio(ours, pick('ssh2', c.name, d, (s) => s.serverCpuPerGiB))));
        if (has('s3gw') && has('sshd')) row.push(fmtRatio(ratio(ours, pick('sshd', c.name, d, (s) => s.serverCpuPerGiB))));
        out.push(`| ${row.join(' | ')} |`);
      }
    }
    out.push('', `### Client (ssh) CPU seconds per GiB`, '');
    const cliHead = ['cipher', 'direction', ...impls.map((i) => IMPL_TITLE[i])];
    out.push(`| ${cliHead.join(' | ')} |`, `|${cliHead.map(() => '---').join('|')}|`);
    for (const c of ciphers) {
      for (const d of directions) {
        out.push(
          `| ${[c.name, DIRECTION_TITLE[d], ...impls.map((i) => cell(pick(i, c.name, d, (s) => s.clientCpuPerGiB), 2))].join(' | ')} |`,
        );
      }
    }
  }
  if (hs.length > 0) {
    const n = hs[0]!.connections;
    out.push(
      '',
      `### Per connection: curve25519-sha256, ssh-ed25519 host key, ed25519 publickey login, ` +
        `one subsystem, exit (${n} sequential connections per round)`,
      '',
    );
    const head = ['', ...impls.map((i) => IMPL_TITLE[i])];
    out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
    const rowOf = (label: string, f: (h: HandshakeSample) => number) =>
      `| ${[label, ...impls.map((i) => cell(hs.filter((h) => h.impl === i).map(f), 1))].join(' | ')} |`;
    out.push(rowOf('server CPU ms', (h) => h.serverMsPerConn));
    out.push(rowOf('client CPU ms', (h) => h.clientMsPerConn));
    out.push(rowOf('wall ms', (h) => h.wallMsPerConn));
    if (has('s3gw')) {
      const ours = hs.filter((h) => h.impl === 's3gw').map((h) => h.serverMsPerConn);
      const rs = impls
        .filter((i) => i !== 's3gw')
        .map((i) => `s3gw / ${IMPL_TITLE[i]} ${fmtRatio(ratio(ours, hs.filter((h) => h.impl === i).map((h) => h.serverMsPerConn)))}`);
      if (rs.length) out.push('', `Server CPU per connection: ${rs.join(', ')}.`);
    }
  }
  return out.join('\n');
}
